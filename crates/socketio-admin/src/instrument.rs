//! The instrumentation itself: the observer that turns server reports into dashboard events,
//! the admin namespace (login, `config`, `all_sockets`, commands) and the stats timer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use socketio::{
    iso_now, ConnectError, ConnectRequest, DisconnectReason, EventPayload, Namespace, Observer,
    RawArgs, Sid, Socket, SocketIo, TransportKind,
};

use crate::wire::{self, ServerStats, TrafficCounts};
use crate::{AdminError, AdminOptions, Mode};

/// The server-side event by which a server tells the others that a dashboard just connected
/// to it, so that they start reporting at once instead of at their next check.
const WATCHING: &str = "admin:watching";

/// The Admin UI instrumentation of one server. Register its [`AdminUi::observer`] with the
/// server builder, then [`AdminUi::attach`] it to the built server.
///
/// A server reports to dashboards only while one is connected: to this server (counted as
/// they connect), or to another server of the cluster. Every stats interval, a server in a
/// cluster with no local dashboard asks the others (`fetch_sockets` on the admin namespace),
/// and a server whose dashboard connects tells the other Rust servers at once. Node servers
/// always report in development mode.
#[derive(Clone)]
pub struct AdminUi {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AdminUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminUi")
            .field("options", &self.inner.options)
            .field("server_id", &self.inner.server_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    options: AdminOptions,
    development: bool,
    server_id: String,
    hostname: String,
    started: Instant,
    io: OnceLock<SocketIo>,
    admin: OnceLock<Namespace>,
    /// Dashboards connected to this server.
    local_watchers: AtomicUsize,
    /// Dashboards connected to other servers, as last seen.
    remote_watchers: AtomicBool,
    /// Engine.IO connections still on long-polling (kept always: it is a level, not a count).
    polling: AtomicUsize,
    traffic: Traffic,
    /// At most two password checks at once (bcrypt is slow on purpose).
    checks: tokio::sync::Semaphore,
}

#[derive(Default)]
struct Traffic {
    connections: AtomicU64,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    disconnections: Mutex<HashMap<String, u64>>,
}

impl Traffic {
    fn drain(&self) -> TrafficCounts {
        let take = |v: &AtomicU64| v.swap(0, Ordering::Relaxed);
        let mut disconnections: Vec<(String, u64)> = self
            .disconnections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        disconnections.sort();
        TrafficCounts {
            connections: take(&self.connections),
            disconnections,
            packets_in: take(&self.packets_in),
            bytes_in: take(&self.bytes_in),
            packets_out: take(&self.packets_out),
            bytes_out: take(&self.bytes_out),
        }
    }
}

/// The session id given to a dashboard that logged in with its password.
#[derive(Clone)]
struct NewSession(String);

impl AdminUi {
    /// Checks the options (a bcrypt hash when auth is on).
    pub fn new(options: AdminOptions) -> Result<AdminUi, AdminError> {
        if let Some((_, hash)) = &options.auth {
            let parts = hash.parse::<bcrypt::HashParts>();
            if parts.is_err() {
                return Err(AdminError::InvalidHash);
            }
        }
        let hostname = hostname();
        Ok(AdminUi {
            inner: Arc::new(Inner {
                development: options.mode == Mode::Development,
                server_id: options
                    .server_id
                    .clone()
                    .unwrap_or_else(|| hostname.clone()),
                hostname,
                started: Instant::now(),
                io: OnceLock::new(),
                admin: OnceLock::new(),
                local_watchers: AtomicUsize::new(0),
                remote_watchers: AtomicBool::new(false),
                polling: AtomicUsize::new(0),
                traffic: Traffic::default(),
                checks: tokio::sync::Semaphore::new(2),
                options,
            }),
        })
    }

    /// What the server builder must report to (`SocketIoBuilder::observer`).
    pub fn observer(&self) -> Arc<dyn Observer> {
        self.inner.clone()
    }

    /// The id the dashboard shows for this server.
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// Whether some dashboard, here or on another server, is being reported to.
    pub fn watched(&self) -> bool {
        self.inner.watched()
    }

