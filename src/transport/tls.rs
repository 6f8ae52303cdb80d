//! TLS for TCP endpoints (rustls, ring provider). The server may require client
//! certificates signed by a given CA (mutual TLS); the client trusts a given CA or the
//! system's roots.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("invalid TLS configuration: {0}")]
pub struct TlsConfigError(String);

fn bad(what: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError(what.to_string())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(bad(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| bad(format!("key: {e}")))
}

fn roots(ca: Option<&str>) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(pem) => {
            for c in certs(pem, "ca")? {
                store.add(c).map_err(|e| bad(format!("ca: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(c);
            }
            if store.is_empty() {
                return Err(bad("no system root certificates found; pass `ca`"));
            }
        }
    }
    Ok(store)
}

/// A server's TLS settings: its certificate chain and key, and optionally the CA its
/// clients' certificates must be signed by.
pub fn server_config(
    cert: &str,
    key_pem: &str,
    client_ca: Option<&str>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad)?;
    let builder = match client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(Some(ca))?), provider())
                    .build()
                    .map_err(bad)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let cfg = builder
        .with_single_cert(certs(cert, "cert")?, key(key_pem)?)
        .map_err(bad)?;
    Ok(Arc::new(cfg))
}

/// A client's TLS settings: whom to trust (`ca`, or the system's roots), and optionally
/// its own certificate for servers that require one.
pub fn client_config(
    ca: Option<&str>,
    identity: Option<(&str, &str)>,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad)?
        .with_root_certificates(roots(ca)?);
    let cfg = match identity {
        Some((cert, key_pem)) => builder
            .with_client_auth_cert(certs(cert, "cert")?, key(key_pem)?)
            .map_err(bad)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// TLS for a node that both accepts and dials (a membership node): one certificate,
/// presented either way; with `ca`, peers must present one signed by it (mutual TLS) and
/// are trusted only if signed by it.
#[derive(Clone)]
pub struct PeerTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

impl PeerTls {
    pub fn new(cert: &str, key_pem: &str, ca: Option<&str>) -> Result<PeerTls, TlsConfigError> {
        Ok(PeerTls {
            server: server_config(cert, key_pem, ca)?,
            client: client_config(ca, Some((cert, key_pem)))?,
        })
    }
}

/// The name a client checks the server's certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    ServerName::try_from(host.to_string()).map_err(|e| bad(format!("server name {host:?}: {e}")))
}
