//! The server's TLS identity: a CA and a server certificate made by rcgen at start, or a chain
//! and key read from PEM files.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::server::Error;
use crate::server::store::write_atomically;

/// The rustls configuration of the listener and, for a generated certificate, the PEM file of
/// the CA that signed it.
#[derive(Debug)]
pub(crate) struct Identity {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_file: Option<PathBuf>,
}

impl Identity {
    /// Makes a CA and a server certificate for `names` (DNS names and IP addresses) signed by
    /// it, and writes `ca.pem`, `server.pem` (the chain) and `server.key` to `folder`.
    pub(crate) fn generate(folder: &Path, names: Vec<String>) -> Result<Self, Error> {
        let generation = |error: rcgen::Error| Error::CertificateGeneration(error.to_string());

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(generation)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "smtp-blocking embedded server CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(generation)?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(generation)?;

        let common_name = names.first().cloned().unwrap_or_default();
        let mut params = CertificateParams::new(names).map_err(generation)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(generation)?;
        let certificate = params.signed_by(&key, &ca).map_err(generation)?;

        let ca_file = folder.join(CA_FILE);
        write_atomically(&ca_file, ca.pem().as_bytes(), false)?;
        let chain_pem = format!("{}{}", certificate.pem(), ca.pem());
        write_atomically(&folder.join(CHAIN_FILE), chain_pem.as_bytes(), false)?;
        write_atomically(&folder.join(KEY_FILE), key.serialize_pem().as_bytes(), true)?;

        let chain = vec![certificate.der().clone(), ca.der().clone()];
        let key = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|message| Error::CertificateGeneration(message.to_owned()))?;
        Ok(Self {
            config: server_config(chain, key)?,
            ca_file: Some(ca_file),
        })
    }

    /// Reads a PEM certificate chain, the server's certificate first, and its PEM private key.
    pub(crate) fn load(chain_file: &Path, key_file: &Path) -> Result<Self, Error> {
        let file_error = |path: &Path, source: io::Error| Error::CertificateFile {
            path: path.to_owned(),
            source,
        };
        let invalid = |path: &Path, message: String| {
            file_error(path, io::Error::new(io::ErrorKind::InvalidData, message))
        };

        let chain_pem = std::fs::read(chain_file).map_err(|error| file_error(chain_file, error))?;
        let chain = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid(chain_file, format!("invalid PEM: {error}")))?;
        if chain.is_empty() {
            return Err(invalid(
                chain_file,
                "no CERTIFICATE section found; expected a PEM certificate chain".to_owned(),
            ));
        }

        let key_pem = std::fs::read(key_file).map_err(|error| file_error(key_file, error))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
            invalid(
                key_file,
                format!("no usable PEM private key ({error}); expected PKCS#8, PKCS#1 or SEC1"),
            )
        })?;

        Ok(Self {
            config: server_config(chain, key)?,
            ca_file: None,
        })
    }
}

/// Builds the rustls server configuration with the ring provider and no client certificates.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The generated CA certificate, for clients to trust.
pub(crate) const CA_FILE: &str = "ca.pem";
/// The generated server certificate followed by the CA certificate.
const CHAIN_FILE: &str = "server.pem";
/// The generated server key, readable by the owner only.
const KEY_FILE: &str = "server.key";
