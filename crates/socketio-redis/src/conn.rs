//! One server's link to Redis: a connection that publishes and one that holds the
//! subscriptions, shared by every namespace and adapter of the server. Publishes keep their
//! order (a bounded queue, drained in pipelines by one task), fail fast while Redis is away,
//! and an outage is logged once and counted. Received messages are routed by channel prefix.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy};
use fred::types::Value;
use socketio::{AdapterError, BoxFuture};
use tokio::sync::{mpsc, oneshot};

/// Settings of the Redis link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or a Redis Cluster:
    /// `redis-cluster://host:port?node=host2:port2&node=…`.
    pub url: String,
    /// Publishes waiting to be written at most; beyond it a publish fails at once.
    pub publish_queue: usize,
    /// Longest wait for one Redis command.
    pub command_timeout: Duration,
    /// Longest wait between two reconnection attempts (they start at 100 ms and double).
    pub max_reconnect_delay: Duration,
    /// For `rediss://`: a PEM file of the certificate authorities to trust instead of the
    /// system's (a Redis with a private CA). TLS needs the crate's `tls` feature.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// For a Redis that asks clients for a certificate (`tls-auth-clients yes`, its default
    /// once TLS is on): the PEM certificate chain this server presents. Goes with
    /// [`tls_key_file`](Self::tls_key_file).
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// The PEM private key of [`tls_cert_file`](Self::tls_cert_file).
    pub tls_key_file: Option<std::path::PathBuf>,
}

impl RedisConfig {
    /// Defaults for a Redis at `url`: 16,384 queued publishes, 5 s commands, reconnects up to
    /// every 5 s.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            publish_queue: 16_384,
            command_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(5),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }

    /// Trusts the certificate authorities in the PEM file at `path` for `rediss://`, instead of
    /// the system's.
    ///
    /// ```
    /// let config = socketio_redis::RedisConfig::new("rediss://redis.internal:6380")
    ///     .tls_ca_file("/etc/redis/ca.pem");
    /// assert!(config.tls_ca_file.is_some());
    /// ```
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Presents the certificate chain in the PEM file `cert` (with its private key in `key`)
    /// to a Redis that authenticates its clients by certificate.
    ///
    /// ```
    /// let config = socketio_redis::RedisConfig::new("rediss://redis.internal:6380")
    ///     .tls_ca_file("/etc/redis/ca.pem")
    ///     .tls_client_cert("/etc/socketio/redis-client.pem", "/etc/socketio/redis-client.key");
    /// assert!(config.tls_cert_file.is_some() && config.tls_key_file.is_some());
    /// ```
    pub fn tls_client_cert(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls_cert_file = Some(cert.into());
        self.tls_key_file = Some(key.into());
        self
    }
}

/// Counters of the Redis link, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Whether both connections are up now.
    pub connected: bool,
    /// Times the link was lost.
    pub outages: u64,
    /// Messages published.
    pub published: u64,
    /// Publishes that failed (Redis away, queue full, error reply).
    pub publish_failures: u64,
    /// Messages received on subscriptions.
    pub received: u64,
    /// Received messages dropped because the reader fell behind (logged when it happens).
    pub receive_lagged: u64,
}

#[derive(Default)]
struct Counters {
    outages: AtomicU64,
    published: AtomicU64,
    publish_failures: AtomicU64,
    received: AtomicU64,
    receive_lagged: AtomicU64,
}

/// How a message is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Publish {
    /// `PUBLISH`.
    Classic,
    /// `SPUBLISH` (sharded pub/sub).
    Sharded,
}

/// How a channel is subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Subscription {
    /// `SUBSCRIBE`.
    Channel,
    /// `PSUBSCRIBE`.
    Pattern,
    /// `SSUBSCRIBE`.
    Shard,
}

/// What receives the messages of the channels under one prefix.
pub(crate) trait ChannelHandler: Send + Sync {
    fn on_message(&self, channel: &str, payload: &[u8]);
}

struct Outgoing {
    kind: Publish,
    channel: String,
    payload: Bytes,
    done: oneshot::Sender<Result<usize, AdapterError>>,
}

