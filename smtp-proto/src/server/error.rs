//! The errors of the server session.

use std::fmt;

/// Why the server session ended, or why a call on it was rejected.
///
/// The variants group by fault: the client misbehaved or went away (`ConnectionClosed`,
/// `Timeout`, `TooManyErrors`, `InvalidBdat`), the TLS handshake failed
/// (`TlsHandshakeFailed`), or the application misused the API (`UnknownHandle`,
/// `InvalidReply`, `NotHandshaking`, `Closed`).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The client closed the connection before QUIT.
    ConnectionClosed,
    /// The client sent nothing for longer than the configured timeout (RFC 5321 section
    /// 4.5.3.2.7); the session sent `421 4.4.2`.
    Timeout,
    /// The client caused more error replies than
    /// [`Config::max_errors`](crate::server::Config::max_errors); the session sent `421 4.7.0`.
    TooManyErrors,
    /// A BDAT command had an unreadable chunk size, so the end of its chunk is unknown and no
    /// later byte can be trusted; the session sent `421 4.5.0`.
    InvalidBdat,
    /// The TLS handshake after STARTTLS failed, as the adapter reported with
    /// [`Session::tls_failed`](crate::server::Session::tls_failed).
    TlsHandshakeFailed,
    /// No decision is pending for this handle: it was answered already, or it belongs to
    /// another session.
    UnknownHandle,
    /// The reply does not fit the answer: `accept_with` takes a 2xx reply and `reject` a 4xx or
    /// 5xx reply, and the replies to EHLO and AUTH are the session's own.
    InvalidReply {
        /// The code of the rejected reply.
        code: u16,
    },
    /// [`Session::tls_established`](crate::server::Session::tls_established) was called while
    /// no TLS upgrade was pending.
    NotHandshaking,
    /// The session has ended.
    Closed,
}

impl Error {
    /// Tells whether the error is the application's mistake rather than the client's.
    pub fn is_misuse(&self) -> bool {
        matches!(
            self,
            Self::UnknownHandle | Self::InvalidReply { .. } | Self::NotHandshaking | Self::Closed
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectionClosed => f.write_str("the client closed the connection before QUIT"),
            Self::Timeout => f.write_str("the client sent nothing before the timeout"),
            Self::TooManyErrors => f.write_str("the client caused too many error replies"),
            Self::InvalidBdat => {
                f.write_str("invalid BDAT chunk size, so the rest of the stream cannot be read")
            }
            Self::TlsHandshakeFailed => f.write_str("the TLS handshake after STARTTLS failed"),
            Self::UnknownHandle => f.write_str(
                "no decision is pending for this handle: answer each event's handle once",
            ),
            Self::InvalidReply { code } => write!(
                f,
                "reply code {code} does not fit: accept_with takes 2xx, reject takes 4xx or 5xx, \
                 and EHLO and AUTH replies are the session's own"
            ),
            Self::NotHandshaking => {
                f.write_str("tls_established called while no TLS upgrade was pending")
            }
            Self::Closed => f.write_str("the session has ended"),
        }
    }
}

impl std::error::Error for Error {}
