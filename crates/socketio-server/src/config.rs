//! Server settings from a TOML file, environment variables and command-line flags. Each setting
//! has one dotted name (`server.listen`); flags override the environment, which overrides the
//! file. A bad setting is one error that names it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Why the configuration could not be used. Each message names the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {reason}")]
    File {
        /// The path given.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting has a value that does not parse or is out of range.
    #[error("{setting}: {reason}")]
    Invalid {
        /// The dotted setting name.
        setting: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// A flag, variable or file key that is no setting.
    #[error("unknown option {0}")]
    Unknown(String),
    /// A `SOCKETIO_*` variable that is no setting.
    #[error("unknown variable {0}")]
    UnknownVariable(String),
}

fn invalid(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        reason: reason.into(),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Which adapter spreads broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AdapterKind {
    /// One process, in memory.
    Memory,
    /// Redis pub/sub, compatible with `@socket.io/redis-adapter`'s `createAdapter`.
    Redis,
    /// Redis 7 sharded pub/sub, compatible with `createShardedAdapter`.
    RedisSharded,
}

/// Every setting, with its default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Config {
    /// `server.listen`: address and port to listen on.
    pub(crate) listen: SocketAddr,
    /// `server.path`: Socket.IO path.
    pub(crate) path: String,
    /// `tls.cert_file` / `tls.key_file`: serve HTTPS and WSS with this PEM certificate chain
    /// and private key (both or neither); SIGHUP reloads them.
    pub(crate) tls_cert: Option<PathBuf>,
    /// See `tls_cert`.
    pub(crate) tls_key: Option<PathBuf>,
    /// `server.cors_origins`: allowed browser origins (comma-separated in env/flags).
    pub(crate) cors_origins: Vec<String>,
    /// `server.demo_page`: serve the chat page at `/`.
    pub(crate) demo_page: bool,
    /// `server.parser`: `default` (JSON) or `msgpack` (`socket.io-msgpack-parser`).
    pub(crate) parser: socketio::Parser,
    /// `server.serve_client`: serve the browser client at `<path>socket.io.min.js` and the
    /// other bundle files, as Node's `serveClient`.
    pub(crate) serve_client: bool,
    /// `engine.ping_interval_ms`.
    pub(crate) ping_interval: Duration,
    /// `engine.ping_timeout_ms`.
    pub(crate) ping_timeout: Duration,
    /// `engine.max_payload`: largest message in bytes.
    pub(crate) max_payload: usize,
    /// `engine.http_compression_threshold`: polling responses and served files of at least
    /// this many bytes are compressed when the client accepts it; `None` (0): never.
    pub(crate) http_compression: Option<usize>,
    /// `engine.transports`: `polling`, `websocket` or both (comma-separated).
    pub(crate) polling: bool,
    /// See `polling`.
    pub(crate) websocket: bool,
    /// `log.format`.
    pub(crate) log_format: LogFormat,
    /// `log.level`: a tracing filter (`info`, `socketio=debug,info`).
    pub(crate) log_level: String,
    /// `adapter.kind`.
    pub(crate) adapter: AdapterKind,
    /// `redis.url`: the Redis of the `redis` and `redis-sharded` adapters.
    pub(crate) redis_url: String,
    /// `redis.tls_ca_file`: for `rediss://`, the PEM certificate authorities to trust instead
    /// of the system's.
    pub(crate) redis_tls_ca: Option<PathBuf>,
    /// `redis.tls_cert_file` and `redis.tls_key_file`: the client certificate (PEM chain) and
    /// its key, for a Redis that asks for one (both or neither).
    pub(crate) redis_tls_cert: Option<PathBuf>,
    /// See `redis_tls_cert`.
    pub(crate) redis_tls_key: Option<PathBuf>,
    /// `redis.subscription_mode`: the sharded adapter's (`static`, `dynamic`,
    /// `dynamic-private`; the same on every node, Node's included).
    pub(crate) subscription_mode: socketio_redis::SubscriptionMode,
    /// `recovery.enabled`: connection state recovery.
    pub(crate) recovery: bool,
    /// `recovery.max_disconnection_ms`.
    pub(crate) recovery_duration: Duration,
    /// `shutdown.drain_ms`: how long connected clients keep being served after a stop signal.
    pub(crate) drain: Duration,
    /// `auth.algorithm`: HS256, RS256 or ES256.
    pub(crate) auth_algorithm: String,
    /// `auth.secret`: the HS256 secret.
    pub(crate) auth_secret: Option<String>,
    /// `auth.public_key_file`: PEM public key for RS256/ES256.
    pub(crate) auth_public_key_file: Option<PathBuf>,
    /// `auth.issuer`: required `iss`, when set.
    pub(crate) auth_issuer: Option<String>,
    /// `auth.audience`: required `aud`, when set.
    pub(crate) auth_audience: Option<String>,
    /// `auth.dev`: without a secret, use a random one and issue development tokens.
    pub(crate) auth_dev: bool,
    /// `auth.expiry_warning_ms`: how long before its token expires a socket gets
    /// `token-expiring`.
    pub(crate) auth_expiry_warning: Duration,
    /// `chat.rate_limit`: events per second each `/chat` socket may send (bursts of twice
    /// that); 0 turns the limit off.
    pub(crate) chat_rate_limit: u32,
    /// `admin.*`: the Admin UI dashboard.
    pub(crate) admin: AdminConfig,
    /// `limits.max_connections`, `limits.max_connections_per_address`,
    /// `limits.handshakes_per_second` (0: no limit).
    pub(crate) limits: socketio::SessionLimits,
}

/// The Admin UI settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AdminConfig {
    /// `admin.enabled`: instrument the server and serve the dashboard.
    pub(crate) enabled: bool,
    /// `admin.auth`: require a login (false: anyone who reaches the namespace is admitted).
    pub(crate) auth: bool,
    /// `admin.username`.
    pub(crate) username: String,
    /// `admin.password_hash`: bcrypt hash of the password (`socketio-server hash-password`).
    pub(crate) password_hash: Option<String>,
    /// `admin.readonly`: no join/leave/disconnect/emit from the dashboard.
    pub(crate) readonly: bool,
    /// `admin.mode`: development (every socket and event) or production (stats only).
    pub(crate) production: bool,
    /// `admin.namespace`: the namespace the dashboard connects to.
    pub(crate) namespace: String,
    /// `admin.ui_path`: where the binary serves the dashboard (empty: not served).
    pub(crate) ui_path: String,
    /// `admin.server_id`: how the dashboard names this server (default `hostname:port`).
    pub(crate) server_id: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: false,
            auth: true,
            username: "admin".into(),
            password_hash: None,
            readonly: false,
            production: false,
            namespace: "/admin".into(),
            ui_path: "/admin/".into(),
            server_id: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            path: "/socket.io/".into(),
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            demo_page: true,
            serve_client: true,
            parser: socketio::Parser::Default,
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            http_compression: Some(1024),
            polling: true,
            websocket: true,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            adapter: AdapterKind::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_tls_ca: None,
            redis_tls_cert: None,
            redis_tls_key: None,
            subscription_mode: socketio_redis::SubscriptionMode::default(),
            recovery: false,
            recovery_duration: Duration::from_millis(120_000),
            drain: Duration::from_millis(5_000),
            auth_algorithm: "HS256".into(),
            auth_secret: None,
            auth_public_key_file: None,
            auth_issuer: None,
            auth_audience: None,
            auth_dev: true,
            auth_expiry_warning: Duration::from_millis(30_000),
            chat_rate_limit: 20,
            admin: AdminConfig::default(),
            limits: socketio::SessionLimits::default(),
        }
    }
}

