//! The error type of the async client and the pool: network, TLS, configuration, session and
//! pool errors.

use std::fmt;
use std::io;
use std::time::Duration;

use smtp_blocking::Error as ClientError;
use smtp_proto::client::{Error as SessionError, Stage};

/// Why connecting, sending, a command or a pooled send failed.
///
/// The connection, TLS, settings and session errors are those of the blocking client,
/// [`ClientError`], so both adapters report a failure the same way. The other variants come
/// from the caller's own limits and from the pool.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// Connecting, TLS, the settings or the SMTP session failed, with the server's reply where
    /// there was one; the caller's connector failing is [`ClientError::Connect`].
    Client(ClientError),
    /// The overall deadline of a pooled send
    /// ([`PoolOptions::send_timeout`](crate::PoolOptions::send_timeout)) passed; the connection
    /// in use was closed.
    DeadlineExceeded {
        /// The deadline, counted from the call to [`Pool::send`](crate::Pool::send).
        limit: Duration,
        /// The step of the session when the deadline passed, or `None` while the send still
        /// waited for a connection. At [`Stage::EndOfData`] all of the message went out and the
        /// server may have accepted it.
        stage: Option<Stage>,
    },
    /// An earlier call on this [`Client`](crate::Client) was cancelled part-way, by dropping its
    /// future, so the connection was closed; connect again.
    Cancelled,
    /// The pool was closed with [`Pool::close`](crate::Pool::close).
    PoolClosed,
    /// A [`PoolOptions`](crate::PoolOptions) field is out of range.
    InvalidPoolOption {
        /// The field.
        option: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
}

impl Error {
    /// Tells whether retrying the same work cannot succeed without a change: a 5xx reply, a
    /// refused policy, a certificate that does not verify, invalid settings or a closed pool.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Client(error) => error.is_permanent(),
            Self::PoolClosed | Self::InvalidPoolOption { .. } => true,
            Self::DeadlineExceeded { .. } | Self::Cancelled => false,
        }
    }

    /// Tells whether the same work may succeed later. A message whose outcome is unknown is
    /// neither permanent nor transient, because a retry may deliver it twice: the session's
    /// [`OutcomeUnknown`](SessionError::OutcomeUnknown), and a deadline that passed while the
    /// reply to the end of data was awaited.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Client(error) => error.is_transient(),
            Self::DeadlineExceeded { stage, .. } => *stage != Some(Stage::EndOfData),
            _ => !self.is_permanent(),
        }
    }

    /// Returns the session error, if the SMTP session is what failed.
    pub fn smtp(&self) -> Option<&SessionError> {
        match self {
            Self::Client(error) => error.smtp(),
            _ => None,
        }
    }

    /// Tells whether the connection was lost: the server sent 421, closed or reset the
    /// connection. Before any message content went out, such a failure on a reused
    /// connection is the mark of one the server had already dropped.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            Self::Client(ClientError::Io(error)) => is_disconnect(error),
            _ => matches!(
                self.smtp(),
                Some(SessionError::ServiceClosing { .. } | SessionError::ConnectionClosed { .. })
            ),
        }
    }

    /// Builds an equal error for a second caller; see [`ClientError::duplicate`].
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Client(error) => Self::Client(error.duplicate()),
            Self::DeadlineExceeded { limit, stage } => Self::DeadlineExceeded {
                limit: *limit,
                stage: *stage,
            },
            Self::Cancelled => Self::Cancelled,
            Self::PoolClosed => Self::PoolClosed,
            Self::InvalidPoolOption { option, expected } => {
                Self::InvalidPoolOption { option, expected }
            }
        }
    }

    /// Wraps an I/O error of the connection.
    pub(crate) fn io(error: io::Error) -> Self {
        Self::Client(ClientError::Io(error))
    }

    /// Wraps an I/O error from tokio-rustls, as [`ClientError::Tls`] when a TLS error is inside
    /// it.
    pub(crate) fn from_io(error: io::Error) -> Self {
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        Self::Client(tls.map_or(ClientError::Io(error), ClientError::Tls))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(error) => error.fmt(f),
            Self::DeadlineExceeded { limit, stage } => {
                write!(f, "send deadline of {limit:?} passed ")?;
                match stage {
                    None => f.write_str("while waiting for a connection"),
                    Some(Stage::EndOfData) => f.write_str(
                        "waiting for the reply to the end of data; the message may or may not \
                         have been accepted",
                    ),
                    Some(stage) => write!(f, "during {stage}; the message was not delivered"),
                }
            }
            Self::Cancelled => f.write_str(
                "an earlier call on this connection was cancelled part-way, so the connection \
                 was closed; connect again",
            ),
            Self::PoolClosed => f.write_str("the connection pool is closed"),
            Self::InvalidPoolOption { option, expected } => {
                write!(f, "invalid pool option {option}: it must be {expected}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Client(error) => error.source(),
            _ => None,
        }
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        Self::Client(error)
    }
}

