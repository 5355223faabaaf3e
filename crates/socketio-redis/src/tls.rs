//! TLS to Redis (`rediss://`): fred's rustls connector with the system's certificate
//! authorities, or with those of [`RedisConfig::tls_ca_file`]. Without the `tls` feature a TLS
//! URL is refused: connecting in plain text to what was meant to be encrypted must not happen
//! quietly.

use fred::types::config::Config;
use socketio::AdapterError;

use crate::conn::RedisConfig;

/// Whether `url` asks for TLS (`rediss://`, `rediss-cluster://`, `valkeys://`, …).
fn wants_tls(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or_default();
    scheme.starts_with("rediss") || scheme.starts_with("valkeys")
}

/// Sets up TLS for `redis` as `config` asks.
#[cfg(feature = "tls")]
pub(crate) fn configure(redis: &mut Config, config: &RedisConfig) -> Result<(), AdapterError> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let Some(path) = &config.tls_ca_file else {
        return Ok(());
    };
    if !wants_tls(&config.url) {
        return Err(AdapterError::backend(
            "redis: a TLS CA file is set but the URL is not rediss://",
        ));
    }
    let unreadable = |err: &dyn std::fmt::Display| {
        AdapterError::backend(format!("redis: TLS CA file {}: {err}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        roots
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if roots.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    redis.tls = Some(fred::types::config::TlsConnector::from(client).into());
    Ok(())
}

/// Without the `tls` feature: a TLS URL or a CA file is an error.
#[cfg(not(feature = "tls"))]
pub(crate) fn configure(_: &mut Config, config: &RedisConfig) -> Result<(), AdapterError> {
    if wants_tls(&config.url) || config.tls_ca_file.is_some() {
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