/// (dotted name, environment variable, command-line flag)
const SETTINGS: &[(&str, &str, &str)] = &[
    ("server.listen", "SOCKETIO_LISTEN", "--listen"),
    ("server.path", "SOCKETIO_PATH", "--path"),
    ("server.demo_page", "SOCKETIO_DEMO_PAGE", "--demo-page"),
    ("server.parser", "SOCKETIO_PARSER", "--parser"),
    (
        "server.serve_client",
        "SOCKETIO_SERVE_CLIENT",
        "--serve-client",
    ),
    (
        "server.cors_origins",
        "SOCKETIO_CORS_ORIGINS",
        "--cors-origins",
    ),
    (
        "engine.ping_interval_ms",
        "SOCKETIO_PING_INTERVAL_MS",
        "--ping-interval-ms",
    ),
    (
        "engine.ping_timeout_ms",
        "SOCKETIO_PING_TIMEOUT_MS",
        "--ping-timeout-ms",
    ),
    (
        "engine.max_payload",
        "SOCKETIO_MAX_PAYLOAD",
        "--max-payload",
    ),
    (
        "engine.http_compression_threshold",
        "SOCKETIO_HTTP_COMPRESSION_THRESHOLD",
        "--http-compression-threshold",
    ),
    ("engine.transports", "SOCKETIO_TRANSPORTS", "--transports"),
    ("tls.cert_file", "SOCKETIO_TLS_CERT_FILE", "--tls-cert-file"),
    ("tls.key_file", "SOCKETIO_TLS_KEY_FILE", "--tls-key-file"),
    ("log.format", "SOCKETIO_LOG_FORMAT", "--log-format"),
    ("log.level", "SOCKETIO_LOG_LEVEL", "--log-level"),
    ("adapter.kind", "SOCKETIO_ADAPTER", "--adapter"),
    ("redis.url", "SOCKETIO_REDIS_URL", "--redis-url"),
    (
        "redis.tls_ca_file",
        "SOCKETIO_REDIS_TLS_CA_FILE",
        "--redis-tls-ca-file",
    ),
    (
        "redis.tls_cert_file",
        "SOCKETIO_REDIS_TLS_CERT_FILE",
        "--redis-tls-cert-file",
    ),
    (
        "redis.tls_key_file",
        "SOCKETIO_REDIS_TLS_KEY_FILE",
        "--redis-tls-key-file",
    ),
    (
        "redis.subscription_mode",
        "SOCKETIO_REDIS_SUBSCRIPTION_MODE",
        "--redis-subscription-mode",
    ),
    ("recovery.enabled", "SOCKETIO_RECOVERY", "--recovery"),
    (
        "recovery.max_disconnection_ms",
        "SOCKETIO_RECOVERY_MAX_DISCONNECTION_MS",
        "--recovery-max-disconnection-ms",
    ),
    ("shutdown.drain_ms", "SOCKETIO_DRAIN_MS", "--drain-ms"),
    (
        "auth.algorithm",
        "SOCKETIO_AUTH_ALGORITHM",
        "--auth-algorithm",
    ),
    ("auth.secret", "SOCKETIO_AUTH_SECRET", "--auth-secret"),
    (
        "auth.public_key_file",
        "SOCKETIO_AUTH_PUBLIC_KEY_FILE",
        "--auth-public-key-file",
    ),
    ("auth.issuer", "SOCKETIO_AUTH_ISSUER", "--auth-issuer"),
    ("auth.audience", "SOCKETIO_AUTH_AUDIENCE", "--auth-audience"),
    ("auth.dev", "SOCKETIO_AUTH_DEV", "--auth-dev"),
    (
        "auth.expiry_warning_ms",
        "SOCKETIO_AUTH_EXPIRY_WARNING_MS",
        "--auth-expiry-warning-ms",
    ),
    (
        "chat.rate_limit",
        "SOCKETIO_CHAT_RATE_LIMIT",
        "--chat-rate-limit",
    ),
    (
        "limits.max_connections",
        "SOCKETIO_MAX_CONNECTIONS",
        "--max-connections",
    ),
    (
        "limits.max_connections_per_address",
        "SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS",
        "--max-connections-per-address",
    ),
    (
        "limits.handshakes_per_second",
        "SOCKETIO_HANDSHAKES_PER_SECOND",
        "--handshakes-per-second",
    ),
    ("admin.enabled", "SOCKETIO_ADMIN", "--admin"),
    ("admin.auth", "SOCKETIO_ADMIN_AUTH", "--admin-auth"),
    (
        "admin.username",
        "SOCKETIO_ADMIN_USERNAME",
        "--admin-username",
    ),
    (
        "admin.password_hash",
        "SOCKETIO_ADMIN_PASSWORD_HASH",
        "--admin-password-hash",
    ),
    (
        "admin.readonly",
        "SOCKETIO_ADMIN_READONLY",
        "--admin-readonly",
    ),
    ("admin.mode", "SOCKETIO_ADMIN_MODE", "--admin-mode"),
    (
        "admin.namespace",
        "SOCKETIO_ADMIN_NAMESPACE",
        "--admin-namespace",
    ),
    ("admin.ui_path", "SOCKETIO_ADMIN_UI_PATH", "--admin-ui-path"),
    (
        "admin.server_id",
        "SOCKETIO_ADMIN_SERVER_ID",
        "--admin-server-id",
    ),
];

