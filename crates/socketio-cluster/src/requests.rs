//! The requests a node waits on, shared by every adapter protocol (the cluster model here,
//! the classic Redis and MongoDB ones beside it): who still has to answer, what came back,
//! completion, the timeout with partial answers, and peers that leave mid-request.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::{AckEvent, AckResponse, AdapterError, Room, ServerAckError, SocketDetails};
use tokio::sync::{mpsc, oneshot};

/// Who a request still waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// A number of answers (the servers are counted, not known).
    Count {
        /// Answers so far.
        got: usize,
        /// Answers expected.
        expected: usize,
    },
    /// The known peers that have not answered (heartbeat-tracked clusters).
    Uids(HashSet<String>),
}

impl Waiting {
    /// `expected` answers from unnamed servers.
    pub fn count(expected: usize) -> Self {
        Waiting::Count { got: 0, expected }
    }

    fn answered(&mut self, uid: &str) {
        match self {
            Waiting::Count { got, .. } => *got += 1,
            Waiting::Uids(uids) => {
                uids.remove(uid);
            }
        }
    }

    /// How many answers are missing.
    pub fn missing(&self) -> usize {
        match self {
            Waiting::Count { got, expected } => expected.saturating_sub(*got),
            Waiting::Uids(uids) => uids.len(),
        }
    }
}

enum Collected {
    Sockets(Vec<SocketDetails>),
    Answers(Vec<AckResponse>),
    Rooms(BTreeSet<Room>),
}

enum Entry {
    Collect {
        waiting: Waiting,
        collected: Collected,
        done: Option<oneshot::Sender<()>>,
    },
    BroadcastAck {
        events: mpsc::UnboundedSender<AckEvent>,
    },
}