    /// Sets up the admin namespace on `io` and starts the stats timer (inside a tokio runtime).
    /// Returns the namespace.
    pub fn attach(&self, io: &SocketIo) -> Result<Namespace, AdminError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AdminError::NoRuntime)?;
        if self.inner.io.set(io.clone()).is_err() {
            return Err(AdminError::AlreadyAttached);
        }
        let ns = io.of(&self.inner.options.namespace);
        let _ = self.inner.admin.set(ns.clone());
        if self.inner.options.auth.is_some() {
            let inner = self.inner.clone();
            ns.use_middleware(move |req| {
                let inner = inner.clone();
                async move { inner.authenticate(req).await }
            });
        }
        let inner = self.inner.clone();
        ns.on_connection(move |socket: Socket| {
            let inner = inner.clone();
            async move { inner.on_dashboard(socket).await }
        });
        let inner = self.inner.clone();
        ns.on_server_event(WATCHING, move |_| {
            inner.remote_watchers.store(true, Ordering::Relaxed);
            async {}
        });
        let inner = Arc::downgrade(&self.inner);
        let interval = self.inner.options.stats_interval;
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                inner.check_remote_watchers().await;
                if inner.watched() {
                    inner.emit_stats();
                }
            }
        });
        Ok(ns)
    }
}

impl Inner {
    fn watched(&self) -> bool {
        self.local_watchers.load(Ordering::Relaxed) > 0
            || self.remote_watchers.load(Ordering::Relaxed)
    }

    fn is_admin(&self, nsp: &str) -> bool {
        nsp == self.options.namespace
    }

