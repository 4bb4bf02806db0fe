//! The rustls client configuration: trust anchors, certificate checks and the server name.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CipherSuite, ClientConfig, CommonState, DigitallySignedStruct, ProtocolVersion, RootCertStore,
    SignatureScheme,
};

use crate::error::Error;
use crate::options::{Options, Roots};

/// The protocol version and cipher suite the TLS handshake settled on.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The TLS version, such as `TLSv1_3`.
    pub protocol_version: ProtocolVersion,
    /// The cipher suite, such as `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: CipherSuite,
}

impl TlsInfo {
    /// Reads the negotiated parameters of a client or server connection whose handshake is
    /// complete; `None` while it is still handshaking.
    pub fn of(connection: &CommonState) -> Option<Self> {
        Some(Self {
            protocol_version: connection.protocol_version()?,
            cipher_suite: connection.negotiated_cipher_suite()?.suite(),
        })
    }
}

impl fmt::Display for TlsInfo {
    /// Writes the version and cipher suite, such as `TLS1.3, TLS13_AES_256_GCM_SHA384`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol_version {
            ProtocolVersion::TLSv1_3 => f.write_str("TLS1.3")?,
            ProtocolVersion::TLSv1_2 => f.write_str("TLS1.2")?,
            other => write!(f, "{other:?}")?,
        }
        write!(f, ", {:?}", self.cipher_suite)
    }
}

/// Everything a TLS handshake needs: the rustls configuration with the ring provider and the
/// trust anchors of [`Options::roots`], and the name the server certificate must match.
///
/// [`Client`](crate::Client) builds one per connection. Other adapters over the same
/// [`Options`], such as `smtp-tokio`, build it once and share it between connections, so they
/// read a CA file or the platform store once.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
}

impl TlsSetup {
    /// Builds the configuration from the options; `host` is the host part of the server address,
    /// used as the server name unless [`Options::tls_server_name`] is set.
    pub fn new(options: &Options, host: &str) -> Result<Self, Error> {
        let name = options.tls_server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| Error::InvalidTlsServerName(name.to_owned()))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = if options.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(root_store(&options.roots)?)
                .with_no_client_auth()
        };

        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Returns the rustls client configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Returns the name the server certificate must be valid for.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

/// Loads the trust anchors `roots` names.
fn root_store(roots: &Roots) -> Result<RootCertStore, Error> {
    match roots {
        Roots::WebPki => Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
        Roots::Platform => {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let reasons: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "no root certificate found in the platform store ({}); pass a CA file \
                         instead",
                        reasons.join("; ")
                    ),
                )));
            }
            Ok(store)
        }
        Roots::CaFile(path) => ca_file_store(path),
    }
}

/// Reads every certificate of a PEM file into a root store; a file without one is an error.
fn ca_file_store(path: &Path) -> Result<RootCertStore, Error> {
    let ca_error = |source: io::Error| Error::CaFile {
        path: path.to_owned(),
        source,
    };
    let invalid = |message: String| ca_error(io::Error::new(io::ErrorKind::InvalidData, message));

    // Read the file first, so a missing file reports the operating system's error.
    let pem = std::fs::read(path).map_err(ca_error)?;
    let mut store = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate.map_err(|error| invalid(format!("invalid PEM: {error}")))?;
        store
            .add(certificate)
            .map_err(|error| invalid(format!("unusable certificate: {error}")))?;
    }
    if store.is_empty() {
        return Err(invalid(
            "no CERTIFICATE section found; expected PEM-encoded CA certificates".to_owned(),
        ));
    }
    Ok(store)
}

/// A certificate verifier that accepts every certificate but still checks that the server has
/// the private key of the certificate it sent, behind [`Options::accept_invalid_certs`].
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