impl From<SessionError> for Error {
    fn from(error: SessionError) -> Self {
        Self::Client(ClientError::Smtp(error))
    }
}

/// Tells whether an I/O error means the peer closed or reset the connection.
pub(crate) fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_classified_by_stage() {
        let limit = Duration::from_secs(5);
        let cases = [
            ("waiting for a connection", None, true),
            ("during RCPT", Some(Stage::Rcpt), true),
            ("during message data", Some(Stage::MessageData), true),
            ("after the end of data", Some(Stage::EndOfData), false),
        ];
        for (label, stage, transient) in cases {
            let error = Error::DeadlineExceeded { limit, stage };

            assert!(!error.is_permanent(), "{label}");
            assert_eq!(error.is_transient(), transient, "{label}");
        }
    }

    #[test]
    fn deadline_message_names_the_outcome() {
        let cases = [
            (
                None,
                "send deadline of 5s passed while waiting for a connection",
            ),
            (
                Some(Stage::Rcpt),
                "send deadline of 5s passed during RCPT TO; the message was not delivered",
            ),
            (
                Some(Stage::EndOfData),
                "send deadline of 5s passed waiting for the reply to the end of data; the \
                 message may or may not have been accepted",
            ),
        ];
        for (stage, expected) in cases {
            let error = Error::DeadlineExceeded {
                limit: Duration::from_secs(5),
                stage,
            };

            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn connection_lost_errors() {
        let cases = [
            (
                "connection closed",
                Error::from(SessionError::ConnectionClosed { stage: Stage::Mail }),
                true,
            ),
            (
                "reset",
                Error::io(io::Error::from(io::ErrorKind::ConnectionReset)),
                true,
            ),
            (
                "timeout",
                Error::from(SessionError::Timeout { stage: Stage::Mail }),
                false,
            ),
            (
                "outcome unknown",
                Error::from(SessionError::OutcomeUnknown { closed: true }),
                false,
            ),
            ("cancelled", Error::Cancelled, false),
        ];
        for (label, error, lost) in cases {
            assert_eq!(error.is_connection_lost(), lost, "{label}");
        }
    }

    #[test]
    fn tls_error_inside_io_error_is_unwrapped() {
        let inner = rustls::Error::General("bad record".to_owned());
        let error = Error::from_io(io::Error::new(io::ErrorKind::InvalidData, inner.clone()));

        assert!(
            matches!(error, Error::Client(ClientError::Tls(ref tls)) if *tls == inner),
            "{error:?}"
        );
    }

    #[test]
    fn pool_option_message_names_the_fix() {
        let error = Error::InvalidPoolOption {
            option: "max_connections",
            expected: "at least 1",
        };

        assert_eq!(
            error.to_string(),
            "invalid pool option max_connections: it must be at least 1"
        );
        assert!(error.is_permanent());
    }
}