    /// Sends `event` with these arguments to every dashboard of the cluster.
    fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) {
        if let Some(ns) = self.admin.get() {
            if let Err(err) = ns.broadcast().emit_args(event, args) {
                tracing::debug!(%event, %err, "admin event not sent");
            }
        }
    }

    fn stats(&self) -> ServerStats {
        let io = self.io.get();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut namespaces: Vec<wire::NamespaceStats> = io
            .map(|io| io.namespaces())
            .unwrap_or_default()
            .iter()
            .map(|ns| wire::NamespaceStats {
                name: ns.name().to_owned(),
                sockets_count: ns.local_sids().len(),
            })
            .collect();
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        ServerStats {
            server_id: self.server_id.clone(),
            hostname: self.hostname.clone(),
            pid: std::process::id(),
            uptime: self.started.elapsed().as_secs_f64(),
            clients_count: io.map_or(0, SocketIo::connection_count),
            polling_clients_count: self.polling.load(Ordering::Relaxed),
            aggregated_events: self.traffic.drain().into_events(now_ms),
            namespaces,
        }
    }

    fn emit_stats(&self) {
        self.emit("server_stats", &(self.stats(),));
    }

    /// In a cluster with no dashboard here, whether another server has one.
    async fn check_remote_watchers(&self) {
        let Some(ns) = self.admin.get() else { return };
        if self.local_watchers.load(Ordering::Relaxed) > 0 {
            return;
        }
        let remote = match ns.server_count().await {
            Ok(n) if n <= 1 => false,
            // Not knowing is treated as watched: reporting for nobody costs less than a
            // dashboard that misses this server.
            Err(_) => true,
            Ok(_) => match ns.fetch_sockets().await {
                Ok(sockets) => sockets.iter().any(|s| s.local.is_none()),
                Err(_) => true,
            },
        };
        self.remote_watchers.store(remote, Ordering::Relaxed);
    }

    async fn authenticate(self: Arc<Self>, req: ConnectRequest) -> Result<(), ConnectError> {
        let refused = || ConnectError::new("invalid credentials");
        let Some((username, hash)) = self.options.auth.clone() else {
            return Ok(());
        };
        let auth = req.auth_value();
        if let Some(id) = auth.get("sessionId").and_then(Value::as_str) {
            if !id.is_empty() {
                match self.options.store.exists(id).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(err) => tracing::warn!(%err, "admin session lookup failed"),
                }
            }
        }
        let given_user = auth.get("username").and_then(Value::as_str);
        let Some(password) = auth.get("password").and_then(Value::as_str) else {
            return Err(refused());
        };
        if given_user != Some(username.as_str()) {
            return Err(refused());
        }
        let Ok(_permit) = self.checks.acquire().await else {
            return Err(refused());
        };
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !matches {
            return Err(refused());
        }
        // 16 hex characters, as Node's `randomBytes(8).toString("hex")`.
        let id = socketio::random_id();
        if let Err(err) = self.options.store.save(&id).await {
            // The login still counts; only a page reload will ask for the password again.
            tracing::warn!(%err, "admin session not saved");
        }
        req.insert(NewSession(id));
        Ok(())
    }

    async fn on_dashboard(self: Arc<Self>, socket: Socket) {
        let first = self.local_watchers.fetch_add(1, Ordering::Relaxed) == 0;
        let inner = self.clone();
        socket.on_disconnect(move |_, _| {
            inner.local_watchers.fetch_sub(1, Ordering::Relaxed);
            async {}
        });
        // After the CONNECT reply: a client drops events that arrive before it (see the spec).
        if let Some(NewSession(id)) = socket.get::<NewSession>() {
            let _ = socket.emit("session", &id);
        }
        let features = wire::supported_features(self.options.readonly, self.development);
        let _ = socket.emit(
            "config",
            &serde_json::json!({ "supportedFeatures": features }),
        );
        if !self.options.readonly {
            self.register_commands(&socket);
        }
        if let Some(ns) = self.admin.get() {
            let _ = ns.server_side_emit(WATCHING, &()).await;
        }
        if first {
            self.emit_stats();
        }
        if self.development {
            let sockets = self.all_sockets().await;
            let _ = socket.emit("all_sockets", &sockets);
        }
    }

    /// Every socket of every namespace of this server, each fetched across the cluster.
    async fn all_sockets(&self) -> Vec<Value> {
        let Some(io) = self.io.get() else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for ns in io.namespaces() {
            match ns.fetch_sockets().await {
                Ok(sockets) => all.extend(sockets.iter().map(|s| {
                    wire::serialize_socket(
                        s.id.as_str(),
                        ns.name(),
                        &s.rooms,
                        &s.handshake,
                        &s.data,
                    )
                })),
                Err(err) => tracing::warn!(nsp = ns.name(), %err, "admin: fetch_sockets failed"),
            }
        }
        all
    }

    fn register_commands(self: &Arc<Self>, socket: &Socket) {
        for (event, join) in [("join", true), ("leave", false)] {
            let inner = self.clone();
            socket.on(event, move |RawArgs(args): RawArgs| {
                let inner = inner.clone();
                async move {
                    let (Some(nsp), Some(room)) =
                        (arg::<String>(&args, 0), arg::<String>(&args, 1))
                    else {
                        return;
                    };
                    let Some(op) = inner.select(&nsp, arg(&args, 2)) else {
                        return;
                    };
                    let rooms = [room.as_str()];
                    let done = if join {
                        op.sockets_join(&rooms).await
                    } else {
                        op.sockets_leave(&rooms).await
                    };
                    if let Err(err) = done {
                        tracing::warn!(%nsp, %room, %err, "admin {event} failed");
                    }
                }
            });
        }
        let inner = self.clone();
        socket.on("_disconnect", move |RawArgs(args): RawArgs| {
            let inner = inner.clone();
            async move {
                let Some(nsp) = arg::<String>(&args, 0) else {
                    return;
                };
                let close = arg::<bool>(&args, 1).unwrap_or(false);
                if let Some(op) = inner.select(&nsp, arg(&args, 2)) {
                    if let Err(err) = op.disconnect_sockets(close).await {
                        tracing::warn!(%nsp, %err, "admin disconnect failed");
                    }
                }
            }
        });
        let inner = self.clone();
        socket.on("emit", move |RawArgs(args): RawArgs| {
            let inner = inner.clone();
            async move {
                let (Some(nsp), Some(event)) = (arg::<String>(&args, 0), arg::<String>(&args, 2))
                else {
                    return;
                };
                let Some(op) = inner.select(&nsp, arg(&args, 1)) else {
                    return;
                };
                let payload =
                    EventPayload::from_raw(&event, &args.raw_array_from(3), args.attachments);
                if let Err(err) = payload.and_then(|p| op.emit_raw(p)) {
                    tracing::warn!(%nsp, %event, %err, "admin emit failed");
                }
            }
        });
    }

    /// The sockets of an existing namespace, or those in `filter` (a socket id or a room).
    fn select(&self, nsp: &str, filter: Option<String>) -> Option<socketio::BroadcastOperator> {
        let ns = self.io.get()?.get_namespace(nsp)?;
        Some(match filter {
            Some(room) if !room.is_empty() => ns.to(room),
            _ => ns.broadcast(),
        })
    }

    fn serialize_local(&self, socket: &Socket) -> Value {
        let handshake = serde_json::to_value(socket.handshake()).unwrap_or_default();
        let mut data = socket.data_value();
        wire::add_admin_data(
            &mut data,
            socket.connection_id().as_str(),
            socket.transport().as_str(),
        );
        wire::serialize_socket(
            socket.id().as_str(),
            socket.ns_name(),
            &socket.rooms(),
            &handshake,
            &data,
        )
    }
}

