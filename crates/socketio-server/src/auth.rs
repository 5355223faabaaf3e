//! JWT verification of the handshake's `auth.token`: HS256 with a shared secret, or RS256/ES256
//! with a public key file; `exp`, `nbf`, issuer and audience checked. Refusals reach the client
//! as `connect_error` with a message and a machine-readable `data.code`.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use socketio::ConnectError;

use crate::config::{Config, ConfigError};

/// The authenticated user, attached to each socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    /// The token's `sub`.
    pub(crate) id: String,
    /// The token's `name`, or the id.
    pub(crate) name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Verifies tokens; in development mode it can also issue them.
pub(crate) struct Auth {
    key: DecodingKey,
    validation: Validation,
    /// Development mode: the key tokens are signed with.
    issuer_key: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

fn refuse(message: &str, code: &str) -> ConnectError {
    ConnectError::new(message).with_data(serde_json::json!({ "code": code }))
}

impl Auth {
    pub(crate) fn from_config(config: &Config) -> Result<Auth, ConfigError> {
        let invalid = |setting: &str, reason: String| ConfigError::Invalid {
            setting: setting.to_owned(),
            reason,
        };
        let (algorithm, key, issuer_key) = match (
            config.auth_algorithm.as_str(),
            &config.auth_secret,
            &config.auth_public_key_file,
        ) {
            ("HS256", Some(secret), _) => (
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
                None,
            ),
            ("HS256", None, _) if config.auth_dev => {
                // Development mode: a random secret for this run, and tokens issued by /dev/token.
                let mut secret = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut secret);
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(&secret),
                    Some(EncodingKey::from_secret(&secret)),
                )
            }
            ("HS256", None, _) => {
                return Err(invalid(
                    "auth.secret",
                    "is required for HS256 (or set auth.dev = true)".into(),
                ))
            }
            (alg @ ("RS256" | "ES256"), _, Some(path)) => {
                let pem = std::fs::read(path).map_err(|e| {
                    invalid("auth.public_key_file", format!("{}: {e}", path.display()))
                })?;
                let (algorithm, key) = if alg == "RS256" {
                    (Algorithm::RS256, DecodingKey::from_rsa_pem(&pem))
                } else {
                    (Algorithm::ES256, DecodingKey::from_ec_pem(&pem))
                };
                let key = key.map_err(|e| {
                    invalid(
                        "auth.public_key_file",
                        format!("{}: not a {alg} public key ({e})", path.display()),
                    )
                })?;
                (algorithm, key, None)
            }
            ("RS256" | "ES256", _, None) => {
                return Err(invalid(
                    "auth.public_key_file",
                    format!("is required for {}", config.auth_algorithm),
                ))
            }
            (other, _, _) => {
                return Err(invalid(
                    "auth.algorithm",
                    format!("'{other}' is not HS256, RS256 or ES256"),
                ))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|s| (*s).to_owned()).collect();
        match &config.auth_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.auth_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Auth {
            key,
            validation,
            issuer_key,
            issuer: config.auth_issuer.clone(),
            audience: config.auth_audience.clone(),
        })
    }

    /// Checks the handshake's `auth` payload and returns the user.
    #[cfg(test)]
    pub(crate) fn verify(&self, auth: &serde_json::Value) -> Result<User, ConnectError> {
        self.verify_until(auth).map(|(user, _)| user)
    }

    /// Checks the handshake's `auth` payload; the user and the token's expiry (`exp`).
    pub(crate) fn verify_until(
        &self,
        auth: &serde_json::Value,
    ) -> Result<(User, std::time::SystemTime), ConnectError> {
        let Some(token) = auth
            .get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
        else {
            return Err(refuse("No token provided", "NO_TOKEN"));
        };
        match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => {
                let exp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(data.claims.exp);
                let user = User {
                    name: data
                        .claims
                        .name
                        .clone()
                        .unwrap_or_else(|| data.claims.sub.clone()),
                    id: data.claims.sub,
                };
                Ok((user, exp))
            }
            Err(err) => Err(match err.kind() {
                ErrorKind::ExpiredSignature => refuse("Token expired", "TOKEN_EXPIRED"),
                ErrorKind::ImmatureSignature => refuse("Invalid token", "TOKEN_NOT_YET_VALID"),
                ErrorKind::InvalidIssuer => refuse("Invalid token", "WRONG_ISSUER"),
                ErrorKind::InvalidAudience => refuse("Invalid token", "WRONG_AUDIENCE"),
                ErrorKind::InvalidSignature => refuse("Invalid token", "BAD_SIGNATURE"),
                _ => refuse("Invalid token", "INVALID_TOKEN"),
            }),
        }
    }

    /// Development mode: a token for `id`/`name`, valid for `ttl_secs`.
    pub(crate) fn issue(&self, id: &str, name: &str, ttl_secs: u64) -> Option<String> {
        let key = self.issuer_key.as_ref()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: id.to_owned(),
            name: Some(name.to_owned()),
            exp: now + ttl_secs,
            nbf: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ok()
    }

    /// Whether tokens can be issued (development mode).
    pub(crate) fn is_dev(&self) -> bool {
        self.issuer_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs_config(secret: &str) -> Config {
        Config {
            auth_secret: Some(secret.into()),
            auth_issuer: Some("socketio-rs".into()),
            auth_audience: Some("chat".into()),
            ..Config::default()
        }
    }

    fn token(secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn code(err: ConnectError) -> (String, String) {
        let code = err
            .data
            .as_ref()
            .and_then(|d| d["code"].as_str())
            .unwrap_or("")
            .to_owned();
        (err.message, code)
    }

    #[test]
    fn hs256_checks_every_claim() {
        let auth = Auth::from_config(&hs_config("s3cret")).expect("auth");
        let good = serde_json::json!({"sub": "u1", "name": "Ann", "exp": now() + 60, "iss": "socketio-rs", "aud": "chat"});
        let user = auth
            .verify(&serde_json::json!({ "token": token("s3cret", good.clone()) }))
            .expect("valid");
        assert_eq!(
            user,
            User {
                id: "u1".into(),
                name: "Ann".into()
            }
        );
        let cases = [
            (serde_json::json!({}), ("No token provided", "NO_TOKEN")),
            (
                serde_json::json!({"token": ""}),
                ("No token provided", "NO_TOKEN"),
            ),
            (
                serde_json::json!({"token": "not.a.jwt"}),
                ("Invalid token", "INVALID_TOKEN"),
            ),
            (
                serde_json::json!({"token": token("other", good.clone())}),
                ("Invalid token", "BAD_SIGNATURE"),
            ),
        ];
        for (payload, (message, code_)) in cases {
            assert_eq!(
                code(auth.verify(&payload).expect_err("refused")),
                (message.into(), code_.into())
            );
        }
        let mut claims = good.clone();
        claims["exp"] = serde_json::json!(now() - 120);
        let expired = serde_json::json!({ "token": token("s3cret", claims) });
        assert_eq!(
            code(auth.verify(&expired).expect_err("expired")),
            ("Token expired".into(), "TOKEN_EXPIRED".into())
        );
        let mut claims = good.clone();
        claims["nbf"] = serde_json::json!(now() + 600);
        let early = serde_json::json!({ "token": token("s3cret", claims) });
        assert_eq!(
            code(auth.verify(&early).expect_err("early")).1,
            "TOKEN_NOT_YET_VALID"
        );
        let mut claims = good.clone();
        claims["iss"] = serde_json::json!("someone-else");
        let wrong_iss = serde_json::json!({ "token": token("s3cret", claims) });
        assert_eq!(
            code(auth.verify(&wrong_iss).expect_err("issuer")).1,
            "WRONG_ISSUER"
        );
        let mut claims = good;
        claims["aud"] = serde_json::json!("billing");
        let wrong_aud = serde_json::json!({ "token": token("s3cret", claims) });
        assert_eq!(
            code(auth.verify(&wrong_aud).expect_err("audience")).1,
            "WRONG_AUDIENCE"
        );
    }

    #[test]
    fn dev_mode_issues_tokens_it_accepts() {
        let auth = Auth::from_config(&Config::default()).expect("dev");
        assert!(auth.is_dev());
        let token = auth.issue("alice", "Alice", 60).expect("token");
        let user = auth
            .verify(&serde_json::json!({ "token": token }))
            .expect("valid");
        assert_eq!(user.name, "Alice");
    }

    /// Key pairs made by the openssl command, as an operator would make them.
    fn key_pair(dir: &std::path::Path, name: &str, args: &[&str]) -> (std::path::PathBuf, Vec<u8>) {
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        let ok = std::process::Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(&private)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && std::process::Command::new("openssl")
                .args(["pkey", "-pubout", "-in"])
                .arg(&private)
                .arg("-out")
                .arg(&public)
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "openssl could not make a {name} key pair");
        (public, std::fs::read(&private).expect("private key"))
    }

    #[test]
    fn rs256_and_es256_with_public_key_files() {
        let dir = std::env::temp_dir().join(format!("sio-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
        let ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
        for (alg, args) in [("RS256", &rsa[..]), ("ES256", &ec[..])] {
            let (public, private) = key_pair(&dir, alg, args);
            let (_, other_private) = key_pair(&dir, &format!("{alg}-other"), args);
            let config = Config {
                auth_algorithm: alg.into(),
                auth_public_key_file: Some(public),
                auth_dev: false,
                ..Config::default()
            };
            let auth = Auth::from_config(&config).expect(alg);
            assert!(!auth.is_dev());
            let sign = |pem: &[u8]| {
                let (algorithm, key) = if alg == "RS256" {
                    (Algorithm::RS256, EncodingKey::from_rsa_pem(pem))
                } else {
                    (Algorithm::ES256, EncodingKey::from_ec_pem(pem))
                };
                let claims = serde_json::json!({"sub": "u9", "exp": now() + 60});
                jsonwebtoken::encode(&Header::new(algorithm), &claims, &key.expect("private key"))
                    .expect("sign")
            };
            let user = auth
                .verify(&serde_json::json!({ "token": sign(&private) }))
                .expect(alg);
            assert_eq!(user.id, "u9");
            let forged = auth.verify(&serde_json::json!({ "token": sign(&other_private) }));
            assert_eq!(
                code(forged.expect_err("other key")).1,
                "BAD_SIGNATURE",
                "{alg}"
            );
            // An HS256 token is refused by an RS256/ES256 server (no algorithm confusion).
            let hs = token(
                "secret",
                serde_json::json!({"sub": "u9", "exp": now() + 60}),
            );
            assert!(
                auth.verify(&serde_json::json!({ "token": hs })).is_err(),
                "{alg}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn key_settings_are_checked() {
        let no_secret = Config {
            auth_dev: false,
            ..Config::default()
        };
        assert!(Auth::from_config(&no_secret)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .starts_with("auth.secret:"));
        let missing_file = Config {
            auth_algorithm: "RS256".into(),
            auth_public_key_file: Some("/nonexistent/key.pem".into()),
            ..Config::default()
        };
        assert!(Auth::from_config(&missing_file)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .starts_with("auth.public_key_file: /nonexistent/key.pem"));
        let bad_alg = Config {
            auth_algorithm: "none".into(),
            ..Config::default()
        };
        assert!(Auth::from_config(&bad_alg)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .starts_with("auth.algorithm:"));
    }
}
