//! Admin UI sessions in Redis, shared by every server of a cluster (and with Node servers
//! using `@socket.io/admin-ui`'s `RedisStore`): key `<prefix>#<session id>`, valid for a day.

use socketio::BoxFuture;
use socketio_admin::{SessionStore, StoreError};

use crate::RedisConnection;

/// Where `@socket.io/admin-ui`'s `RedisStore` keeps sessions by default.
const DEFAULT_PREFIX: &str = "socket.io-admin";

/// Dashboard sessions in Redis. Node's store writes `true` (0.5.1) or `1` (later) as the value;
/// both sides only ask whether the key exists.
///
/// ```no_run
/// # async fn run(redis: socketio_redis::RedisConnection) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use socketio_admin::{AdminOptions, AdminUi};
///
/// let store = socketio_redis::RedisSessionStore::new(redis);
/// let admin = AdminUi::new(AdminOptions::no_auth().store(Arc::new(store)))?;
/// # drop(admin); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    redis: RedisConnection,
    prefix: String,
    ttl_secs: u64,
}

impl RedisSessionStore {
    /// Sessions under Node's default prefix, valid for 86,400 s.
    pub fn new(redis: RedisConnection) -> Self {
        RedisSessionStore {
            redis,
            prefix: DEFAULT_PREFIX.into(),
            ttl_secs: 86_400,
        }
    }

    /// Another key prefix (Node's `RedisStore` option `prefix`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Another lifetime (Node's `sessionDuration`, in seconds).
    pub fn ttl_secs(mut self, secs: u64) -> Self {
        self.ttl_secs = secs.max(1);
        self
    }

    fn key(&self, id: &str) -> String {
        format!("{}#{id}", self.prefix)
    }
}

fn store_error(err: socketio::AdapterError) -> StoreError {
    StoreError(Box::new(err))
}

impl SessionStore for RedisSessionStore {
    fn save<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let args = vec![
                self.key(id),
                "1".into(),
                "EX".into(),
                self.ttl_secs.to_string(),
            ];
            self.redis
                .command("SET", args)
                .await
                .map(drop)
                .map_err(store_error)
        })
    }

    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let reply = self
                .redis
                .command("EXISTS", vec![self.key(id)])
                .await
                .map_err(store_error)?;
            Ok(matches!(reply, fred::types::Value::Integer(n) if n > 0))
        })
    }
}
