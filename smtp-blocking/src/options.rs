//! Connection settings of a [`Client`](crate::Client), shared with other adapters.

use std::path::PathBuf;
use std::time::Duration;

use smtp_proto::client::Config;

/// The source of the trust anchors for the server certificate.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Roots {
    /// Mozilla's root certificates, compiled in from the `webpki-roots` crate.
    #[default]
    WebPki,
    /// The operating system's certificate store, read through `rustls-native-certs` when the
    /// client connects.
    Platform,
    /// Only the certificates in this PEM file; use it for a private certificate authority.
    CaFile(PathBuf),
}

/// Connection settings of a [`Client`](crate::Client): the session settings of the core,
/// certificate checks and the TCP connect timeout.
///
/// `smtp-tokio` takes the same options for its client and pool, so one configuration serves
/// both adapters. Start from [`Options::default`] and change the fields you need.
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct Options {
    /// Settings of the SMTP session: TLS policy, EHLO name, credentials, reply deadlines and
    /// transcript. Default: [`Config::default`], which requires STARTTLS.
    pub session: Config,
    /// Trust anchors for the server certificate. Default: [`Roots::WebPki`].
    pub roots: Roots,
    /// Accepts any server certificate: expired, self-signed or issued for another name.
    ///
    /// **For tests against throwaway servers only.** With this set, anyone on the path can read
    /// and change the whole session, credentials included, so TLS protects nothing. The
    /// handshake signatures are still checked. Default: `false`.
    pub accept_invalid_certs: bool,
    /// The name the server certificate must be valid for. Default: `None`, meaning the host
    /// part of the server address (a DNS name or an IP address).
    pub tls_server_name: Option<String>,
    /// How long the TCP connect to each resolved address may take. Default: 30 seconds.
    pub connect_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            session: Config::default(),
            roots: Roots::default(),
            accept_invalid_certs: false,
            tls_server_name: None,
            connect_timeout: Duration::from_secs(30),
        }
    }
}
