//! `socketio-server`: a Socket.IO server that runs with one command.
//!
//! Settings come from a TOML file (`--config`), `SOCKETIO_*` environment variables and flags
//! (see `config.rs` and `socketio-server.example.toml`). On SIGTERM or SIGINT it stops accepting
//! connections, reports not ready, keeps serving connected clients for the drain period, then
//! disconnects them with the reason "server shutting down" and exits 0.

mod admin_ui;
mod auth;
mod chat;
mod compressed;
mod config;
mod metrics;
mod tls;
mod web;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::Auth;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use config::{AdapterKind, Config, LogFormat};
use socketio::{Cors, RecoveryConfig, SocketIo};
use socketio_admin::{AdminOptions, AdminUi, Mode};
use socketio_redis::{
    ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection, RedisSessionStore,
    ShardedAdapter, ShardedOptions,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}\n");
        println!("{}", include_str!("../socketio-server.example.toml"));
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("socketio-server {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.first().is_some_and(|a| a == "hash-password") {
        return hash_password(&args[1..]);
    }
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    let loaded = config::check_variables(names.iter().map(String::as_str))
        .and_then(|()| Config::load(&args, &|key| std::env::var(key).ok()));
    let config = match loaded {
        Ok(config) => config,
        Err(err) => {
            eprintln!("socketio-server: {err}");
            return ExitCode::from(2);
        }
    };
    if let Err(err) = init_logging(&config) {
        eprintln!("socketio-server: {err}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("socketio-server: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Start(err)) => {
            eprintln!("socketio-server: {err}");
            ExitCode::from(2)
        }
        Err(Failure::Serve(err)) => {
            eprintln!("socketio-server: {err}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: socketio-server [--config FILE] [--SETTING VALUE ...]   (run; exit 2 when it cannot start)
       socketio-server hash-password [--cost N] [PASSWORD]      (a bcrypt hash for admin.password_hash)
       socketio-server --version | --help
Every setting below is also a SOCKETIO_* variable and a --flag; boolean flags may be given bare
(--recovery). PORT sets the port of server.listen unless SOCKETIO_LISTEN is set.";

/// Why the server stopped with an error: it could not start (a setting, a key file, the
/// address, Redis: exit 2, like a bad setting), or serving failed later (exit 1).
enum Failure {
    Start(String),
    Serve(String),
}

impl From<String> for Failure {
    fn from(err: String) -> Self {
        Failure::Start(err)
    }
}

/// `socketio-server hash-password [--cost N] [PASSWORD]`: prints the bcrypt hash for
/// `admin.password_hash`. Without PASSWORD, the first line of standard input is used (so that
/// the password stays out of the shell history).
fn hash_password(args: &[String]) -> ExitCode {
    let mut cost = 10;
    let mut password = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--cost" => {
                i += 1;
                match args.get(i).and_then(|c| c.parse::<u32>().ok()) {
                    Some(c) if (4..=31).contains(&c) => cost = c,
                    _ => {
                        eprintln!(
                            "socketio-server hash-password: --cost takes a number from 4 to 31"
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            other => password = Some(other.to_owned()),
        }
        i += 1;
    }
    let password = match password {
        Some(p) => p,
        None => {
            let mut line = String::new();
            if let Err(err) = std::io::stdin().read_line(&mut line) {
                eprintln!("socketio-server hash-password: cannot read the password: {err}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("socketio-server hash-password: the password is empty");
        return ExitCode::from(2);
    }
    match socketio_admin::hash_password(&password, cost) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("socketio-server hash-password: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level).map_err(|e| {
        format!(
            "log.level: '{}' is not a valid filter ({e})",
            config.log_level
        )
    })?;
    // Colours only on a terminal: a file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
    result.map_err(|e| format!("log: {e}"))
}

/// The Admin UI instrumentation, when `admin.enabled`; sessions in Redis when the cluster runs
/// on Redis, so a dashboard may reconnect to any node.
fn build_admin(
    config: &Config,
    redis: Option<&RedisConnection>,
) -> Result<Option<AdminUi>, String> {
    let admin = &config.admin;
    if !admin.enabled {
        return Ok(None);
    }
    let mut options = match (&admin.password_hash, admin.auth) {
        (Some(hash), true) => AdminOptions::basic_auth(admin.username.clone(), hash.clone()),
        _ => AdminOptions::no_auth(),
    }
    .namespace(admin.namespace.clone())
    .readonly(admin.readonly)
    .mode(if admin.production {
        Mode::Production
    } else {
        Mode::Development
    })
    .server_id(
        admin
            .server_id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", socketio_admin::hostname(), config.listen.port())),
    );
    if let Some(redis) = redis {
        options = options.store(Arc::new(RedisSessionStore::new(redis.clone())));
    }
    AdminUi::new(options)
        .map(Some)
        .map_err(|e| format!("admin.password_hash: {e}"))
}

fn build_io(
    config: &Config,
    metrics: Arc<metrics::Metrics>,
    redis: Option<&RedisConnection>,
    admin: Option<&AdminUi>,
) -> SocketIo {
    let refusals = metrics.clone();
    let mut builder = SocketIo::builder()
        .observer(metrics)
        .on_connection_error(move |err| refusals.request_refused(err));
    if let Some(admin) = admin {
        builder = builder.observer(admin.observer());
    }
    let mut builder = builder
        .path(config.path.clone())
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(config.max_payload)
        .http_compression(config.http_compression)
        .transports(config.polling, config.websocket)
        .serve_client(config.serve_client)
        .parser(config.parser)
        .connection_limits(config.limits);
    if !config.cors_origins.is_empty() {
        builder = builder.cors(Cors {
            origins: config.cors_origins.clone(),
            credentials: true,
        });
    }
    if config.recovery {
        builder = builder.connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: config.recovery_duration,
            skip_middlewares: true,
        });
    }
    match (config.adapter, redis) {
        (AdapterKind::Redis, Some(redis)) => {
            builder = builder.adapter(ClassicAdapter::factory(
                redis.clone(),
                ClassicOptions::new(),
            ))
        }
        (AdapterKind::RedisSharded, Some(redis)) => {
            builder = builder.adapter(ShardedAdapter::factory(
                redis.clone(),
                ShardedOptions::new().subscription_mode(config.subscription_mode),
            ))
        }
        _ => {}
    }
    builder.build()
}

/// The Redis link of the `redis` adapters; a Redis that cannot be reached at start is a bad
/// setting.
async fn connect_redis(config: &Config) -> Result<Option<RedisConnection>, String> {
    if config.adapter == AdapterKind::Memory {
        return Ok(None);
    }
    let mut settings = RedisConfig::new(config.redis_url.clone());
    if let Some(ca) = &config.redis_tls_ca {
        settings = settings.tls_ca_file(ca);
    }
    if let (Some(cert), Some(key)) = (&config.redis_tls_cert, &config.redis_tls_key) {
        settings = settings.tls_client_cert(cert, key);
    }
    let redis = RedisConnection::connect(settings)
        .await
        .map_err(|e| format!("redis.url: cannot connect to {}: {e}", config.redis_url))?;
    Ok(Some(redis))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    user: Option<String>,
}

async fn run(config: Config) -> Result<(), Failure> {
    let metrics = Arc::new(metrics::Metrics::default());
    let redis = connect_redis(&config).await?;
    let admin = build_admin(&config, redis.as_ref())?;
    let io = build_io(&config, metrics.clone(), redis.as_ref(), admin.as_ref());
    if let Some(admin) = &admin {
        admin.attach(&io).map_err(|e| format!("admin: {e}"))?;
    }
    let auth = Arc::new(Auth::from_config(&config).map_err(|e| e.to_string())?);
    chat::register(
        &io,
        auth.clone(),
        config.chat_rate_limit,
        config.auth_expiry_warning,
    );
    for ns in io.namespaces() {
        ns.ready()
            .await
            .map_err(|e| format!("adapter of {}: {e}", ns.name()))?;
    }
    let ready = Arc::new(AtomicBool::new(true));
    let readiness = ready.clone();
    let (redis_ready, redis_metrics) = (redis.clone(), redis.clone());
    let mut app = Router::new();
    if auth.is_dev() {
        let issuer = auth.clone();
        app = app.route(
            "/dev/token",
            get(move |Query(q): Query<TokenQuery>| {
                let name = q
                    .user
                    .filter(|u| !u.is_empty() && u.len() <= 64)
                    .unwrap_or_else(|| "dev".into());
                let token = issuer.issue(&name, &name, 24 * 3600);
                async move { axum::Json(serde_json::json!({ "user": name, "token": token })) }
            }),
        );
    }
    if config.demo_page {
        app = app.merge(web::routes(
            &config.path,
            auth.is_dev(),
            config.http_compression,
        ));
    }
    let dashboard = admin.is_some() && !config.admin.ui_path.is_empty();
    if dashboard {
        if !admin_ui::bundled() {
            tracing::warn!("the Admin UI dashboard was not bundled (npm missing at build time)");
        }
        app = app.merge(admin_ui::routes(
            &config.admin.ui_path,
            &config.path,
            &config.admin.namespace,
            config.http_compression,
        ));
    }
    let app = app
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let mut text = metrics.render();
                if let Some(redis) = &redis_metrics {
                    metrics::render_redis(&mut text, &redis.stats());
                }
                async move { ([("content-type", "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.load(Ordering::Acquire);
                let redis_up = redis_ready
                    .as_ref()
                    .is_none_or(RedisConnection::is_connected);
                async move {
                    match (ready, redis_up) {
                        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
                        // Local clients are still served, but this node is cut off from the
                        // cluster: a load balancer should prefer the others.
                        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable"),
                        (true, true) => (StatusCode::OK, "ready"),
                    }
                }
            }),
        )
        .layer(io.layer());
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::source(cert.clone(), key.clone())?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("server.listen: cannot listen on {}: {e}", config.listen))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", config.listen);
    if let Some(token) = auth.issue("dev", "Developer", 24 * 3600) {
        tracing::warn!(
            "development mode (no auth.secret or key): random secret for this run; tokens from \
             {base}/dev/token?user=NAME; a token for user 'dev': {token}"
        );
    }
    let page = if config.demo_page {
        format!("demo chat page at {base}/, ")
    } else {
        String::new()
    };
    let adapter = match config.adapter {
        AdapterKind::Memory => "memory adapter".to_owned(),
        AdapterKind::Redis => format!("redis adapter on {}", config.redis_url),
        AdapterKind::RedisSharded => format!("redis-sharded adapter on {}", config.redis_url),
    };
    tracing::info!(
        "listening on {base}: {page}Socket.IO at {} (chat app in namespace /chat, {adapter}), \
         health at {base}/healthz, readiness at {base}/readyz, metrics at {base}/metrics",
        config.path
    );
    if let Some(admin) = &admin {
        let at = if dashboard {
            format!("dashboard at {base}{}, ", config.admin.ui_path)
        } else {
            String::new()
        };
        tracing::info!(
            "admin UI: {at}namespace {} (server id {}, {} mode{}{})",
            config.admin.namespace,
            admin.server_id(),
            if config.admin.production {
                "production"
            } else {
                "development"
            },
            if config.admin.readonly {
                ", read-only"
            } else {
                ""
            },
            if config.admin.auth { "" } else { ", NO LOGIN" },
        );
    }
    // On a stop signal the server keeps accepting connections for the drain period: open
    // sessions go on being served (a polling client opens a new connection for each poll),
    // new handshakes get 503 and /readyz answers 503, so a load balancer moves traffic away.
    // Then every client is disconnected and the listener closes.
    let (stopping, drained) = (ready.clone(), io.clone());
    let drain = config.drain;
    let stop = async move {
        shutdown_signal().await;
        stopping.store(false, Ordering::Release);
        drained.engine().refuse_new_sessions();
        tracing::info!(
            drain_ms = drain.as_millis() as u64,
            connections = drained.connection_count(),
            "stop signal: draining"
        );
        let deadline = Instant::now() + drain;
        while drained.connection_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drained.close().await;
        // Let the close frames and packets leave.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let served = match tls {
        Some(tls) => engineio::serve_engine_tls(listener, tls, app, stop).await,
        None => engineio::serve_engine(listener, io.engine().clone(), app, stop).await,
    };
    served.map_err(|e| Failure::Serve(format!("server: {e}")))?;

    if let Some(redis) = redis {
        redis.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