enum SubOp {
    Subscribe(
        Subscription,
        Vec<String>,
        Option<oneshot::Sender<Result<(), AdapterError>>>,
    ),
    Unsubscribe(Subscription, Vec<String>),
    /// After a reconnection: subscribe again to everything wanted (a restarted Redis knows
    /// nothing of the old connection's subscriptions).
    Resync,
}

/// The subscriptions the adapters want, whatever Redis has now.
type Wanted =
    std::sync::Mutex<std::collections::BTreeMap<Subscription, std::collections::BTreeSet<String>>>;

type Routes = RwLock<Vec<(String, Weak<dyn ChannelHandler>)>>;

struct Inner {
    publisher: Client,
    subscriber: SubscriberClient,
    queue: mpsc::Sender<Outgoing>,
    subs: mpsc::UnboundedSender<SubOp>,
    routes: Routes,
    wanted: Arc<Wanted>,
    counters: Counters,
    up: AtomicBool,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The Redis link of one server. Cheap to clone; every adapter of the server shares it.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

/// How long a plain command (an Admin UI session lookup) may wait for Redis.
#[cfg_attr(not(feature = "admin"), allow(dead_code))]
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn unavailable() -> AdapterError {
    AdapterError::backend("redis unavailable")
}

fn backend(err: fred::error::Error) -> AdapterError {
    AdapterError::backend(format!("redis: {err}"))
}

impl RedisConnection {
    /// Connects both connections. Fails if Redis cannot be reached now; after that, losing
    /// Redis is a normal event: the link reconnects with backoff and resubscribes.
    pub async fn connect(config: RedisConfig) -> Result<Self, AdapterError> {
        let mut redis = Config::from_url(&config.url).map_err(backend)?;
        crate::tls::configure(&mut redis, &config)?;
        let perf = PerformanceConfig {
            default_command_timeout: config.command_timeout,
            // Messages are read by one task that never waits; this only absorbs bursts.
            broadcast_channel_capacity: 65_536,
            ..PerformanceConfig::default()
        };
        let connection = ConnectionConfig {
            connection_timeout: config.command_timeout,
            internal_command_timeout: config.command_timeout,
            // While reconnecting, commands are refused by us first (is_connected), so this
            // buffer holds only what was in flight.
            max_command_buffer_len: config.publish_queue,
            ..ConnectionConfig::default()
        };
        let max_delay = u32::try_from(config.max_reconnect_delay.as_millis()).unwrap_or(u32::MAX);
        let policy = ReconnectPolicy::new_exponential(0, 100, max_delay.max(100), 2);
        let publisher = Client::new(
            redis.clone(),
            Some(perf.clone()),
            Some(connection.clone()),
            Some(policy.clone()),
        );
        let subscriber = SubscriberClient::new(redis, Some(perf), Some(connection), Some(policy));
        publisher.init().await.map_err(backend)?;
        subscriber.init().await.map_err(backend)?;
        let (queue, queue_rx) = mpsc::channel(config.publish_queue.max(1));
        let (subs, subs_rx) = mpsc::unbounded_channel();
        let wanted = Arc::new(Wanted::default());
        let inner = Arc::new(Inner {
            publisher,
            subscriber,
            queue,
            subs,
            routes: RwLock::new(Vec::new()),
            wanted: wanted.clone(),
            counters: Counters::default(),
            up: AtomicBool::new(true),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(publish_loop(Arc::downgrade(&inner), queue_rx)),
            tokio::spawn(subscription_loop(inner.subscriber.clone(), subs_rx, wanted)),
            tokio::spawn(receive_loop(Arc::downgrade(&inner))),
            tokio::spawn(watch_loop(Arc::downgrade(&inner))),
            tokio::spawn(resync_loop(inner.subscriber.clone(), inner.subs.clone())),
        ];
        inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(tasks);
        Ok(RedisConnection { inner })
    }

    /// Whether both connections are up.
    pub fn is_connected(&self) -> bool {
        self.inner.publisher.is_connected() && self.inner.subscriber.is_connected()
    }

    /// The link's counters.
    pub fn stats(&self) -> RedisStats {
        let c = &self.inner.counters;
        RedisStats {
            connected: self.is_connected(),
            outages: c.outages.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            publish_failures: c.publish_failures.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            receive_lagged: c.receive_lagged.load(Ordering::Relaxed),
        }
    }

    /// Closes both connections.
    pub async fn close(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        let _ = self.inner.subscriber.quit().await;
        let _ = self.inner.publisher.quit().await;
    }

    fn fail(&self, err: AdapterError) -> BoxFuture<'static, Result<usize, AdapterError>> {
        self.inner
            .counters
            .publish_failures
            .fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(Err(err)))
    }

