//! TLS to Redis (`rediss://`): fred's rustls connector with the system's certificate
//! authorities, or with those of [`RedisConfig::tls_ca_file`], and a client certificate
//! ([`RedisConfig::tls_client_cert`]) for a Redis that asks for one. Without the `tls` feature a
//! TLS URL is refused: connecting in plain text to what was meant to be encrypted must not happen
//! quietly.

use fred::types::config::Config;
use socketio::AdapterError;

use crate::conn::RedisConfig;

/// Whether `url` asks for TLS (`rediss://`, `rediss-cluster://`, `valkeys://`, …).
fn wants_tls(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or_default();
    scheme.starts_with("rediss") || scheme.starts_with("valkeys")
}

/// The TLS files `config` names, checked for what goes together: `None` when there are none.
fn files(config: &RedisConfig) -> Result<Option<TlsFiles<'_>>, AdapterError> {
    let client = match (&config.tls_cert_file, &config.tls_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        _ => {
            return Err(AdapterError::backend(
                "redis: a TLS client certificate needs both its certificate and its key file",
            ))
        }
    };
    if config.tls_ca_file.is_none() && client.is_none() {
        return Ok(None);
    }
    if !wants_tls(&config.url) {
        return Err(AdapterError::backend(
            "redis: TLS files are set but the URL is not rediss://",
        ));
    }
    Ok(Some(TlsFiles {
        ca: config.tls_ca_file.as_deref(),
        client,
    }))
}

/// What [`files`] found.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
struct TlsFiles<'a> {
    ca: Option<&'a std::path::Path>,
    client: Option<(&'a std::path::Path, &'a std::path::Path)>,
}

/// Sets up TLS for `redis` as `config` asks.
#[cfg(feature = "tls")]
pub(crate) fn configure(redis: &mut Config, config: &RedisConfig) -> Result<(), AdapterError> {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let Some(files) = files(config)? else {
        // fred's own connector: the system's authorities, no client certificate.
        return Ok(());
    };
    let unreadable = |path: &Path, err: &dyn std::fmt::Display| {
        AdapterError::backend(format!("redis: TLS file {}: {err}", path.display()))
    };
    let certificates = |path: &Path| -> Result<Vec<CertificateDer<'static>>, AdapterError> {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| unreadable(path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(path, &e))?;
        if certs.is_empty() {
            return Err(unreadable(path, &"no certificate in it"));
        }
        Ok(certs)
    };
    let mut roots = rustls::RootCertStore::empty();
    match files.ca {
        Some(path) => {
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| unreadable(path, &e))?;
            }
        }
        None => {
            // As fred does without a CA file; certificates the system store could not give
            // are skipped, as long as some are left.
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(AdapterError::backend(format!(
                    "redis: no usable certificate authority in the system store{}",
                    native
                        .errors
                        .first()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdapterError::backend(format!("redis: TLS: {e}")))?
        .with_root_certificates(roots);
    let client = match files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = certificates(cert)?;
            let private = PrivateKeyDer::from_pem_file(key).map_err(|e| unreadable(key, &e))?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                AdapterError::backend(format!(
                    "redis: TLS client certificate {} with key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?
        }
    };
    redis.tls = Some(fred::types::config::TlsConnector::from(client).into());
    Ok(())
}

/// Without the `tls` feature: a TLS URL or a TLS file is an error.
#[cfg(not(feature = "tls"))]
pub(crate) fn configure(_: &mut Config, config: &RedisConfig) -> Result<(), AdapterError> {
    if files(config)?.is_some() || wants_tls(&config.url) {
        return Err(AdapterError::backend(
            "redis: rediss:// needs socketio-redis built with its `tls` feature",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_urls_are_recognised() {
        for url in [
            "rediss://h:6380",
            "rediss-cluster://h:1?node=h:2",
            "valkeys://h",
        ] {
            assert!(wants_tls(url), "{url}");
        }
        for url in [
            "redis://h:6379",
            "redis-cluster://h:1",
            "valkey://h",
            "h:6379",
        ] {
            assert!(!wants_tls(url), "{url}");
        }
    }

    #[test]
    fn a_ca_file_is_checked_before_connecting() {
        let mut redis = Config::from_url("redis://127.0.0.1:6379").expect("url");
        let config = RedisConfig::new("redis://127.0.0.1:6379").tls_ca_file("/nonexistent.pem");
        assert!(configure(&mut redis, &config).is_err());
        let mut redis = Config::from_url("rediss://127.0.0.1:6380").expect("url");
        let config = RedisConfig::new("rediss://127.0.0.1:6380").tls_ca_file("/nonexistent.pem");
        let err = configure(&mut redis, &config).expect_err("missing file");
        #[cfg(feature = "tls")]
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
        #[cfg(not(feature = "tls"))]
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_a_tls_url() {
        let mut config = RedisConfig::new("rediss://127.0.0.1:6380");
        config.tls_cert_file = Some("/etc/client.pem".into());
        let mut redis = Config::from_url(&config.url).expect("url");
        let err = configure(&mut redis, &config).expect_err("no key");
        assert!(err.to_string().contains("key file"), "{err}");
        let config = RedisConfig::new("redis://127.0.0.1:6379").tls_client_cert("/c.pem", "/k.pem");
        let mut redis = Config::from_url(&config.url).expect("url");
        assert!(
            configure(&mut redis, &config).is_err(),
            "plain URL with TLS files"
        );
    }

    #[test]
    #[cfg(feature = "tls")]
    fn unreadable_client_files_are_named() {
        let dir =
            std::env::temp_dir().join(format!("socketio-redis-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let config = RedisConfig::new("rediss://127.0.0.1:6380")
            .tls_client_cert(&empty, dir.join("missing.key"));
        let mut redis = Config::from_url(&config.url).expect("url");
        let err = configure(&mut redis, &config).expect_err("empty chain");
        // The system store may be empty here; either way the error says which file or store.
        assert!(
            err.to_string().contains("empty.pem") || err.to_string().contains("system store"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    #[cfg(not(feature = "tls"))]
    fn without_the_feature_a_tls_url_is_refused_not_downgraded() {
        let mut redis = Config::from_url("rediss://127.0.0.1:6380").expect("url");
        let err = configure(&mut redis, &RedisConfig::new("rediss://127.0.0.1:6380"))
            .expect_err("refused");
        assert!(err.to_string().contains("`tls` feature"), "{err}");
        let mut redis = Config::from_url("redis://127.0.0.1:6379").expect("url");
        assert!(configure(&mut redis, &RedisConfig::new("redis://127.0.0.1:6379")).is_ok());
    }
}