impl Entry {
    fn settle_if_complete(&mut self) {
        if let Entry::Collect { waiting, done, .. } = self {
            if waiting.missing() == 0 {
                if let Some(done) = done.take() {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The pending requests of one adapter, by request id.
#[derive(Default, Clone)]
pub struct RequestRegistry {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for RequestRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRegistry")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl RequestRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `id` is one of this node's own requests (protocols that hear their own
    /// requests skip them by this).
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Registers, then publishes (so that no answer can come before the request is known),
    /// and waits for the answers or the timeout.
    async fn collect<P, F>(
        &self,
        id: &str,
        waiting: Waiting,
        collected: Collected,
        timeout: Duration,
        publish: P,
    ) -> (Result<(), AdapterError>, Waiting, Collected)
    where
        P: FnOnce() -> F,
        F: Future<Output = Result<(), AdapterError>>,
    {
        let (done, finished) = oneshot::channel();
        self.lock().insert(
            id.to_owned(),
            Entry::Collect {
                waiting,
                collected,
                done: Some(done),
            },
        );
        let published = publish().await;
        if published.is_ok() {
            let _ = tokio::time::timeout(timeout, finished).await;
        }
        match self.lock().remove(id) {
            Some(Entry::Collect {
                waiting, collected, ..
            }) => (published, waiting, collected),
            _ => (
                Err(AdapterError::Closed),
                Waiting::count(0),
                Collected::Answers(Vec::new()),
            ),
        }
    }

    /// A fetch-sockets request: `local` plus every answer, or a timeout error. `publish` sends
    /// the request once it is registered.
    pub async fn fetch_sockets<F: Future<Output = Result<(), AdapterError>>>(
        &self,
        id: &str,
        waiting: Waiting,
        local: Vec<SocketDetails>,
        timeout: Duration,
        publish: impl FnOnce() -> F,
    ) -> Result<Vec<SocketDetails>, AdapterError> {
        let (published, waiting, collected) = self
            .collect(id, waiting, Collected::Sockets(local), timeout, publish)
            .await;
        published?;
        match (waiting.missing(), collected) {
            (0, Collected::Sockets(sockets)) => Ok(sockets),
            (0, _) => Err(AdapterError::Closed),
            (missing, _) => Err(AdapterError::Timeout {
                operation: "fetchSockets",
                missing,
            }),
        }
    }

    /// An all-rooms request: the union of `local` and every answer.
    pub async fn all_rooms<F: Future<Output = Result<(), AdapterError>>>(
        &self,
        id: &str,
        waiting: Waiting,
        local: Vec<Room>,
        timeout: Duration,
        publish: impl FnOnce() -> F,
    ) -> Result<Vec<Room>, AdapterError> {
        let collected = Collected::Rooms(local.into_iter().collect());
        let (published, waiting, collected) =
            self.collect(id, waiting, collected, timeout, publish).await;
        published?;
        match (waiting.missing(), collected) {
            (0, Collected::Rooms(rooms)) => Ok(rooms.into_iter().collect()),
            (0, _) => Err(AdapterError::Closed),
            (missing, _) => Err(AdapterError::Timeout {
                operation: "allRooms",
                missing,
            }),
        }
    }

    /// A server-side emit with acks: every answer, or an error that keeps the answers that came.
    pub async fn server_side_emit<F: Future<Output = Result<(), AdapterError>>>(
        &self,
        id: &str,
        waiting: Waiting,
        timeout: Duration,
        publish: impl FnOnce() -> F,
    ) -> Result<Vec<AckResponse>, ServerAckError> {
        let (published, waiting, collected) = self
            .collect(
                id,
                waiting,
                Collected::Answers(Vec::new()),
                timeout,
                publish,
            )
            .await;
        let responses = match collected {
            Collected::Answers(responses) => responses,
            _ => Vec::new(),
        };
        if let Err(err) = published {
            return Err(ServerAckError::new(err, responses));
        }
        match waiting.missing() {
            0 => Ok(responses),
            missing => Err(ServerAckError::new(
                AdapterError::Timeout {
                    operation: "serverSideEmit",
                    missing,
                },
                responses,
            )),
        }
    }

    /// Routes the answers to a broadcast with acks to `events` for `timeout` (then they have
    /// no one to go to).
    pub fn track_broadcast_ack(
        &self,
        id: &str,
        events: mpsc::UnboundedSender<AckEvent>,
        timeout: Duration,
    ) {
        self.lock()
            .insert(id.to_owned(), Entry::BroadcastAck { events });
        let (registry, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            registry.lock().remove(&id);
        });
    }

    /// Forgets a request (its publish failed).
    pub fn untrack(&self, id: &str) {
        self.lock().remove(id);
    }

    /// A broadcast with acks: tracks its answers for `timeout`, then publishes it; a failed
    /// publish forgets it again and is returned.
    pub async fn publish_broadcast_with_ack<F>(
        &self,
        id: &str,
        events: &mpsc::UnboundedSender<AckEvent>,
        timeout: Duration,
        publish: impl FnOnce() -> F,
    ) -> Result<(), AdapterError>
    where
        F: Future<Output = Result<(), AdapterError>>,
    {
        self.track_broadcast_ack(id, events.clone(), timeout);
        let result = publish().await;
        if result.is_err() {
            self.untrack(id);
        }
        result
    }

    fn answer(&self, id: &str, from: &str, add: impl FnOnce(&mut Collected)) {
        let mut entries = self.lock();
        if let Some(entry @ Entry::Collect { .. }) = entries.get_mut(id) {
            if let Entry::Collect {
                waiting, collected, ..
            } = entry
            {
                add(collected);
                waiting.answered(from);
            }
            entry.settle_if_complete();
        }
    }

    /// Sockets that node `from` reported for request `id`.
    pub fn on_sockets(&self, id: &str, from: &str, sockets: Vec<SocketDetails>) {
        self.answer(id, from, |c| {
            if let Collected::Sockets(all) = c {
                all.extend(sockets);
            }
        });
    }

    /// Rooms that node `from` reported for request `id`.
    pub fn on_rooms(&self, id: &str, from: &str, rooms: Vec<Room>) {
        self.answer(id, from, |c| {
            if let Collected::Rooms(all) = c {
                all.extend(rooms);
            }
        });
    }

    /// Node `from`'s answer to server-side emit `id`.
    pub fn on_server_emit_answer(&self, id: &str, from: &str, answer: AckResponse) {
        self.answer(id, from, |c| {
            if let Collected::Answers(all) = c {
                all.push(answer);
            }
        });
    }

    /// How many clients one server reached for broadcast `id`.
    pub fn on_client_count(&self, id: &str, count: usize) {
        if let Some(Entry::BroadcastAck { events }) = self.lock().get(id) {
            let _ = events.send(AckEvent::ClientCount(count));
        }
    }

    /// One client's acknowledgement of broadcast `id`.
    pub fn on_ack(&self, id: &str, ack: AckResponse) {
        if let Some(Entry::BroadcastAck { events }) = self.lock().get(id) {
            let _ = events.send(AckEvent::Ack(ack));
        }
    }

    /// A peer left: requests stop waiting for it (and may complete with what they have).
    pub fn forget_peer(&self, uid: &str) {
        for entry in self.lock().values_mut() {
            if let Entry::Collect {
                waiting: Waiting::Uids(uids),
                ..
            } = entry
            {
                uids.remove(uid);
            }
            entry.settle_if_complete();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_that_comes_while_publishing_is_kept() {
        let registry = RequestRegistry::new();
        let answering = registry.clone();
        let started = std::time::Instant::now();
        let rooms = registry
            .all_rooms(
                "r1",
                Waiting::count(1),
                vec![Room::from("a")],
                Duration::from_secs(5),
                || {
                    // A peer so fast that it answers before the publish returns.
                    answering.on_rooms("r1", "peer", vec![Room::from("b")]);
                    async { Ok(()) }
                },
            )
            .await
            .expect("complete");
        assert_eq!(rooms, vec![Room::from("a"), Room::from("b")]);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!registry.contains("r1"), "a finished request is forgotten");
    }

    #[tokio::test]
    async fn partial_answers_survive_a_timeout_and_a_leaving_peer_settles() {
        let registry = RequestRegistry::new();
        let waiting = Waiting::Uids(["p1".to_owned(), "p2".to_owned()].into());
        let answering = registry.clone();
        let err = registry
            .server_side_emit("s1", waiting, Duration::from_millis(100), || {
                let args = socketio::packet::Args::from_json(
                    bytes::Bytes::from_static(b"[1]"),
                    Vec::new(),
                    &socketio::packet::Limits::default(),
                )
                .expect("args");
                answering.on_server_emit_answer("s1", "p1", AckResponse::new(args, None));
                async { Ok(()) }
            })
            .await
            .expect_err("p2 never answers");
        assert_eq!(err.responses.len(), 1);
        assert!(matches!(
            err.source,
            AdapterError::Timeout { missing: 1, .. }
        ));

        let waiting = Waiting::Uids(["p1".to_owned()].into());
        let leaving = registry.clone();
        let sockets = registry
            .fetch_sockets("f1", waiting, Vec::new(), Duration::from_secs(5), || {
                leaving.forget_peer("p1");
                async { Ok(()) }
            })
            .await
            .expect("nobody left to wait for");
        assert!(sockets.is_empty());
    }
}