/// Settings that take true or false: as a flag, the value may be left out (`--recovery`).
const BOOLEANS: &[&str] = &[
    "server.demo_page",
    "server.serve_client",
    "recovery.enabled",
    "auth.dev",
    "admin.enabled",
    "admin.auth",
    "admin.readonly",
];

/// `SOCKETIO_*` variables that are not settings but are read elsewhere (the file to load, and
/// the build script's offline inputs).
const OTHER_VARIABLES: &[&str] = &[
    "SOCKETIO_CONFIG",
    "SOCKETIO_CLIENT_DIST",
    "SOCKETIO_ADMIN_UI_DIR",
];

/// Refuses `SOCKETIO_*` variables that are no setting (a typo would otherwise be ignored),
/// suggesting the closest name.
pub(crate) fn check_variables<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ConfigError> {
    for name in names {
        if !name.starts_with("SOCKETIO_")
            || OTHER_VARIABLES.contains(&name)
            || SETTINGS.iter().any(|(_, var, _)| *var == name)
        {
            continue;
        }
        let known = SETTINGS.iter().map(|(_, var, _)| *var);
        return Err(ConfigError::UnknownVariable(match closest(name, known) {
            Some(near) => format!("{name} (did you mean {near}?)"),
            None => name.to_owned(),
        }));
    }
    Ok(())
}

