//! HTTPS and WSS: the certificate chain and key from PEM files, and their reload on SIGHUP
//! (new connections use the new certificate; open ones are not touched).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use engineio::rustls::pki_types::pem::PemObject;
use engineio::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use engineio::rustls::ServerConfig;
use engineio::TlsSource;

/// Reads and checks the PEM files into a rustls configuration (HTTP/1.1 only).
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls.cert_file: {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert_file: {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "tls.cert_file: {}: no certificate in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls.key_file: {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls.key_file: does not fit the certificate: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The configuration to serve with, and a task that reloads it on every SIGHUP (a bad file is
/// logged and the previous certificate stays).
pub(crate) fn source(cert: PathBuf, key: PathBuf) -> Result<TlsSource, String> {
    let source: TlsSource = Arc::new(RwLock::new(load(&cert, &key)?));
    let reloaded = source.clone();
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the TLS certificate will not be reloaded");
            return;
        };
        while hup.recv().await.is_some() {
            match load(&cert, &key) {
                Ok(config) => {
                    *reloaded.write().unwrap_or_else(|e| e.into_inner()) = config;
                    tracing::info!(cert = %cert.display(), "SIGHUP: TLS certificate reloaded");
                }
                Err(err) => {
                    tracing::warn!(%err, "SIGHUP: TLS certificate not reloaded, the previous one stays")
                }
            }
        }
    });
    Ok(source)
}
