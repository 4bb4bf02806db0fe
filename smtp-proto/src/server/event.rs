//! What the server session reports to the application, and the credentials of AUTH.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use md5::Md5;

use crate::address::{Domain, Mailbox, ReversePath};
use crate::auth::Mechanism;
use crate::command::{MailParameters, RcptParameters};
use crate::reply::Reply;
use crate::secret::Secret;
use crate::server::error::Error;

/// A decision the application owes the session; the event that asks for it carries the handle,
/// and [`Session::accept`](crate::server::Session::accept) or
/// [`Session::reject`](crate::server::Session::reject) answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(pub(crate) u64);

/// The greeting command a client sent (RFC 5321 section 4.1.1.1, RFC 2033 section 4.1).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HelloKind {
    /// `EHLO`: the client may use the offered extensions.
    Ehlo,
    /// `HELO`: no extensions.
    Helo,
    /// `LHLO`, the greeting of LMTP.
    Lhlo,
}

/// A state change of the server session, returned by
/// [`Session::poll_event`](crate::server::Session::poll_event).
///
/// Events with a `handle` wait for the application's answer. Until it comes, the session reads
/// no further command, so replies go out in the order of the commands even when the client
/// pipelines them (RFC 2920).
#[non_exhaustive]
#[derive(Debug)]
pub enum Event {
    /// The client greeted with EHLO, HELO or LHLO. Accepting sends the capabilities (or the
    /// plain 250 to HELO); rejecting sends the given reply and leaves the client ungreeted.
    Hello {
        /// Which greeting command.
        kind: HelloKind,
        /// The name the client gave.
        domain: Domain,
        /// The decision to answer.
        handle: Handle,
    },
    /// The session sent `220` to STARTTLS: the adapter writes what
    /// [`poll_transmit`](crate::server::Session::poll_transmit) returns, runs the TLS handshake,
    /// then calls [`tls_established`](crate::server::Session::tls_established). Bytes the client
    /// sent after STARTTLS in clear text are discarded unread (RFC 3207 section 4.2).
    TlsUpgradeRequired,
    /// A SASL exchange collected the client's credentials (RFC 4954 section 4). Answer with
    /// [`accept_auth`](crate::server::Session::accept_auth) or
    /// [`reject_auth`](crate::server::Session::reject_auth); for CRAM-MD5 the application may
    /// pass the secret to [`verify_secret`](crate::server::Session::verify_secret) instead.
    AuthRequested {
        /// The mechanism the client chose.
        mechanism: Mechanism,
        /// What the client sent.
        credentials: AuthCredentials,
        /// The decision to answer.
        handle: Handle,
    },
    /// `MAIL FROM` with its parameters, already checked against the offered extensions and the
    /// size limit. Accepting starts a transaction; any transaction before it that did not end in
    /// [`Event::MessageComplete`] is abandoned.
    MailFrom {
        /// The sender, or the null path.
        reverse_path: ReversePath,
        /// The parameters.
        parameters: MailParameters,
        /// The decision to answer.
        handle: Handle,
    },
    /// `RCPT TO` with its parameters, already checked against the offered extensions and the
    /// recipient limit. Accepting adds the recipient to the transaction.
    RcptTo {
        /// The recipient.
        forward_path: Mailbox,
        /// The parameters.
        parameters: RcptParameters,
        /// The decision to answer.
        handle: Handle,
    },
    /// The next part of the message content: after dot removal for DATA, as sent for BDAT.
    /// Concatenated, the chunks of one message are its content exactly.
    MessageData {
        /// The content octets.
        chunk: Bytes,
    },
    /// The message content is complete: the end-of-data line or the BDAT chunk marked LAST
    /// arrived. Accepting sends `250` (use
    /// [`accept_with`](crate::server::Session::accept_with) for a reply that carries a queue
    /// id); rejecting sends the given reply. Over SMTP there is one such event per message with
    /// `recipient: None`; over LMTP there is one per accepted recipient, in RCPT order, each
    /// answered on its own (RFC 2033 section 4.2).
    MessageComplete {
        /// The recipient this answer is for, over LMTP.
        recipient: Option<Mailbox>,
        /// The decision to answer.
        handle: Handle,
    },
    /// The session rejected the message of the open transaction itself: over the size limit,
    /// with bare line ends, or a failed BDAT. Discard any chunks of it; the transaction is over.
    MessageRejected {
        /// The reply the session sent.
        reply: Reply,
    },
    /// The session is over: the adapter writes what
    /// [`poll_transmit`](crate::server::Session::poll_transmit) still returns and closes the
    /// connection.
    Closed {
        /// What ended the session, or `None` after QUIT or a 421 the application sent.
        error: Option<Error>,
    },
}

/// What a client sent to authenticate, by mechanism. Passwords and tokens are in [`Secret`],
/// whose `Debug` redacts them.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthCredentials {
    /// PLAIN (RFC 4616 section 2).
    Plain {
        /// The identity to act as, when it differs from `username`.
        authorization_id: Option<String>,
        /// The authentication identity.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// LOGIN: a user name and a password in two responses.
    Login {
        /// The user name.
        username: String,
        /// The password.
        password: Secret<String>,
    },
    /// CRAM-MD5 (RFC 2195 section 2): the user name and the keyed digest of the challenge.
    CramMd5 {
        /// The user name.
        username: String,
        /// The challenge the session sent.
        challenge: Vec<u8>,
        /// The lowercase hex HMAC-MD5 digest the client computed.
        digest: String,
    },
    /// XOAUTH2: a user name and an OAuth 2.0 bearer token.
    XOAuth2 {
        /// The user name.
        username: String,
        /// The bearer token.
        token: Secret<String>,
    },
    /// OAUTHBEARER (RFC 7628 section 3.1).
    OAuthBearer {
        /// The identity of the `a=` field, when the client sent one.
        authorization_id: Option<String>,
        /// The bearer token.
        token: Secret<String>,
        /// The `host` the client connected to, when it sent one.
        host: Option<String>,
        /// The `port` the client connected to, when it sent one.
        port: Option<String>,
    },
}

impl AuthCredentials {
    /// Returns the identity the credentials name: the user name, or for OAUTHBEARER the
    /// authorization identity (empty when there is none).
    pub fn username(&self) -> &str {
        match self {
            Self::Plain { username, .. }
            | Self::Login { username, .. }
            | Self::CramMd5 { username, .. }
            | Self::XOAuth2 { username, .. } => username,
            Self::OAuthBearer {
                authorization_id, ..
            } => authorization_id.as_deref().unwrap_or_default(),
        }
    }

    /// Checks the credentials against the user's shared secret: the password for PLAIN and
    /// LOGIN, the key of the digest for CRAM-MD5, the token for XOAUTH2 and OAUTHBEARER.
    ///
    /// The comparison takes the same time wherever the first difference is.
    pub fn verify(&self, secret: &str) -> bool {
        match self {
            Self::Plain { password, .. } | Self::Login { password, .. } => {
                constant_time_eq(password.expose().as_bytes(), secret.as_bytes())
            }
            Self::XOAuth2 { token, .. } | Self::OAuthBearer { token, .. } => {
                constant_time_eq(token.expose().as_bytes(), secret.as_bytes())
            }
            Self::CramMd5 {
                challenge, digest, ..
            } => {
                let mut mac = Hmac::<Md5>::new_from_slice(secret.as_bytes())
                    .expect("HMAC accepts keys of any length");
                mac.update(challenge);
                let expected: String = mac
                    .finalize()
                    .into_bytes()
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                constant_time_eq(expected.as_bytes(), digest.as_bytes())
            }
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}
