//! The STARTTLS certificate: a PEM chain and key loaded into a rustls acceptor.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

/// The certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate; give the certificate chain, leaf first")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {detail}")]
    NoKey { path: PathBuf, detail: String },
    #[error("certificate {certificate} and key {key} do not form a TLS configuration: {source}")]
    Config {
        certificate: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// Builds the acceptor from PEM files, with the ring provider and TLS 1.2 and 1.3.
pub fn acceptor(certificate: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let chain_pem = read(certificate)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: certificate.to_owned(),
        });
    }
    let key_pem = read(key)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError::NoKey {
        path: key.to_owned(),
        detail: err.to_string(),
    })?;
    let config_error = |source| TlsError::Config {
        certificate: certificate.to_owned(),
        key: key.to_owned(),
        source,
    };
    // rustls 0.23.48 deprecates the ring provider because it lacks
    // post-quantum key exchange; ring is kept because aws-lc-rs needs cmake
    // and a C toolchain to build.
    #[allow(deprecated)]
    let provider = ring::default_provider();
    let config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(config_error)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
