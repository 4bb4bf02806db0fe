//! The error of starting the embedded server.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why [`Server::start`](crate::server::Server::start) failed.
///
/// The variants group by fault: the folder or a certificate file cannot be used (`Folder`,
/// `CertificateFile`), the address cannot be bound (`Bind`), or the TLS setup failed
/// (`CertificateGeneration`, `Tls`). Errors of single connections never reach the caller; the
/// server logs them and serves the next connection.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A folder or file under the server's folder could not be created or written.
    Folder {
        /// The folder or file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The listening socket could not be bound.
    Bind {
        /// The address from [`Server::listen`](crate::server::Server::listen).
        address: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// A certificate chain or private key file could not be read, or contains no usable PEM
    /// section.
    CertificateFile {
        /// The file from [`Server::certificate_files`](crate::server::Server::certificate_files).
        path: PathBuf,
        /// The read or parse error.
        source: io::Error,
    },
    /// rcgen failed to make the CA or the server certificate.
    CertificateGeneration(String),
    /// rustls rejected the certificate or key.
    Tls(rustls::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder { path, source } => {
                write!(f, "cannot write server folder {}: {source}", path.display())
            }
            Self::Bind { address, source } => write!(
                f,
                "cannot listen on {address}: {source}; choose another address or port 0 for a \
                 free one"
            ),
            Self::CertificateFile { path, source } => {
                write!(f, "cannot use TLS file {}: {source}", path.display())
            }
            Self::CertificateGeneration(message) => {
                write!(f, "cannot generate the TLS certificate: {message}")
            }
            Self::Tls(error) => write!(f, "invalid TLS certificate or key: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Folder { source, .. }
            | Self::Bind { source, .. }
            | Self::CertificateFile { source, .. } => Some(source),
            Self::Tls(error) => Some(error),
            Self::CertificateGeneration(_) => None,
        }
    }
}

impl From<rustls::Error> for Error {
    fn from(error: rustls::Error) -> Self {
        Self::Tls(error)
    }
}
