//! The error type of the blocking client: network, TLS, configuration and session errors.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why connecting, sending or a command failed.
///
/// The variants group by fault: the address or settings are wrong (`InvalidServer`,
/// `InvalidTlsServerName`, `CaFile`), the network failed (`Resolve`, `Connect`, `Io`), the TLS
/// handshake failed (`Tls`, which includes a server certificate that did not verify), or the
/// SMTP session failed (`Smtp`, carrying the server's reply where there was one).
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The TCP connection could not be opened to any address of the server.
    Connect {
        /// The host and port connected to, such as `mail.example.test:587` or `[::1]:587`.
        server: String,
        /// The error of the last address tried.
        source: io::Error,
    },
    /// The server's host name could not be resolved, or resolved to no address.
    Resolve {
        /// The host and port to resolve, such as `mail.example.test:587`.
        server: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Reading from or writing to the connection failed, a TLS record after the handshake was
    /// invalid, or the TLS handshake timed out.
    Io(io::Error),
    /// The TLS set-up failed, for implicit TLS or after STARTTLS: the certificate did not verify,
    /// client and server share no protocol version or cipher suite, the server sent an alert, or
    /// it answered the handshake with bytes that are not TLS, such as a clear-text SMTP greeting.
    Tls(rustls::Error),
    /// The CA file could not be read, or contains no usable certificate.
    CaFile {
        /// The file from [`Roots::CaFile`](crate::Roots::CaFile).
        path: PathBuf,
        /// The read or parse error.
        source: io::Error,
    },
    /// The server address is not `host`, `host:port` or `[ipv6]:port`.
    InvalidServer(String),
    /// The name to check the server certificate against is neither a DNS name nor an IP
    /// address.
    InvalidTlsServerName(String),
    /// The SMTP session failed or the server rejected the work.
    Smtp(smtp_proto::client::Error),
}

impl Error {
    /// Tells whether retrying the same work cannot succeed without a change: a 5xx reply, a
    /// refused policy, a failed TLS set-up, or invalid settings.
    ///
    /// Every [`Tls`](Self::Tls) error is permanent, because the same server answers the next
    /// handshake the same way. A TLS handshake that timed out is an [`Io`](Self::Io) error and
    /// transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Smtp(error) => error.is_permanent(),
            Self::Tls(_)
            | Self::CaFile { .. }
            | Self::InvalidServer(_)
            | Self::InvalidTlsServerName(_) => true,
            Self::Connect { .. } | Self::Resolve { .. } | Self::Io(_) => false,
        }
    }

    /// Tells whether the same work may succeed later. A message whose outcome is unknown
    /// ([`OutcomeUnknown`](smtp_proto::client::Error::OutcomeUnknown)) is neither permanent nor
    /// transient: a retry may deliver it twice.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Smtp(error) => error.is_transient(),
            _ => !self.is_permanent(),
        }
    }

    /// Returns the session error, if the SMTP session is what failed.
    pub fn smtp(&self) -> Option<&smtp_proto::client::Error> {
        match self {
            Self::Smtp(error) => Some(error),
            _ => None,
        }
    }

    /// Builds an equal error for a second caller, such as every later call on a connection that
    /// failed. `io::Error` is not `Clone`, so its kind and message are copied and its source is
    /// dropped.
    pub fn duplicate(&self) -> Self {
        let copy_io = |error: &io::Error| io::Error::new(error.kind(), error.to_string());
        match self {
            Self::Connect { server, source } => Self::Connect {
                server: server.clone(),
                source: copy_io(source),
            },
            Self::Resolve { server, source } => Self::Resolve {
                server: server.clone(),
                source: copy_io(source),
            },
            Self::Io(error) => Self::Io(copy_io(error)),
            Self::Tls(error) => Self::Tls(error.clone()),
            Self::CaFile { path, source } => Self::CaFile {
                path: path.clone(),
                source: copy_io(source),
            },
            Self::InvalidServer(server) => Self::InvalidServer(server.clone()),
            Self::InvalidTlsServerName(name) => Self::InvalidTlsServerName(name.clone()),
            Self::Smtp(error) => Self::Smtp(error.clone()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { server, source } => {
                write!(f, "failed to connect to {server}: {source}")
            }
            Self::Resolve { server, source } => {
                write!(f, "failed to resolve the host of {server}: {source}")
            }
            Self::Io(error) => write!(f, "connection failed: {error}"),
            Self::Tls(error) => write!(f, "TLS handshake failed: {error}"),
            Self::CaFile { path, source } => {
                write!(f, "invalid CA file {}: {source}", path.display())
            }
            Self::InvalidServer(server) => write!(
                f,
                "invalid server address {server:?}: expected host, host:port or [ipv6]:port with \
                 a port from 1 to 65535"
            ),
            Self::InvalidTlsServerName(name) => write!(
                f,
                "invalid TLS server name {name:?}: expected a DNS name or an IP address"
            ),
            Self::Smtp(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { source, .. }
            | Self::Resolve { source, .. }
            | Self::CaFile { source, .. }
            | Self::Io(source) => Some(source),
            Self::Tls(error) => Some(error),
            Self::Smtp(error) => Some(error),
            Self::InvalidServer(_) | Self::InvalidTlsServerName(_) => None,
        }
    }
}

impl From<smtp_proto::client::Error> for Error {
    fn from(error: smtp_proto::client::Error) -> Self {
        Self::Smtp(error)
    }
}

impl From<rustls::Error> for Error {
    fn from(error: rustls::Error) -> Self {
        Self::Tls(error)
    }
}
