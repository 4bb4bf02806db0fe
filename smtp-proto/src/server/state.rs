//! Private state of the server session.
//!
//! ```text
//!   new(): 220 greeting
//!        |
//!        v
//!     Command <---------------------------------------------------------------+
//!        |  EHLO/HELO/LHLO, MAIL, RCPT: event, wait for the application ------+
//!        |  STARTTLS: 220 --> TlsHandshake --tls_established()--> Command (all state reset)
//!        |  AUTH: Auth (334 challenges) --credentials--> event, wait --------+
//!        |  DATA: 354 --> Data --CRLF.CRLF--> event MessageComplete, wait ---+
//!        |  BDAT n: Chunk (n octets) --250, or with LAST: MessageComplete ---+
//!        |  a line over 512 octets: SkipLine --LF--> 500 --------------------+
//!        |
//!        +-- QUIT: 221, a timeout: 421, too many errors: 421, EOF --> Closed
//! ```
//!
//! Input is read only in `Command`, `Auth`, `Data`, `Chunk` and `SkipLine`, and only while no
//! decision is pending, so every reply follows the replies of the commands before it. Bytes
//! that arrive in `TlsHandshake`, or that were buffered behind STARTTLS, are discarded.
//!
//! Independent of the phase: the greeting the client gave (`hello`), whether TLS is up,
//! the authenticated identity, and the open transaction.

use crate::address::{Domain, Mailbox};
use crate::auth::Mechanism;
use crate::command::MailParameters;
use crate::data::DataDecoder;
use crate::reply::Reply;
use crate::server::event::{Handle, HelloKind};

/// What the session reads next.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Command lines.
    Command,
    /// Lines of a SASL exchange after a 334 challenge.
    Auth(SaslStep),
    /// DATA content up to the end-of-data line.
    Data(DataState),
    /// The octets of one BDAT chunk.
    Chunk(ChunkState),
    /// The rest of a command line that broke the length limit, up to its LF.
    SkipLine,
    /// Waiting for the adapter's TLS handshake; input is discarded.
    TlsHandshake,
    /// The session has ended.
    Closed,
}

/// Progress of a SASL exchange: what the next client line answers.
#[derive(Debug)]
pub(crate) enum SaslStep {
    /// The PLAIN message, after an empty challenge.
    Plain,
    /// The LOGIN user name, after `334 VXNlcm5hbWU6` (`Username:`).
    LoginUsername,
    /// The LOGIN password, after `334 UGFzc3dvcmQ6` (`Password:`).
    LoginPassword { username: String },
    /// The CRAM-MD5 response to `challenge`.
    CramMd5 { challenge: Vec<u8> },
    /// The XOAUTH2 or OAUTHBEARER message, after an empty challenge.
    Bearer { mechanism: Mechanism },
    /// The client's dummy response to the error challenge of a rejected bearer token, after
    /// which `reply` goes out (RFC 7628 section 3.2.3).
    BearerError { reply: Reply },
}

/// DATA content being read.
#[derive(Debug)]
pub(crate) struct DataState {
    pub(crate) decoder: DataDecoder,
    /// The last wire octet was a CR, so an LF next completes a CRLF.
    pub(crate) after_cr: bool,
    /// Octets of content after dot removal.
    pub(crate) received: u64,
    /// The reply that rejects the message at its end. Once it is set, no more chunks go to the
    /// application.
    pub(crate) failure: Option<Reply>,
}

/// A BDAT chunk being read.
#[derive(Debug)]
pub(crate) struct ChunkState {
    /// The size the BDAT command announced.
    pub(crate) size: u64,
    pub(crate) remaining: u64,
    pub(crate) last: bool,
    /// The reply that rejects this chunk once its octets are read and discarded.
    pub(crate) rejection: Option<Reply>,
}

/// A mail transaction: MAIL was accepted (RFC 5321 section 3.3).
#[derive(Debug)]
pub(crate) struct Transaction {
    pub(crate) parameters: MailParameters,
    pub(crate) recipients: Vec<Mailbox>,
    /// A BDAT chunk arrived, so DATA and RCPT are out of sequence.
    pub(crate) chunked: bool,
    /// Content octets received in BDAT chunks.
    pub(crate) received: u64,
    /// The reply that rejected a BDAT chunk; every later chunk of the message gets it too
    /// (RFC 3030 section 4.2).
    pub(crate) bdat_failure: Option<Reply>,
}

/// A decision the application owes, in command order.
#[derive(Debug)]
pub(crate) struct Decision {
    pub(crate) handle: Handle,
    pub(crate) subject: Subject,
    pub(crate) answer: Option<Answer>,
}

/// What a decision is about.
#[derive(Debug)]
pub(crate) enum Subject {
    Hello {
        kind: HelloKind,
        domain: Domain,
    },
    Auth {
        mechanism: Mechanism,
        username: String,
    },
    Mail {
        parameters: MailParameters,
    },
    Rcpt {
        forward_path: Mailbox,
    },
    /// The end of a message over SMTP.
    Message,
    /// The end of a message for one LMTP recipient.
    LmtpRecipient {
        recipient: Mailbox,
    },
}

/// The application's answer to a decision.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Accepted, with the session's default reply or the given 2xx one.
    Accept(Option<Reply>),
    /// Rejected with a 4xx or 5xx reply.
    Reject(Reply),
}
