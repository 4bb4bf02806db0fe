//! The errors of the client session.

use std::fmt;

use crate::address::AddressError;
use crate::auth::{Mechanism, SaslError};
use crate::capabilities::Extension;
use crate::client::transaction::RecipientResult;
use crate::error::ParseError;
use crate::reply::Reply;

/// The step of the session an error happened in.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Waiting for the 220 greeting.
    Greeting,
    /// EHLO.
    Ehlo,
    /// HELO, after EHLO was not recognised.
    Helo,
    /// STARTTLS.
    StartTls,
    /// The TLS handshake after STARTTLS.
    TlsHandshake,
    /// AUTH and its challenges.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA, waiting for 354.
    Data,
    /// Sending the message content.
    MessageData,
    /// Waiting for the reply after the end-of-data line.
    EndOfData,
    /// BDAT and its chunk of message content (RFC 3030).
    Bdat,
    /// RSET.
    Reset,
    /// A single command queued by the caller.
    Command,
    /// QUIT.
    Quit,
    /// Idle between transactions.
    Idle,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::Helo => "HELO",
            Self::StartTls => "STARTTLS",
            Self::TlsHandshake => "TLS handshake",
            Self::Auth => "AUTH",
            Self::Mail => "MAIL FROM",
            Self::Rcpt => "RCPT TO",
            Self::Data => "DATA",
            Self::MessageData => "message data",
            Self::EndOfData => "end of data",
            Self::Bdat => "BDAT",
            Self::Reset => "RSET",
            Self::Command => "command",
            Self::Quit => "QUIT",
            Self::Idle => "idle connection",
        })
    }
}