    /// Queues a publish now (its place in the order is fixed by this call); the future gives
    /// the number of receivers Redis reports.
    pub(crate) fn publish(
        &self,
        kind: Publish,
        channel: String,
        payload: Bytes,
    ) -> BoxFuture<'static, Result<usize, AdapterError>> {
        if !self.inner.publisher.is_connected() {
            return self.fail(unavailable());
        }
        let (done, result) = oneshot::channel();
        let message = Outgoing {
            kind,
            channel,
            payload,
            done,
        };
        match self.inner.queue.try_send(message) {
            Ok(()) => {
                Box::pin(async move { result.await.unwrap_or_else(|_| Err(AdapterError::Closed)) })
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.fail(AdapterError::backend("redis publish queue full"))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.fail(AdapterError::Closed),
        }
    }

    /// Subscribes (in order with every other subscription change); resolves once Redis
    /// confirmed.
    pub(crate) async fn subscribe(
        &self,
        kind: Subscription,
        channels: Vec<String>,
    ) -> Result<(), AdapterError> {
        self.want(kind, &channels, true);
        let (done, result) = oneshot::channel();
        self.inner
            .subs
            .send(SubOp::Subscribe(kind, channels, Some(done)))
            .map_err(|_| AdapterError::Closed)?;
        result.await.unwrap_or(Err(AdapterError::Closed))
    }

    /// Subscribes without waiting (from synchronous code: a room was created).
    pub(crate) fn subscribe_later(&self, kind: Subscription, channels: Vec<String>) {
        self.want(kind, &channels, true);
        let _ = self.inner.subs.send(SubOp::Subscribe(kind, channels, None));
    }

    /// Unsubscribes without waiting, in order with the subscriptions.
    pub(crate) fn unsubscribe(&self, kind: Subscription, channels: Vec<String>) {
        self.want(kind, &channels, false);
        let _ = self.inner.subs.send(SubOp::Unsubscribe(kind, channels));
    }

    fn want(&self, kind: Subscription, channels: &[String], on: bool) {
        let mut wanted = self.inner.wanted.lock().unwrap_or_else(|e| e.into_inner());
        let set = wanted.entry(kind).or_default();
        for channel in channels {
            if on {
                set.insert(channel.clone());
            } else {
                set.remove(channel);
            }
        }
    }

    /// Routes messages of channels starting with `prefix` to `handler` (replacing an earlier
    /// route of that prefix).
    pub(crate) fn route(&self, prefix: String, handler: Weak<dyn ChannelHandler>) {
        let mut routes = self.inner.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.retain(|(p, h)| *p != prefix && h.strong_count() > 0);
        routes.push((prefix, handler));
    }

    /// Drops the route of `prefix`.
    pub(crate) fn unroute(&self, prefix: &str) {
        self.inner
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _)| p != prefix);
    }

    /// `PUBSUB NUMSUB` (classic) or `PUBSUB SHARDNUMSUB` (sharded) of one channel. In a Redis
    /// Cluster each node counts only its own subscribers, so the counts of every primary are
    /// summed, as Node's adapters do with node-redis.
    /// One plain command on the publishing connection (keys, not pub/sub), failing fast while
    /// Redis is away, and after [`COMMAND_TIMEOUT`] when the link has not noticed yet that it
    /// is. Routed by its first key in a Redis Cluster.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))]
    pub(crate) async fn command(
        &self,
        name: &'static str,
        args: Vec<String>,
    ) -> Result<fred::types::Value, AdapterError> {
        let client = &self.inner.publisher;
        if !client.is_connected() {
            return Err(unavailable());
        }
        let cmd =
            fred::types::CustomCommand::new_static(name, fred::types::ClusterHash::FirstKey, false);
        match tokio::time::timeout(COMMAND_TIMEOUT, client.custom(cmd, args)).await {
            Ok(answer) => answer.map_err(backend),
            Err(_) => Err(AdapterError::backend(format!(
                "redis: no answer to {name} within {} ms",
                COMMAND_TIMEOUT.as_millis()
            ))),
        }
    }

    pub(crate) async fn subscribers(
        &self,
        kind: Publish,
        channel: &str,
    ) -> Result<usize, AdapterError> {
        let client = &self.inner.publisher;
        if !client.is_connected() {
            return Err(unavailable());
        }
        if !client.is_clustered() {
            return numsub(client, kind, channel).await;
        }
        let mut total = 0;
        for server in client.active_connections() {
            total += numsub(&client.with_cluster_node(server), kind, channel).await?;
        }
        Ok(total)
    }
}