/// Argument `i` of a command, `None` when absent, `null` or of another type.
fn arg<T: DeserializeOwned>(args: &socketio::packet::Args, i: usize) -> Option<T> {
    serde_json::from_str(args.raw(i)?).ok()
}

impl Observer for Inner {
    fn handshake(&self, transport: TransportKind) {
        if transport == TransportKind::Polling {
            self.polling.fetch_add(1, Ordering::Relaxed);
        }
        if self.watched() {
            self.traffic.connections.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn upgraded(&self, sockets: &[Socket]) {
        let _ = self
            .polling
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if self.wants_socket_events() {
            for socket in sockets {
                self.emit(
                    "socket_updated",
                    &(serde_json::json!({
                        "id": socket.id().as_str(),
                        "nsp": socket.ns_name(),
                        "transport": "websocket",
                    }),),
                );
            }
        }
    }

    fn connection_closed(&self, transport: TransportKind, reason: &str) {
        if transport == TransportKind::Polling {
            let _ = self
                .polling
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        if self.watched() {
            *self
                .traffic
                .disconnections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(reason.to_owned())
                .or_default() += 1;
        }
    }

    fn wants_traffic(&self) -> bool {
        self.watched()
    }

    fn message_in(&self, bytes: usize) {
        self.traffic.packets_in.fetch_add(1, Ordering::Relaxed);
        self.traffic
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn messages_out(&self, count: usize, bytes: usize) {
        self.traffic
            .packets_out
            .fetch_add(count as u64, Ordering::Relaxed);
        self.traffic
            .bytes_out
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn wants_socket_events(&self) -> bool {
        self.development && self.watched()
    }

    fn socket_connected(&self, socket: &Socket) {
        self.emit(
            "socket_connected",
            &(self.serialize_local(socket), iso_now()),
        );
    }

    fn socket_disconnected(&self, nsp: &str, sid: Sid, reason: DisconnectReason) {
        self.emit(
            "socket_disconnected",
            &(nsp, sid.as_str(), reason.as_str(), iso_now()),
        );
    }

    fn socket_data_changed(&self, socket: &Socket) {
        self.emit(
            "socket_updated",
            &(serde_json::json!({
                "id": socket.id().as_str(),
                "nsp": socket.ns_name(),
                "data": wire::visible_data(&socket.data_value()),
            }),),
        );
    }

    fn room_joined(&self, nsp: &str, room: &str, sid: Sid) {
        self.emit("room_joined", &(nsp, room, sid.as_str(), iso_now()));
    }

    fn room_left(&self, nsp: &str, room: &str, sid: Sid) {
        self.emit("room_left", &(nsp, room, sid.as_str(), iso_now()));
    }

    fn event_received(&self, socket: &Socket, args: &[u8]) {
        if self.is_admin(socket.ns_name()) {
            return;
        }
        let Some(args) = raw_json(args) else { return };
        self.emit(
            "event_received",
            &(socket.ns_name(), socket.id().as_str(), args, iso_now()),
        );
    }

    fn event_sent(&self, nsp: &str, sid: Sid, args: &[u8]) {
        if self.is_admin(nsp) {
            return;
        }
        let Some(args) = raw_json(args) else { return };
        self.emit("event_sent", &(nsp, sid.as_str(), args, iso_now()));
    }

    fn report_data(&self, socket: &Socket, data: &mut Value) {
        if self.development {
            wire::add_admin_data(
                data,
                socket.connection_id().as_str(),
                socket.transport().as_str(),
            );
        }
    }
}

/// The arguments as they came, passed through without building a JSON tree.
fn raw_json(args: &[u8]) -> Option<Box<serde_json::value::RawValue>> {
    let text = std::str::from_utf8(args).ok()?;
    serde_json::value::RawValue::from_string(text.to_owned()).ok()
}

/// The machine's host name (Node's `os.hostname()`): the default server id.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