/// Why a send, a command or the whole session failed.
///
/// The variants group by fault: the server refused (`Rejected`, `RecipientsRejected`,
/// `AuthFailed`, `ServiceClosing`), the server misbehaved or the connection broke (`Parse`,
/// `UnexpectedReply`, `StartTlsInjection`, `Sasl`, `ConnectionClosed`, `Timeout`,
/// `OutcomeUnknown`), a policy refused to go on (`TlsNotOffered`, `AuthRequiresTls`,
/// `AuthNotOffered`, `MechanismNotOffered`, `ExtensionRequired`, `MessageTooLarge`), or the
/// caller misused the API (`NoRecipients`, `NoDataInProgress`, `InvalidCommand`,
/// `NotHandshaking`, `Closed`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server sent a 4xx or 5xx reply that ends the transaction or the session.
    Rejected {
        /// The step whose command got the reply.
        stage: Stage,
        /// The reply.
        reply: Reply,
    },
    /// No recipient was accepted, or some were rejected under
    /// [`RecipientPolicy::AllOrNothing`](crate::client::RecipientPolicy::AllOrNothing); the
    /// message was not sent.
    RecipientsRejected {
        /// The result of every recipient.
        recipients: Vec<RecipientResult>,
    },
    /// The server rejected the credentials (RFC 4954 section 6).
    AuthFailed {
        /// The server's reply, such as `535 5.7.8`.
        reply: Reply,
    },
    /// The server sent 421: it is closing the connection (RFC 5321 section 3.8).
    ServiceClosing {
        /// The 421 reply.
        reply: Reply,
    },
    /// The server sent bytes that are not an SMTP reply.
    Parse(ParseError),
    /// The server sent a reply that makes no sense at this step.
    UnexpectedReply {
        /// The step the session was in.
        stage: Stage,
        /// The reply.
        reply: Reply,
    },
    /// Bytes arrived after the 220 reply to STARTTLS and before the TLS handshake; they could
    /// only be injected by an attacker (RFC 3207 section 4.2, CVE-2011-0411), and were
    /// discarded unread.
    StartTlsInjection {
        /// How many octets were buffered.
        octets: usize,
    },
    /// The TLS handshake after STARTTLS failed, as the adapter reported with
    /// [`Session::tls_failed`](crate::client::Session::tls_failed).
    TlsHandshakeFailed,
    /// A SASL exchange failed on the client side, for example on a challenge that is not base64.
    Sasl(SaslError),
    /// The server closed the connection.
    ConnectionClosed {
        /// The step the session was in.
        stage: Stage,
    },
    /// A reply did not arrive in time.
    Timeout {
        /// The step the session was waiting in.
        stage: Stage,
    },
    /// The whole message was sent, but the connection closed or timed out before the server's
    /// reply to it. The server may or may not have accepted it.
    OutcomeUnknown {
        /// The connection closed (`true`) or the reply timed out (`false`).
        closed: bool,
    },
    /// TLS is required but the server does not offer STARTTLS.
    TlsNotOffered,
    /// Credentials are configured but the connection is not encrypted, and
    /// [`Config::allow_insecure_auth`](crate::client::Config::allow_insecure_auth) is off.
    AuthRequiresTls,
    /// Credentials are configured but the server offers no AUTH.
    AuthNotOffered,
    /// The SASL mechanism cannot run with these credentials: the crate has no client for it,
    /// or a credential contains a byte the mechanism cannot carry.
    Credentials(SaslError),
    /// No offered SASL mechanism fits the configuration.
    MechanismNotOffered {
        /// The mechanism that was asked for, if one was named.
        requested: Option<Mechanism>,
        /// The mechanisms the server offered.
        offered: Vec<Mechanism>,
    },
    /// The message needs an extension the server does not offer.
    ExtensionRequired {
        /// The missing extension.
        extension: Extension,
        /// The part of the message that needs it.
        reason: &'static str,
    },
    /// The message is larger than the server's SIZE limit (RFC 1870 section 6).
    MessageTooLarge {
        /// The message size in octets.
        size: u64,
        /// The server's limit in octets.
        limit: u64,
    },
    /// A line of the message is longer than 998 octets (RFC 5321 section 4.5.3.1.6).
    LineTooLong {
        /// The length of the longest line, without its line end.
        length: usize,
    },
    /// An address cannot be sent as the server needs it, such as a domain that has no valid
    /// A-label for a server without SMTPUTF8.
    InvalidAddress(AddressError),
    /// An envelope needs at least one recipient.
    NoRecipients,
    /// Message data was queued but the last reply was not a 354 to DATA.
    NoDataInProgress,
    /// This command cannot be queued on its own, because the session runs it itself.
    InvalidCommand {
        /// The command verb.
        verb: &'static str,
    },
    /// [`Session::tls_established`](crate::client::Session::tls_established) was called while no
    /// TLS upgrade was pending.
    NotHandshaking,
    /// The session has ended; the work was not started.
    Closed,
}