async fn numsub<C: PubsubInterface>(
    client: &C,
    kind: Publish,
    channel: &str,
) -> Result<usize, AdapterError> {
    let reply: Vec<Value> = match kind {
        Publish::Classic => client.pubsub_numsub(channel).await,
        Publish::Sharded => client.pubsub_shardnumsub(channel).await,
    }
    .map_err(backend)?;
    // [channel, count]
    reply
        .get(1)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| AdapterError::backend("redis: unexpected NUMSUB reply"))
}

/// Writes queued publishes in order: everything waiting goes out as one pipeline.
async fn publish_loop(inner: Weak<Inner>, mut queue: mpsc::Receiver<Outgoing>) {
    const BATCH: usize = 512;
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let Some(inner) = inner.upgrade() else { return };
        let client = &inner.publisher;
        let results: Vec<Result<usize, fred::error::Error>> = if batch.len() == 1 {
            let m = &batch[0];
            vec![send_one(client, m).await]
        } else {
            let pipeline = client.pipeline();
            for m in &batch {
                let queued: Result<(), _> = match m.kind {
                    Publish::Classic => {
                        pipeline
                            .publish(m.channel.as_str(), m.payload.clone())
                            .await
                    }
                    Publish::Sharded => {
                        pipeline
                            .spublish(m.channel.as_str(), m.payload.clone())
                            .await
                    }
                };
                let _ = queued;
            }
            pipeline.try_all::<usize>().await
        };
        let mut results = results.into_iter();
        for m in batch.drain(..) {
            let result = results.next().unwrap_or_else(|| {
                Err(fred::error::Error::new(
                    fred::error::ErrorKind::Unknown,
                    "no reply",
                ))
            });
            match &result {
                Ok(_) => inner.counters.published.fetch_add(1, Ordering::Relaxed),
                Err(_) => inner
                    .counters
                    .publish_failures
                    .fetch_add(1, Ordering::Relaxed),
            };
            let _ = m.done.send(result.map_err(backend));
        }
    }
}

async fn send_one(client: &Client, m: &Outgoing) -> Result<usize, fred::error::Error> {
    match m.kind {
        Publish::Classic => client.publish(m.channel.as_str(), m.payload.clone()).await,
        Publish::Sharded => client.spublish(m.channel.as_str(), m.payload.clone()).await,
    }
}

/// Applies subscription changes one at a time, in the order they were asked for. A change
/// that fails (Redis away) is retried, with every later one behind it, until it succeeds, so a
/// room created during an outage is subscribed once Redis is back.
async fn subscription_loop(
    client: SubscriberClient,
    mut ops: mpsc::UnboundedReceiver<SubOp>,
    wanted: Arc<Wanted>,
) {
    let mut pending: std::collections::VecDeque<SubOp> = std::collections::VecDeque::new();
    let mut retry = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            op = ops.recv() => match op {
                Some(op) => pending.push_back(op),
                None => return,
            },
            _ = retry.tick(), if !pending.is_empty() => {}
        }
        while let Some(op) = pending.front_mut() {
            let result = apply(&client, op, &wanted).await;
            if let SubOp::Subscribe(_, _, done) = op {
                // The first outcome goes to whoever waits; retries go on regardless.
                if let Some(done) = done.take() {
                    let _ = done.send(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| AdapterError::backend(e.to_string())),
                    );
                }
            }
            match result {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(err) => {
                    tracing::debug!(error = %err, "subscription change deferred until Redis is back");
                    break;
                }
            }
        }
    }
}

