//! Where dashboard session ids live, so that a reloaded page reconnects without a password:
//! [`InMemoryStore`] for one server; a shared store (Redis) when the dashboard may reconnect to
//! another server of a cluster.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use socketio::BoxFuture;

/// A session store failed (its backend is away, ...).
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Keeps the ids of logged-in dashboards.
///
/// ```
/// use socketio_admin::{InMemoryStore, SessionStore};
///
/// # async fn run() -> Result<(), socketio_admin::StoreError> {
/// let store = InMemoryStore::default();
/// store.save("0123456789abcdef").await?;
/// assert!(store.exists("0123456789abcdef").await?);
/// # Ok(()) }
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Records a new session id.
    fn save<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Whether `id` is a live session.
    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Sessions in this process, each valid for a day (like Node's Redis store; Node's in-memory
/// store keeps them forever). Expired ids are dropped as new ones are saved.
#[derive(Debug)]
pub struct InMemoryStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Default for InMemoryStore {
    fn default() -> Self {
        InMemoryStore::with_ttl(Duration::from_secs(86_400))
    }
}

impl InMemoryStore {
    /// A store whose sessions last `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        InMemoryStore {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }
}

impl SessionStore for InMemoryStore {
    fn save<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, expires| *expires > now);
        sessions.insert(id.to_owned(), now + self.ttl);
        Box::pin(std::future::ready(Ok(())))
    }

    fn exists<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let live = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .is_some_and(|expires| *expires > Instant::now());
        Box::pin(std::future::ready(Ok(live)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_expire() {
        let store = InMemoryStore::with_ttl(Duration::from_millis(30));
        store.save("a").await.ok();
        assert!(store.exists("a").await.unwrap_or(false));
        assert!(!store.exists("b").await.unwrap_or(true));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!store.exists("a").await.unwrap_or(true));
    }
}