impl Error {
    /// Tells whether retrying the same work cannot succeed: a 5xx reply (except 552 to RCPT), a
    /// policy that refused, or an input the server cannot take.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Rejected { reply, .. } | Self::AuthFailed { reply } => reply.is_permanent(),
            Self::RecipientsRejected { recipients } => recipients
                .iter()
                .filter(|r| !r.is_accepted())
                .all(RecipientResult::is_permanent),
            Self::TlsNotOffered
            | Self::AuthRequiresTls
            | Self::AuthNotOffered
            | Self::MechanismNotOffered { .. }
            | Self::Credentials(_)
            | Self::ExtensionRequired { .. }
            | Self::MessageTooLarge { .. }
            | Self::InvalidAddress(_)
            | Self::LineTooLong { .. }
            | Self::NoRecipients
            | Self::NoDataInProgress
            | Self::InvalidCommand { .. }
            | Self::NotHandshaking => true,
            _ => false,
        }
    }

    /// Tells whether the same work may succeed later or on a new connection. An
    /// [`OutcomeUnknown`](Self::OutcomeUnknown) error is neither permanent nor transient: a retry
    /// may deliver the message twice.
    pub fn is_transient(&self) -> bool {
        !self.is_permanent() && !matches!(self, Self::OutcomeUnknown { .. })
    }

    /// Returns the server reply behind the error, if there was one.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Rejected { reply, .. }
            | Self::AuthFailed { reply }
            | Self::ServiceClosing { reply }
            | Self::UnexpectedReply { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { stage, reply } => write!(f, "server rejected {stage}: {reply}"),
            Self::RecipientsRejected { recipients } => {
                f.write_str("recipients rejected, message not sent:")?;
                let rejected = recipients.iter().filter(|result| !result.is_accepted());
                for (index, result) in rejected.enumerate() {
                    let separator = if index == 0 { " " } else { "; " };
                    write!(f, "{separator}<{}>: {}", result.recipient(), result.reply())?;
                }
                Ok(())
            }
            Self::AuthFailed { reply } => write!(f, "authentication failed: {reply}"),
            Self::ServiceClosing { reply } => {
                write!(f, "server is closing the connection: {reply}")
            }
            Self::Parse(error) => write!(f, "invalid reply from server: {error}"),
            Self::UnexpectedReply { stage, reply } => {
                write!(f, "unexpected reply during {stage}: {reply}")
            }
            Self::StartTlsInjection { octets } => write!(
                f,
                "{octets} octets arrived after the STARTTLS reply and before the TLS handshake; \
                 possible injection attack, connection dropped"
            ),
            Self::Sasl(error) => write!(f, "authentication exchange failed: {error}"),
            Self::TlsHandshakeFailed => f.write_str("the TLS handshake after STARTTLS failed"),
            Self::ConnectionClosed { stage } => {
                write!(f, "server closed the connection during {stage}")
            }
            Self::Timeout { stage } => write!(f, "timed out waiting for the {stage} reply"),
            Self::OutcomeUnknown { closed: true } => f.write_str(
                "connection closed before the reply to the end of data; the message may or may \
                 not have been accepted",
            ),
            Self::OutcomeUnknown { closed: false } => f.write_str(
                "timed out waiting for the reply to the end of data; the message may or may not \
                 have been accepted",
            ),
            Self::TlsNotOffered => f.write_str(
                "TLS is required but the server does not offer STARTTLS; use a server or port \
                 with TLS, or choose another TLS policy",
            ),
            Self::AuthRequiresTls => f.write_str(
                "refusing to authenticate over an unencrypted connection; enable TLS or allow \
                 insecure authentication explicitly",
            ),
            Self::AuthNotOffered => {
                f.write_str("credentials are set but the server does not offer AUTH")
            }
            Self::Credentials(error) => write!(f, "cannot authenticate: {error}"),
            Self::MechanismNotOffered { requested, offered } => {
                match requested {
                    Some(mechanism) => write!(f, "mechanism {} is not offered", mechanism.name())?,
                    None => f.write_str("no offered mechanism fits the credentials")?,
                }
                f.write_str("; server offers:")?;
                for mechanism in offered {
                    write!(f, " {}", mechanism.name())?;
                }
                Ok(())
            }
            Self::ExtensionRequired { extension, reason } => write!(
                f,
                "{reason} needs {}, which the server does not offer",
                extension.keyword()
            ),
            Self::MessageTooLarge { size, limit } => {
                write!(f, "message size {size} exceeds server limit {limit}")
            }
            Self::InvalidAddress(error) => write!(f, "{error}"),
            Self::LineTooLong { length } => write!(
                f,
                "a message line of {length} octets exceeds the 998 that SMTP allows; wrap the \
                 line or encode the part as quoted-printable or base64"
            ),
            Self::NoRecipients => f.write_str("an envelope needs at least one recipient"),
            Self::NoDataInProgress => {
                f.write_str("message data needs a 354 reply to DATA first; queue DATA before it")
            }
            Self::InvalidCommand { verb } => write!(
                f,
                "{verb} cannot be queued on its own; the session sends it as configured"
            ),
            Self::NotHandshaking => f.write_str("no TLS upgrade is pending"),
            Self::Closed => f.write_str("the session has ended"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Self {
        Self::Parse(error)
    }
}