/// The candidate within a few edits of `name`, if one is.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn millis(setting: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            invalid(
                setting,
                format!("'{value}' is not a number of milliseconds"),
            )
        })
}

/// A limit: a whole number, 0 meaning none.
fn count(setting: &str, value: &str) -> Result<Option<u32>, ConfigError> {
    let n: u32 = value.parse().map_err(|_| {
        invalid(
            setting,
            format!("'{value}' is not a whole number (0: no limit)"),
        )
    })?;
    Ok(Some(n).filter(|n| *n > 0))
}

fn boolean(setting: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(setting, format!("'{value}' is not true or false"))),
    }
}

/// A file setting: empty means none.
fn optional_path(value: &str) -> Option<PathBuf> {
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// A certificate and its key, given both or neither.
fn together(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    cert_setting: &str,
    key_setting: &str,
) -> Result<(), ConfigError> {
    if cert.is_some() == key.is_some() {
        return Ok(());
    }
    Err(invalid(
        cert_setting,
        format!("{cert_setting} and {key_setting} go together"),
    ))
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Config {
    /// Sets one setting from its text form.
    pub(crate) fn set(&mut self, setting: &str, value: &str) -> Result<(), ConfigError> {
        match setting {
            "server.listen" => {
                self.listen = value.parse().map_err(|_| {
                    invalid(
                        setting,
                        format!("'{value}' is not an address:port (e.g. 127.0.0.1:3000)"),
                    )
                })?
            }
            "server.path" => {
                if !value.starts_with('/') {
                    return Err(invalid(setting, format!("'{value}' must start with /")));
                }
                self.path = value.to_owned();
            }
            "server.cors_origins" => self.cors_origins = list(value),
            "tls.cert_file" => self.tls_cert = optional_path(value),
            "tls.key_file" => self.tls_key = optional_path(value),
            "server.demo_page" => self.demo_page = boolean(setting, value)?,
            "server.serve_client" => self.serve_client = boolean(setting, value)?,
            "server.parser" => {
                self.parser = match value {
                    "default" => socketio::Parser::Default,
                    "msgpack" => socketio::Parser::MsgPack,
                    _ => {
                        return Err(invalid(
                            setting,
                            format!("'{value}' is not default or msgpack"),
                        ))
                    }
                }
            }
            "engine.ping_interval_ms" => self.ping_interval = millis(setting, value)?,
            "engine.ping_timeout_ms" => self.ping_timeout = millis(setting, value)?,
            "engine.max_payload" => {
                self.max_payload = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid(
                        setting,
                        format!("'{value}' is not a positive number of bytes"),
                    )
                })?
            }
            "engine.http_compression_threshold" => {
                let bytes: usize = value.parse().map_err(|_| {
                    invalid(
                        setting,
                        format!("'{value}' is not a whole number of bytes (0: off)"),
                    )
                })?;
                self.http_compression = Some(bytes).filter(|n| *n > 0);
            }
            "engine.transports" => {
                let names = list(value);
                if names.is_empty() || names.iter().any(|n| n != "polling" && n != "websocket") {
                    return Err(invalid(
                        setting,
                        format!("'{value}' must name polling and/or websocket"),
                    ));
                }
                self.polling = names.iter().any(|n| n == "polling");
                self.websocket = names.iter().any(|n| n == "websocket");
            }
            "log.format" => {
                self.log_format = match value {
                    "human" => LogFormat::Human,
                    "json" => LogFormat::Json,
                    _ => return Err(invalid(setting, format!("'{value}' is not human or json"))),
                }
            }
            "log.level" => self.log_level = value.to_owned(),
            "adapter.kind" => {
                self.adapter = match value {
                    "memory" => AdapterKind::Memory,
                    "redis" => AdapterKind::Redis,
                    "redis-sharded" => AdapterKind::RedisSharded,
                    _ => {
                        return Err(invalid(
                            setting,
                            format!(
                            "'{value}' is not an available adapter (memory, redis, redis-sharded)"
                        ),
                        ))
                    }
                }
            }
            "redis.url" => {
                let schemes = [
                    "redis://",
                    "rediss://",
                    "redis-cluster://",
                    "rediss-cluster://",
                ];
                if !schemes.iter().any(|scheme| value.starts_with(scheme)) {
                    return Err(invalid(
                        setting,
                        format!(
                            "'{value}' is not a redis:// or rediss:// (or redis-cluster://) URL"
                        ),
                    ));
                }
                self.redis_url = value.to_owned();
            }
            "redis.tls_ca_file" => self.redis_tls_ca = optional_path(value),
            "redis.tls_cert_file" => self.redis_tls_cert = optional_path(value),
            "redis.tls_key_file" => self.redis_tls_key = optional_path(value),
            "redis.subscription_mode" => {
                self.subscription_mode =
                    value
                        .parse()
                        .map_err(|err: socketio_redis::UnknownSubscriptionMode| {
                            invalid(setting, err.to_string())
                        })?;
            }
            "recovery.enabled" => self.recovery = boolean(setting, value)?,
            "recovery.max_disconnection_ms" => self.recovery_duration = millis(setting, value)?,
            "shutdown.drain_ms" => self.drain = millis(setting, value)?,
            "auth.algorithm" => self.auth_algorithm = value.to_owned(),
            "auth.secret" => self.auth_secret = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "auth.public_key_file" => self.auth_public_key_file = Some(PathBuf::from(value)),
            "auth.issuer" => self.auth_issuer = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "auth.audience" => {
                self.auth_audience = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "auth.dev" => self.auth_dev = boolean(setting, value)?,
            "auth.expiry_warning_ms" => self.auth_expiry_warning = millis(setting, value)?,
            "chat.rate_limit" => {
                self.chat_rate_limit = value.parse().map_err(|_| {
                    invalid(
                        setting,
                        format!("'{value}' is not a number of events per second"),
                    )
                })?
            }
            "limits.max_connections" => {
                self.limits.max_sessions = count(setting, value)?.map(|n| n as usize)
            }
            "limits.max_connections_per_address" => {
                self.limits.max_sessions_per_address = count(setting, value)?.map(|n| n as usize)
            }
            "limits.handshakes_per_second" => {
                self.limits.handshakes_per_second = count(setting, value)?
            }
            "admin.enabled" => self.admin.enabled = boolean(setting, value)?,
            "admin.auth" => self.admin.auth = boolean(setting, value)?,
            "admin.username" => {
                if value.is_empty() {
                    return Err(invalid(setting, "must not be empty"));
                }
                self.admin.username = value.to_owned();
            }
            "admin.password_hash" => {
                let hash = value.trim();
                if !hash.is_empty() && hash.parse::<bcrypt::HashParts>().is_err() {
                    return Err(invalid(
                        setting,
                        "not a bcrypt hash ($2a$/$2b$/$2y$...); make one with                          `socketio-server hash-password`",
                    ));
                }
                self.admin.password_hash = Some(hash.to_owned()).filter(|h| !h.is_empty());
            }
            "admin.readonly" => self.admin.readonly = boolean(setting, value)?,
            "admin.mode" => {
                self.admin.production = match value {
                    "development" => false,
                    "production" => true,
                    _ => {
                        return Err(invalid(
                            setting,
                            format!("'{value}' is not development or production"),
                        ))
                    }
                }
            }
            "admin.namespace" => {
                if !value.starts_with('/') || value == "/" {
                    return Err(invalid(
                        setting,
                        format!("'{value}' must be a namespace like /admin"),
                    ));
                }
                self.admin.namespace = value.to_owned();
            }
            "admin.ui_path" => {
                let served = value.starts_with('/') && value.ends_with('/');
                if !value.is_empty() && !served {
                    return Err(invalid(
                        setting,
                        format!("'{value}' must start and end with / (or be empty: not served)"),
                    ));
                }
                self.admin.ui_path = value.to_owned();
            }
            "admin.server_id" => {
                self.admin.server_id = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            other => return Err(ConfigError::Unknown(other.to_owned())),
        }
        Ok(())
    }

    /// Applies a TOML document: sections and keys are the dotted names.
    pub(crate) fn apply_toml(&mut self, text: &str, path: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.to_owned(),
                reason: e.message().to_owned(),
            })?;
        for (section, body) in table {
            let Some(body) = body.as_table() else {
                return Err(ConfigError::Unknown(section));
            };
            for (key, value) in body {
                let name = format!("{section}.{key}");
                let text = match value {
                    toml::Value::Array(items) => items
                        .iter()
                        .map(scalar)
                        .collect::<Option<Vec<_>>>()
                        .map(|v| v.join(",")),
                    other => scalar(other),
                }
                .ok_or_else(|| invalid(&name, format!("unsupported {} value", value.type_str())))?;
                self.set(&name, &text)?;
            }
        }
        Ok(())
    }

    /// The whole configuration: defaults, then the file (`--config` or `SOCKETIO_CONFIG`), then
    /// environment variables, then flags.
    pub(crate) fn load(
        args: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let flag_value = |i: usize| {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| invalid(&args[i], "needs a value"))
        };
        let mut file: Option<PathBuf> = env("SOCKETIO_CONFIG").map(PathBuf::from);
        let mut flags = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let setting = SETTINGS
                .iter()
                .find(|(_, _, flag)| *flag == name)
                .map(|(setting, _, _)| *setting);
            if setting.is_none() && name != "--config" {
                let flags = SETTINGS.iter().map(|(_, _, flag)| *flag);
                return Err(ConfigError::Unknown(match closest(&name, flags) {
                    Some(near) => format!("{name} (did you mean {near}?)"),
                    None => name,
                }));
            }
            let bare = value.is_none()
                && setting.is_some_and(|s| BOOLEANS.contains(&s))
                && args.get(i + 1).is_none_or(|next| next.starts_with("--"));
            let value = match value {
                Some(v) => v,
                None if bare => "true".to_owned(),
                None => {
                    i += 1;
                    flag_value(i - 1)?
                }
            };
            match setting {
                Some(setting) => flags.push((setting, value)),
                None => file = Some(PathBuf::from(value)),
            }
            i += 1;
        }
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::File {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            config.apply_toml(&text, &shown)?;
        }
        for (setting, var, _) in SETTINGS {
            if let Some(value) = env(var) {
                config.set(setting, &value)?;
            }
        }
        // `PORT`, the platforms' convention, sets the port unless SOCKETIO_LISTEN says more.
        if let (Some(port), None) = (env("PORT"), env("SOCKETIO_LISTEN")) {
            let port = port
                .parse::<u16>()
                .map_err(|_| invalid("PORT", format!("'{port}' is not a port number")))?;
            config.listen.set_port(port);
        }
        for (setting, value) in flags {
            config.set(setting, &value)?;
        }
        together(
            &config.tls_cert,
            &config.tls_key,
            "tls.cert_file",
            "tls.key_file",
        )?;
        together(
            &config.redis_tls_cert,
            &config.redis_tls_key,
            "redis.tls_cert_file",
            "redis.tls_key_file",
        )?;
        if config.admin.enabled && config.admin.auth && config.admin.password_hash.is_none() {
            return Err(invalid(
                "admin.password_hash",
                "required when admin.enabled is true (make one with `socketio-server \
                 hash-password`, or set admin.auth = false)",
            ));
        }
        if config.ping_timeout.is_zero() || config.ping_interval.is_zero() {
            return Err(invalid(
                "engine.ping_interval_ms",
                "ping interval and timeout must be above 0",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(&args, &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_annotated_example_is_a_valid_file_of_the_defaults() {
        let mut config = Config::default();
        config
            .apply_toml(
                include_str!("../socketio-server.example.toml"),
                "example.toml",
            )
            .expect("the example parses");
        assert_eq!(config, Config::default());
    }

    #[test]
    fn bare_boolean_flags_port_and_unknown_variables() {
        let config = load(
            &["--recovery", "--listen", "127.0.0.1:4000", "--demo-page"],
            &[],
        )
        .expect("bare booleans");
        assert!(config.recovery && config.demo_page);
        let config = load(&["--demo-page", "false"], &[]).expect("explicit value");
        assert!(!config.demo_page);
        assert!(
            load(&["--listen"], &[]).is_err(),
            "a non-boolean still needs its value"
        );

        let config = load(&[], &[("PORT", "8080")]).expect("PORT");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        let config = load(
            &[],
            &[("PORT", "8080"), ("SOCKETIO_LISTEN", "0.0.0.0:9000")],
        )
        .expect("SOCKETIO_LISTEN wins");
        assert_eq!(config.listen.port(), 9000);
        let config = load(&["--listen", "127.0.0.1:7000"], &[("PORT", "8080")]).expect("flag wins");
        assert_eq!(config.listen.port(), 7000);

        assert_eq!(
            check_variables(["HOME", "SOCKETIO_LISTEN", "SOCKETIO_CONFIG", "PORT"]),
            Ok(())
        );
        assert_eq!(
            check_variables(["SOCKETIO_LISTNE"]).map_err(|e| e.to_string()),
            Err("unknown variable SOCKETIO_LISTNE (did you mean SOCKETIO_LISTEN?)".into())
        );
    }

    #[test]
    fn defaults_listen_on_loopback_3000() {
        let config = load(&[], &[]).expect("defaults");
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 3000)));
        assert_eq!(config, Config::default());
    }

    #[test]
    fn flags_override_environment_override_file() {
        let dir = std::env::temp_dir().join(format!("sio-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("server.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:4001\"\npath = \"/rt/\"\ncors_origins = [\"https://a.example\"]\n\
             [engine]\nping_interval_ms = 1000\ntransports = [\"websocket\"]\n[recovery]\nenabled = true\n",
        )
        .expect("write");
        let path = file.to_string_lossy().into_owned();
        let config = load(
            &["--config", &path, "--listen", "127.0.0.1:4003"],
            &[
                ("SOCKETIO_LISTEN", "127.0.0.1:4002"),
                ("SOCKETIO_PATH", "/env/"),
            ],
        )
        .expect("config");
        assert_eq!(config.listen.port(), 4003);
        assert_eq!(config.path, "/env/");
        assert_eq!(config.cors_origins, vec!["https://a.example".to_owned()]);
        assert_eq!(config.ping_interval, Duration::from_millis(1000));
        assert!(config.websocket && !config.polling);
        assert!(config.recovery);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn http_compression_is_on_at_1024_bytes_and_0_turns_it_off() {
        assert_eq!(Config::default().http_compression, Some(1024));
        let config = load(&["--http-compression-threshold", "0"], &[]).expect("config");
        assert_eq!(config.http_compression, None);
        let config = load(&[], &[("SOCKETIO_HTTP_COMPRESSION_THRESHOLD", "2048")]).expect("env");
        assert_eq!(config.http_compression, Some(2048));
    }

    #[test]
    fn bad_settings_name_themselves() {
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec!["--listen", "localhost:99999"],
                vec![],
                "server.listen: 'localhost:99999' is not an address:port",
            ),
            (vec!["--listen=127.0.0.1:70000"], vec![], "server.listen:"),
            (vec!["--colour", "blue"], vec![], "unknown option --colour"),
            (
                vec!["--lisen", "127.0.0.1:1"],
                vec![],
                "unknown option --lisen (did you mean --listen?)",
            ),
            (
                vec![],
                vec![("PORT", "http")],
                "PORT: 'http' is not a port number",
            ),
            (
                vec!["--chat-rate-limit", "-1"],
                vec![],
                "chat.rate_limit: '-1' is not a number of events per second",
            ),
            (
                vec![],
                vec![("SOCKETIO_PING_TIMEOUT_MS", "soon")],
                "engine.ping_timeout_ms: 'soon'",
            ),
            (
                vec!["--http-compression-threshold", "-5"],
                vec![],
                "engine.http_compression_threshold: '-5' is not a whole number of bytes (0: off)",
            ),
            (
                vec!["--transports", "carrier-pigeon"],
                vec![],
                "engine.transports:",
            ),
            (
                vec!["--log-format", "xml"],
                vec![],
                "log.format: 'xml' is not human or json",
            ),
            (
                vec!["--adapter", "mongodb"],
                vec![],
                "adapter.kind: 'mongodb' is not an available adapter",
            ),
            (
                vec!["--redis-url", "127.0.0.1:6379"],
                vec![],
                "redis.url: '127.0.0.1:6379' is not a redis:// or rediss:// (or redis-cluster://) URL",
            ),
            (
                vec!["--config", "/nonexistent/socketio.toml"],
                vec![],
                "config file /nonexistent/socketio.toml:",
            ),
            (vec!["--listen"], vec![], "--listen: needs a value"),
            (
                vec!["--admin", "true"],
                vec![],
                "admin.password_hash: required when admin.enabled is true",
            ),
            (
                vec!["--admin-password-hash", "changeit"],
                vec![],
                "admin.password_hash: not a bcrypt hash",
            ),
            (
                vec!["--tls-cert-file", "cert.pem"],
                vec![],
                "tls.cert_file: tls.cert_file and tls.key_file go together",
            ),
            (
                vec!["--max-connections", "lots"],
                vec![],
                "limits.max_connections: 'lots' is not a whole number (0: no limit)",
            ),
            (
                vec!["--admin-mode", "verbose"],
                vec![],
                "admin.mode: 'verbose' is not development or production",
            ),
            (
                vec!["--admin-ui-path", "/dash"],
                vec![],
                "admin.ui_path: '/dash' must start and end with /",
            ),
        ];
        for (args, env, expected) in cases {
            let err = load(&args, &env).expect_err(expected).to_string();
            assert!(err.starts_with(expected), "{err} (expected {expected})");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let config = load(
            &["--adapter", "redis-sharded"],
            &[("SOCKETIO_REDIS_URL", "redis://r:6390")],
        )
        .expect("valid");
        assert_eq!(
            (
                config.adapter,
                config.redis_url.as_str(),
                config.subscription_mode
            ),
            (
                AdapterKind::RedisSharded,
                "redis://r:6390",
                socketio_redis::SubscriptionMode::Dynamic
            )
        );
        let config = load(
            &["--redis-url", "rediss://r:6380"],
            &[("SOCKETIO_REDIS_TLS_CA_FILE", "/etc/redis/ca.pem")],
        )
        .expect("valid");
        assert_eq!(
            (config.redis_url.as_str(), config.redis_tls_ca.as_deref()),
            (
                "rediss://r:6380",
                Some(std::path::Path::new("/etc/redis/ca.pem"))
            )
        );
        let config = load(
            &["--redis-tls-cert-file", "/etc/socketio/client.pem"],
            &[("SOCKETIO_REDIS_TLS_KEY_FILE", "/etc/socketio/client.key")],
        )
        .expect("valid");
        assert_eq!(
            (
                config.redis_tls_cert.as_deref(),
                config.redis_tls_key.as_deref()
            ),
            (
                Some(std::path::Path::new("/etc/socketio/client.pem")),
                Some(std::path::Path::new("/etc/socketio/client.key"))
            )
        );
        let err = load(&["--redis-tls-cert-file", "/etc/socketio/client.pem"], &[])
            .expect_err("a certificate without its key")
            .to_string();
        assert!(err.contains("redis.tls_key_file go together"), "{err}");
        let config = load(&["--redis-subscription-mode", "dynamic-private"], &[]).expect("valid");
        assert_eq!(
            config.subscription_mode,
            socketio_redis::SubscriptionMode::DynamicPrivate
        );
        let err = load(&["--redis-subscription-mode", "private"], &[])
            .expect_err("unknown mode")
            .to_string();
        assert!(
            err.starts_with("redis.subscription_mode: unknown subscription mode \"private\""),
            "{err}"
        );
        let config = load(
            &["--admin", "on", "--admin-mode", "production"],
            &[(
                "SOCKETIO_ADMIN_PASSWORD_HASH",
                "$2b$04$68v5oZu8oO21hQhC3/wXZeBtLDq/dFVYmvPbnGOZpYRMWf.MK7Wc.",
            )],
        )
        .expect("valid admin settings");
        assert!(config.admin.enabled && config.admin.production && config.admin.auth);
        assert!(load(&["--admin=on", "--admin-auth=off"], &[]).is_ok());
        let mut config = Config::default();
        assert_eq!(
            config.apply_toml("[server]\nlisten_port = 3\n", "f.toml"),
            Err(ConfigError::Unknown("server.listen_port".into()))
        );
    }
}