async fn apply(client: &SubscriberClient, op: &SubOp, wanted: &Wanted) -> Result<(), AdapterError> {
    if !client.is_connected() {
        return Err(unavailable());
    }
    if let SubOp::Resync = op {
        let all: Vec<(Subscription, Vec<String>)> = wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, set)| !set.is_empty())
            .map(|(kind, set)| (*kind, set.iter().cloned().collect()))
            .collect();
        for (kind, channels) in all {
            let op = SubOp::Subscribe(kind, channels, None);
            Box::pin(apply(client, &op, wanted)).await?;
        }
        return Ok(());
    }
    // Sharded channels one per command: each hashes to its own slot, and a Redis Cluster refuses
    // several slots in one SSUBSCRIBE.
    match op {
        SubOp::Subscribe(kind, channels, _) => match kind {
            Subscription::Channel => client.subscribe(channels.clone()).await,
            Subscription::Pattern => client.psubscribe(channels.clone()).await,
            Subscription::Shard => {
                for channel in channels {
                    client.ssubscribe(channel.as_str()).await.map_err(backend)?;
                }
                Ok(())
            }
        },
        SubOp::Unsubscribe(kind, channels) => match kind {
            Subscription::Channel => client.unsubscribe(channels.clone()).await,
            Subscription::Pattern => client.punsubscribe(channels.clone()).await,
            Subscription::Shard => {
                for channel in channels {
                    client
                        .sunsubscribe(channel.as_str())
                        .await
                        .map_err(backend)?;
                }
                Ok(())
            }
        },
        SubOp::Resync => Ok(()),
    }
    .map_err(backend)
}

/// Asks for a resubscription after every reconnection of the subscriber.
async fn resync_loop(client: SubscriberClient, subs: mpsc::UnboundedSender<SubOp>) {
    let mut reconnects = client.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                if subs.send(SubOp::Resync).is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Reads every subscribed message, in order, and hands it to its route. What has piled up
/// meanwhile (a burst, or a busy server) is handled in one go, with the writes to each client
/// coalesced: one write per client for the whole backlog.
async fn receive_loop(inner: Weak<Inner>) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    const BACKLOG: usize = 64;
    let Some(mut rx) = inner.upgrade().map(|i| i.subscriber.message_rx()) else {
        return;
    };
    let lagged = |inner: &Inner, n: u64| {
        inner
            .counters
            .receive_lagged
            .fetch_add(n, Ordering::Relaxed);
        tracing::error!(lost = n, "redis messages dropped: the reader fell behind");
    };
    loop {
        let first = rx.recv().await;
        let Some(inner) = inner.upgrade() else { return };
        let first = match first {
            Ok(message) => message,
            Err(RecvError::Lagged(n)) => {
                lagged(&inner, n);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        socketio::coalesce_writes(|| {
            route(&inner, &first);
            for _ in 1..BACKLOG {
                match rx.try_recv() {
                    Ok(message) => route(&inner, &message),
                    Err(TryRecvError::Lagged(n)) => lagged(&inner, n),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
        });
    }
}

fn route(inner: &Inner, message: &fred::types::Message) {
    inner.counters.received.fetch_add(1, Ordering::Relaxed);
    let Some(payload) = message.value.as_bytes() else {
        return;
    };
    let channel: &str = &message.channel;
    let handler = inner
        .routes
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(prefix, _)| channel.starts_with(prefix.as_str()))
        .and_then(|(_, h)| h.upgrade());
    if let Some(handler) = handler {
        handler.on_message(channel, payload);
    }
}

/// Logs each outage once (and its end), and counts it.
async fn watch_loop(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let up = inner.publisher.is_connected() && inner.subscriber.is_connected();
        let was = inner.up.swap(up, Ordering::AcqRel);
        if was && !up {
            inner.counters.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("redis connection lost; local delivery continues, cluster operations fail until it is back");
        } else if !was && up {
            tracing::info!("redis connection restored");
        }
    }
}
