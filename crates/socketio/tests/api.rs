//! Server API behaviour seen from the wire: dynamic namespaces, operations on selections of
//! sockets, broadcast operators, server-side disconnects, the connect timeout and the handshake
//! hook.

use std::time::Duration;

use socketio::{Refusal, Socket, SocketIo, SocketIoBuilder};
use socketio_bench::raw::RawClient;

const WAIT: Duration = Duration::from_secs(3);

mod common;

use common::serve;

async fn text(client: &mut RawClient) -> String {
    let bytes = client
        .recv_text_timeout(WAIT)
        .await
        .expect("message")
        .expect("open");
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn nothing_within(client: &mut RawClient, ms: u64) -> bool {
    client
        .recv_text_timeout(Duration::from_millis(ms))
        .await
        .is_err()
}

fn build(f: impl FnOnce(SocketIoBuilder) -> SocketIoBuilder) -> SocketIo {
    let io = f(SocketIo::builder()).build();
    io.of("/").on_connection(|_: Socket| async {});
    io
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_namespaces_are_created_on_demand() {
    let io = build(|b| b);
    io.dynamic_namespace(|name| name.starts_with("/team-"))
        .on_connection(|socket: Socket| async move {
            let _ = socket.emit("welcome", socket.ns_name());
        });
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    client.send_text(b"40/team-7,").await.expect("send");
    assert!(text(&mut client).await.starts_with("40/team-7,{\"sid\":"));
    assert_eq!(
        text(&mut client).await,
        "42/team-7,[\"welcome\",\"/team-7\"]"
    );
    client.send_text(b"40/other,").await.expect("send");
    assert_eq!(
        text(&mut client).await,
        "44/other,{\"message\":\"Invalid namespace\"}"
    );
    assert!(io.get_namespace("/team-7").is_some());
    assert!(io.get_namespace("/other").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_of_a_dynamic_family_made_by_the_server_keeps_the_family_s_middlewares() {
    let io = build(|b| b);
    let docs = io.dynamic_namespace(|name| name.starts_with("/doc-"));
    docs.use_middleware(|req: socketio::ConnectRequest| async move {
        match req.auth_value()["token"].as_str() {
            Some("ok") => Ok(()),
            _ => Err(socketio::ConnectError::new("not allowed")),
        }
    });
    docs.on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", socket.ns_name());
    });
    // The server emits to a document before any client asked for it (as Node's
    // `io.of(name)`, this makes the family's child, not a namespace of its own).
    io.of("/doc-9").emit("update", &1).expect("emit");
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    client.send_text(b"40/doc-9,").await.expect("send");
    assert_eq!(
        text(&mut client).await,
        r#"44/doc-9,{"message":"not allowed"}"#
    );
    client
        .send_text(br#"40/doc-9,{"token":"ok"}"#)
        .await
        .expect("send");
    assert!(text(&mut client).await.starts_with("40/doc-9,{\"sid\":"));
    assert_eq!(text(&mut client).await, r#"42/doc-9,["welcome","/doc-9"]"#);
    // Other names are namespaces of their own, as before: no family middleware there.
    io.of("/plain").on_connection(|_: Socket| async {});
    client.send_text(b"40/plain,").await.expect("send");
    assert!(text(&mut client).await.starts_with("40/plain,{\"sid\":"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_a_dynamic_family_reaches_each_of_its_namespaces() {
    let io = build(|b| b);
    let docs = io.dynamic_namespace(|name| name.starts_with("/doc-"));
    docs.on_connection(|socket: Socket| async move {
        if socket.ns_name() == "/doc-2" {
            socket.join("editors");
        }
    });
    let addr = serve(&io).await;
    let (mut one, _) = RawClient::socketio_handshake(addr, "").await.expect("one");
    let (mut two, _) = RawClient::socketio_handshake(addr, "").await.expect("two");
    one.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut one).await.starts_with("40/doc-1,"));
    two.send_text(b"40/doc-2,").await.expect("send");
    assert!(text(&mut two).await.starts_with("40/doc-2,"));
    // Node's parentNamespace.emit: every child, each in its own name.
    docs.emit("hello", &1).expect("emit");
    assert_eq!(text(&mut one).await, r#"42/doc-1,["hello",1]"#);
    assert_eq!(text(&mut two).await, r#"42/doc-2,["hello",1]"#);
    // Rooms count within each child.
    docs.to("editors").emit("edit", &2).expect("emit");
    assert_eq!(text(&mut two).await, r#"42/doc-2,["edit",2]"#);
    assert!(nothing_within(&mut one, 200).await);
    // The main namespace is not part of the family: its sockets got nothing.
    let (mut main, _) = RawClient::socketio_handshake(addr, "").await.expect("main");
    docs.emit("hello", &3).expect("emit");
    assert!(nothing_within(&mut main, 200).await);
    // What has no meaning for a family says so instead of answering nothing.
    assert!(matches!(
        docs.fetch_sockets().await,
        Err(socketio::AdapterError::Unsupported(_))
    ));
    assert!(docs.to("editors").emit_with_ack("ask", &()).await.is_err());
}

/// Waits until `ns` exists (`true`) or not (`false`) on `io`; whether it came to be so.
async fn namespace_becomes(io: &SocketIo, ns: &str, exists: bool) -> bool {
    for _ in 0..100 {
        if io.get_namespace(ns).is_some() == exists {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_child_namespaces_are_removed_when_asked() {
    let io = build(|b| b.cleanup_empty_child_namespaces(true));
    let docs = io.dynamic_namespace(|name| name.starts_with("/doc-"));
    docs.use_middleware(|req: socketio::ConnectRequest| async move {
        match req.auth_value()["token"].as_str() {
            Some("bad") => Err(socketio::ConnectError::new("refused")),
            _ => Ok(()),
        }
    });
    docs.on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", socket.ns_name());
    });
    let addr = serve(&io).await;
    let (mut a, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    let (mut b, _) = RawClient::socketio_handshake(addr, "").await.expect("b");
    for client in [&mut a, &mut b] {
        client.send_text(b"40/doc-1,").await.expect("send");
        assert!(text(client).await.starts_with("40/doc-1,{\"sid\":"));
        assert_eq!(text(client).await, r#"42/doc-1,["welcome","/doc-1"]"#);
    }
    // One of two leaves: the namespace stays; the last leaves: it is removed.
    a.send_text(b"41/doc-1,").await.expect("leave");
    assert!(
        !namespace_becomes(&io, "/doc-1", false).await,
        "removed with a socket left"
    );
    b.send_text(b"41/doc-1,").await.expect("leave");
    assert!(
        namespace_becomes(&io, "/doc-1", false).await,
        "an empty child stays"
    );
    // The name works again: a new namespace of the family, with its handlers.
    a.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut a).await.starts_with("40/doc-1,{\"sid\":"));
    assert_eq!(text(&mut a).await, r#"42/doc-1,["welcome","/doc-1"]"#);
    assert!(io.get_namespace("/doc-1").is_some());
    // A refused connection leaves nothing behind: names a client makes up do not pile up.
    a.send_text(br#"40/doc-2,{"token":"bad"}"#)
        .await
        .expect("send");
    assert_eq!(text(&mut a).await, r#"44/doc-2,{"message":"refused"}"#);
    assert!(namespace_becomes(&io, "/doc-2", false).await);
    // A closed connection counts as leaving.
    drop(a);
    assert!(namespace_becomes(&io, "/doc-1", false).await);
    // Namespaces of their own are never removed.
    assert!(io.get_namespace("/").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_under_way_when_its_child_namespace_is_removed_joins_the_next() {
    let io = build(|b| b.cleanup_empty_child_namespaces(true));
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let docs = io.dynamic_namespace(|name| name.starts_with("/doc-"));
    let held = gate.clone();
    docs.use_middleware(move |req: socketio::ConnectRequest| {
        let held = held.clone();
        async move {
            if req.auth_value()["token"] == "wait" {
                held.acquire().await.expect("gate").forget();
            }
            Ok(())
        }
    });
    docs.on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", socket.ns_name());
    });
    let addr = serve(&io).await;
    let (mut a, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    let (mut b, _) = RawClient::socketio_handshake(addr, "").await.expect("b");
    a.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut a).await.starts_with("40/doc-1,"));
    assert_eq!(text(&mut a).await, r#"42/doc-1,["welcome","/doc-1"]"#);
    // b's connection waits in its middleware while a, the last socket, leaves.
    b.send_text(br#"40/doc-1,{"token":"wait"}"#)
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.send_text(b"41/doc-1,").await.expect("leave");
    assert!(namespace_becomes(&io, "/doc-1", false).await);
    gate.add_permits(1);
    assert!(text(&mut b).await.starts_with("40/doc-1,{\"sid\":"));
    assert_eq!(text(&mut b).await, r#"42/doc-1,["welcome","/doc-1"]"#);
    // b is in the registered namespace of that name: a broadcast to it reaches b.
    io.of("/doc-1").emit("hi", &1).expect("emit");
    assert_eq!(text(&mut b).await, r#"42/doc-1,["hi",1]"#);
}

/// An in-memory adapter that records its `init` and `close` (which takes 200 ms), by
/// namespace, in one shared list.
struct Recording {
    local: socketio::LocalAdapter,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recording {
    fn note(&self, what: &str) {
        let name = self.local.namespace().name().to_owned();
        self.log.lock().expect("log").push(format!("{what} {name}"));
    }
}

impl socketio::Adapter for Recording {
    fn init(&self) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.note("init");
        Box::pin(async { Ok(()) })
    }
    fn close(&self) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        Box::pin(async move {
            self.note("closing");
            tokio::time::sleep(Duration::from_millis(200)).await;
            self.note("closed");
            Ok(())
        })
    }
    fn server_id(&self) -> &str {
        self.local.server_id()
    }
    fn local(&self) -> &socketio::LocalAdapter {
        &self.local
    }
    fn broadcast(
        &self,
        payload: socketio::EventPayload,
        opts: socketio::BroadcastOptions,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.broadcast(payload, opts)
    }
    fn broadcast_with_ack(
        &self,
        payload: socketio::EventPayload,
        opts: socketio::BroadcastOptions,
        events: tokio::sync::mpsc::UnboundedSender<socketio::AckEvent>,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.broadcast_with_ack(payload, opts, events)
    }
    fn add_sockets(
        &self,
        opts: socketio::BroadcastOptions,
        rooms: Vec<socketio::Room>,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.add_sockets(opts, rooms)
    }
    fn del_sockets(
        &self,
        opts: socketio::BroadcastOptions,
        rooms: Vec<socketio::Room>,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.del_sockets(opts, rooms)
    }
    fn disconnect_sockets(
        &self,
        opts: socketio::BroadcastOptions,
        close: bool,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.disconnect_sockets(opts, close)
    }
    fn fetch_sockets(
        &self,
        opts: socketio::BroadcastOptions,
    ) -> socketio::BoxFuture<'_, Result<Vec<socketio::SocketDetails>, socketio::AdapterError>> {
        self.local.fetch_sockets(opts)
    }
    fn server_side_emit(
        &self,
        payload: socketio::EventPayload,
    ) -> socketio::BoxFuture<'_, Result<(), socketio::AdapterError>> {
        self.local.server_side_emit(payload)
    }
    fn server_side_emit_with_ack(
        &self,
        payload: socketio::EventPayload,
    ) -> socketio::BoxFuture<'_, Result<Vec<socketio::AckResponse>, socketio::ServerAckError>> {
        self.local.server_side_emit_with_ack(payload)
    }
    fn server_count(&self) -> socketio::BoxFuture<'_, Result<usize, socketio::AdapterError>> {
        self.local.server_count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_namespace_closes_its_adapter_before_its_successor_starts_one() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = log.clone();
    let io = build(move |b| {
        b.cleanup_empty_child_namespaces(true)
            .adapter(move |local| {
                std::sync::Arc::new(Recording {
                    local: socketio::LocalAdapter::new(local),
                    log: shared.clone(),
                }) as std::sync::Arc<dyn socketio::Adapter>
            })
    });
    io.dynamic_namespace(|name| name.starts_with("/doc-"))
        .on_connection(|_: Socket| async {});
    let addr = serve(&io).await;
    let (mut a, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    a.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut a).await.starts_with("40/doc-1,"));
    // Leave and come straight back (a page reload): the old adapter is still closing.
    a.send_text(b"41/doc-1,").await.expect("leave");
    assert!(namespace_becomes(&io, "/doc-1", false).await);
    a.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut a).await.starts_with("40/doc-1,"));
    let events: Vec<String> = log
        .lock()
        .expect("log")
        .iter()
        .filter(|e| e.ends_with("/doc-1"))
        .cloned()
        .collect();
    assert_eq!(
        events,
        [
            "init /doc-1",
            "closing /doc-1",
            "closed /doc-1",
            "init /doc-1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_namespaces_stay_by_default_as_in_node() {
    let io = build(|b| b);
    io.dynamic_namespace(|name| name.starts_with("/doc-"))
        .on_connection(|_: Socket| async {});
    let addr = serve(&io).await;
    let (mut a, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    a.send_text(b"40/doc-1,").await.expect("send");
    assert!(text(&mut a).await.starts_with("40/doc-1,"));
    a.send_text(b"41/doc-1,").await.expect("leave");
    assert!(!namespace_becomes(&io, "/doc-1", false).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_operations_and_operators() {
    let io = build(|b| b);
    let addr = serve(&io).await;
    let (mut a, a_id) = RawClient::socketio_handshake(addr, "").await.expect("a");
    let (mut b, b_id) = RawClient::socketio_handshake(addr, "").await.expect("b");
    let (mut c, c_id) = RawClient::socketio_handshake(addr, "").await.expect("c");
    let ns = io.of("/");

    // sockets_join on a selection (a and b by id), then a room broadcast with an exception.
    ns.to(a_id.as_str())
        .to(b_id.as_str())
        .sockets_join(&["team"])
        .await
        .expect("join");
    ns.to("team")
        .except(a_id.as_str())
        .emit("hello", &1)
        .expect("emit");
    assert_eq!(text(&mut b).await, "42[\"hello\",1]");
    assert!(nothing_within(&mut a, 100).await);
    assert!(nothing_within(&mut c, 50).await);

    // fetch_sockets describes the room's members with their rooms and handshake.
    let mut members: Vec<String> = ns
        .to("team")
        .fetch_sockets()
        .await
        .expect("fetch")
        .into_iter()
        .map(|info| {
            assert!(info.rooms.iter().any(|r| &**r == "team"));
            assert!(info.handshake["query"]["EIO"] == "4");
            info.id.to_string()
        })
        .collect();
    members.sort();
    let mut expected = vec![a_id.clone(), b_id.clone()];
    expected.sort();
    assert_eq!(members, expected);

    // sockets_leave, then nobody is left in the room.
    ns.to("team").sockets_leave(&["team"]).await.expect("leave");
    assert!(ns
        .to("team")
        .fetch_sockets()
        .await
        .expect("fetch")
        .is_empty());

    // A whole-namespace broadcast reaches everyone; volatile and local also deliver when idle.
    ns.volatile().local().emit("all", &true).expect("emit");
    for client in [&mut a, &mut b, &mut c] {
        assert_eq!(text(client).await, "42[\"all\",true]");
    }

    // disconnect_sockets(false) leaves the namespace: the client gets a DISCONNECT packet.
    ns.to(c_id.as_str())
        .disconnect_sockets(false)
        .await
        .expect("disconnect");
    assert_eq!(text(&mut c).await, "41");
    assert!(ns.socket(&c_id.parse_sid()).is_none());

    // disconnect_sockets(true) closes the connection itself.
    ns.to(b_id.as_str())
        .disconnect_sockets(true)
        .await
        .expect("close");
    b.expect_closed(WAIT).await.expect("b closed");
    assert_eq!(ns.sockets().len(), 1);
}

trait ParseSid {
    fn parse_sid(&self) -> socketio::Sid;
}

impl ParseSid for String {
    fn parse_sid(&self) -> socketio::Sid {
        socketio::Sid::parse(self).expect("sid")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_closes_idle_connections() {
    let io = build(|b| b.connect_timeout(Duration::from_millis(200)));
    let addr = serve(&io).await;
    let mut idle = RawClient::connect(addr, "/socket.io/?EIO=4&transport=websocket")
        .await
        .expect("connect");
    assert!(text(&mut idle).await.starts_with("0{"));
    idle.expect_closed(Duration::from_secs(2))
        .await
        .expect("closed by connect timeout");
    // A client that joins in time stays.
    let (mut joined, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    assert!(nothing_within(&mut joined, 400).await);
    assert_eq!(io.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_request_can_refuse_handshakes() {
    let io = build(|b| {
        b.allow_request(|req| async move {
            match req.query_param("key") {
                Some("open-sesame") => Ok(()),
                _ => Err(Refusal {
                    message: "wrong key".into(),
                }),
            }
        })
    });
    let addr = serve(&io).await;
    let refused = RawClient::connect(addr, "/socket.io/?EIO=4&transport=websocket&key=nope").await;
    let err = refused.err().expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    RawClient::socketio_handshake(addr, "&key=open-sesame")
        .await
        .expect("allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_disconnect_and_close() {
    let io = build(|b| b);
    let addr = serve(&io).await;
    let (mut client, id) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    let socket = io.of("/").socket(&id.parse_sid()).expect("socket");
    socket.disconnect();
    assert_eq!(text(&mut client).await, "41");
    assert!(!socket.connected());
    assert!(socket.emit("late", &1).is_err());
    // The engine connection stays usable for a new CONNECT.
    client.send_text(b"40").await.expect("send");
    assert!(text(&mut client).await.starts_with("40{\"sid\":"));
    io.close().await;
    client
        .expect_closed(WAIT)
        .await
        .expect("closed on server close");
}

/// Counts acknowledgement bookkeeping as the observer sees it.
#[derive(Default)]
struct AckCounts {
    requested: std::sync::atomic::AtomicUsize,
    settled: std::sync::atomic::AtomicUsize,
    timed_out: std::sync::atomic::AtomicUsize,
}

impl socketio::Observer for AckCounts {
    fn ack_requested(&self, _nsp: &str) {
        self.requested
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn ack_settled(&self, _nsp: &str, timed_out: bool) {
        self.settled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if timed_out {
            self.timed_out
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_slots_of_silent_clients_expire_at_the_timeout() {
    use std::sync::atomic::Ordering::SeqCst;
    let counts = std::sync::Arc::new(AckCounts::default());
    let io = build(|b| b.observer(counts.clone()));
    let addr = serve(&io).await;
    let (mut talker, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    let (mut silent, _) = RawClient::socketio_handshake(addr, "").await.expect("b");

    let ns = io.of("/");
    let ask = tokio::spawn(async move {
        ns.timeout(Duration::from_millis(200))
            .emit_with_ack("q", &1)
            .await
    });
    // Both get the question with an ack id; only one answers.
    let question = text(&mut talker).await;
    let id = question
        .strip_prefix("42")
        .and_then(|rest| rest.strip_suffix("[\"q\",1]"))
        .expect("an event with an ack id")
        .to_owned();
    assert!(text(&mut silent).await.ends_with("[\"q\",1]"));
    talker
        .send_text(format!("43{id}[\"yes\"]").as_bytes())
        .await
        .expect("answer");
    let outcome = ask.await.expect("join");
    let partial = outcome.expect_err("one client stayed silent");
    assert_eq!((partial.responses().len(), partial.missing()), (1, Some(1)));

    // The silent client's slot is freed shortly after the timeout, while it stays connected,
    // and counted as timed out.
    let deadline = std::time::Instant::now() + WAIT;
    while counts.settled.load(SeqCst) < 2 {
        assert!(std::time::Instant::now() < deadline, "slot never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts.requested.load(SeqCst), 2);
    assert_eq!(counts.timed_out.load(SeqCst), 1);
    assert_eq!(io.of("/").sockets().len(), 2);

    // A late answer to the expired id is ignored.
    silent
        .send_text(format!("43{id}[\"late\"]").as_bytes())
        .await
        .expect("late");
    assert!(nothing_within(&mut silent, 100).await);
    assert_eq!(counts.settled.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_writes_arrive_whole_and_in_order() {
    let io = build(|b| b);
    let addr = serve(&io).await;
    let (mut a, _) = RawClient::socketio_handshake(addr, "").await.expect("a");
    let (mut b, _) = RawClient::socketio_handshake(addr, "").await.expect("b");
    let ns = io.of("/");
    // A burst handled in one scope, with a nested scope and sends from another thread while
    // the first scope holds the writes.
    socketio::coalesce_writes(|| {
        for n in 0..50 {
            ns.emit("n", &n).expect("emit");
        }
        let other = {
            let ns = ns.clone();
            std::thread::spawn(move || {
                for n in 50..60 {
                    ns.emit("n", &n).expect("emit");
                }
            })
        };
        other.join().expect("thread");
        socketio::coalesce_writes(|| {
            for n in 60..100 {
                ns.emit("n", &n).expect("emit");
            }
        });
    });
    for client in [&mut a, &mut b] {
        for n in 0..100 {
            assert_eq!(text(client).await, format!("42[\"n\",{n}]"));
        }
    }
    // A panic inside the scope still lets the held writes out.
    let ns2 = ns.clone();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        socketio::coalesce_writes(|| {
            ns2.emit("last", &1).expect("emit");
            panic!("handler bug");
        })
    }));
    assert_eq!(text(&mut a).await, "42[\"last\",1]");
    assert_eq!(text(&mut b).await, "42[\"last\",1]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturating_broadcasts_are_deferred_and_still_arrive_whole_and_in_order() {
    let io = build(|b| b);
    let addr = serve(&io).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        let (client, _) = RawClient::socketio_handshake(addr, "")
            .await
            .expect("client");
        clients.push(client);
    }
    let ns = io.of("/");
    // Broadcasts to 100 sockets back to back, each in a scope of its own as a publisher's
    // read would be: writing them is all the server does, so their writes are deferred and
    // merged (within a bounded number of them), while every client gets every one, in order.
    let before = socketio::deferred_flushes();
    let mut sent = 0;
    while sent < 300 || (socketio::deferred_flushes() == before && sent < 20_000) {
        socketio::coalesce_writes(|| ns.emit("n", &sent).expect("emit"));
        sent += 1;
    }
    assert!(
        socketio::deferred_flushes() > before,
        "no deferral after {sent} saturating broadcasts"
    );
    for client in &mut clients {
        for n in 0..sent {
            assert_eq!(text(client).await, format!("42[\"n\",{n}]"));
        }
    }
    // A lone broadcast afterwards, on an idle server, is written at once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let deferred = socketio::deferred_flushes();
    socketio::coalesce_writes(|| ns.emit("last", &1).expect("emit"));
    for client in &mut clients {
        let got = tokio::time::timeout(Duration::from_millis(500), text(client))
            .await
            .expect("a lone broadcast waits for nothing");
        assert_eq!(got, "42[\"last\",1]");
    }
    // (A deferred flush is counted before it is written.)
    assert_eq!(socketio::deferred_flushes(), deferred);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_through_recovery_is_reported_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl socketio::Observer for Count {
        fn event_out(&self, _: &str, _: &str, _: usize) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let count = std::sync::Arc::new(Count::default());
    let io = SocketIo::builder()
        .connection_state_recovery(socketio::RecoveryConfig::default())
        .observer(count.clone())
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.emit("hello", &1).expect("emit");
    });
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    let hello = text(&mut client).await;
    assert!(hello.starts_with("42[\"hello\",1,"), "{hello}");
    assert_eq!(count.0.load(Ordering::Relaxed), 1);
}

/// Records the per-socket reports, and says whether it wants them.
#[derive(Default)]
struct Recorder {
    on: std::sync::atomic::AtomicBool,
    log: std::sync::Mutex<Vec<String>>,
}

impl Recorder {
    fn push(&self, line: String) {
        self.log.lock().expect("lock").push(line);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().expect("lock"))
    }
}

impl socketio::Observer for Recorder {
    fn connected(&self, nsp: &str) {
        self.push(format!("connected {nsp}"));
    }
    fn wants_socket_events(&self) -> bool {
        self.on.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn room_joined(&self, _nsp: &str, room: &str, _sid: socketio::Sid) {
        self.push(format!("joined {room}"));
    }
    fn room_left(&self, _nsp: &str, room: &str, _sid: socketio::Sid) {
        self.push(format!("left {room}"));
    }
    fn event_received(&self, _socket: &Socket, args: &[u8]) {
        self.push(format!("in {}", String::from_utf8_lossy(args)));
    }
    fn event_sent(&self, _nsp: &str, _sid: socketio::Sid, args: &[u8]) {
        self.push(format!("out {}", String::from_utf8_lossy(args)));
    }
}

#[tokio::test]
async fn every_observer_gets_reports_and_socket_events_only_when_asked() {
    let quiet = std::sync::Arc::new(Recorder::default());
    let watching = std::sync::Arc::new(Recorder::default());
    watching
        .on
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let io = SocketIo::builder()
        .observer(quiet.clone())
        .observer(watching.clone())
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("go", |socket: Socket| async move {
            socket.join("r");
            socket.join("r"); // already in: no second report
            let _ = socket.namespace().to("r").emit("news", &1);
            socket.leave("r");
            socket.leave("r");
        });
    });
    let addr = serve(&io).await;
    let (mut client, id) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    client.send_text(br#"42["go",true]"#).await.expect("send");
    assert_eq!(text(&mut client).await, r#"42["news",1]"#);
    tokio::time::sleep(Duration::from_millis(50)).await;

    assert_eq!(quiet.take(), ["connected /"], "not asked: no socket events");
    assert_eq!(
        watching.take(),
        [
            format!("joined {id}"),
            "connected /".to_owned(),
            r#"in ["go",true]"#.to_owned(),
            "joined r".to_owned(),
            r#"out ["news",1]"#.to_owned(),
            "left r".to_owned(),
        ]
    );
}

#[tokio::test]
async fn on_any_outgoing_sees_every_event_sent_to_the_socket_and_no_acks() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let io = SocketIo::builder().build();
    let record = seen.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let record = record.clone();
        async move {
            socket.on_any_outgoing(move |_, event, args| {
                record
                    .lock()
                    .expect("lock")
                    .push(format!("{event} {}", args.raw_array_from(0)));
            });
            socket.join("r");
            socket.on(
                "go",
                |socket: Socket, ack: socketio::AckSender| async move {
                    let _ = socket.emit("direct", &1);
                    let _ = socket.emit_args("pair", &("a", 2));
                    let _ = socket.namespace().to("r").emit("room", &true);
                    let _ = ack.send("done");
                },
            );
        }
    });
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    client.send_text(br#"421["go"]"#).await.expect("send");
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(text(&mut client).await);
    }
    assert!(got.contains(&r#"431["done"]"#.to_owned()), "{got:?}");
    assert_eq!(
        *seen.lock().expect("lock"),
        [r#"direct [1]"#, r#"pair ["a",2]"#, r#"room [true]"#],
        "events only, in order, the ack left out"
    );
}

/// One HTTP request on its own connection; the status code.
async fn http_status(addr: std::net::SocketAddr, method: &str, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn refused_requests_reach_the_connection_error_hook_with_code_and_message() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let io = build(move |b| {
        b.allow_request(|req| async move {
            match req.query_param("key") {
                Some("nope") => Err(Refusal {
                    message: "wrong key".into(),
                }),
                _ => Ok(()),
            }
        })
        .on_connection_error(move |err| {
            record.lock().expect("lock").push((
                err.code,
                err.message.clone(),
                err.method.clone(),
                err.uri.clone(),
                err.remote_addr.is_some(),
            ));
        })
    });
    let addr = serve(&io).await;
    let cases = [
        (
            "GET",
            "/socket.io/?EIO=3&transport=polling",
            400,
            5,
            "Unsupported protocol version",
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=carrier",
            400,
            0,
            "Transport unknown",
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&sid=nosuchsession",
            400,
            1,
            "Session ID unknown",
        ),
        (
            "POST",
            "/socket.io/?EIO=4&transport=polling",
            400,
            2,
            "Bad handshake method",
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&key=nope",
            403,
            4,
            "wrong key",
        ),
    ];
    for (method, path, status, _, _) in cases {
        assert_eq!(
            http_status(addr, method, path).await,
            status,
            "{method} {path}"
        );
    }
    assert_eq!(
        http_status(addr, "GET", "/socket.io/?EIO=4&transport=polling").await,
        200
    );
    let seen = seen.lock().expect("lock").clone();
    let expected: Vec<_> = cases
        .iter()
        .map(|(method, path, _, code, message)| {
            (
                *code,
                (*message).to_owned(),
                (*method).to_owned(),
                (*path).to_owned(),
                true,
            )
        })
        .collect();
    assert_eq!(
        seen, expected,
        "one report per refusal, none for the accepted handshake"
    );
}

const WS: &str = "/socket.io/?EIO=4&transport=websocket";

/// A WebSocket handshake from `local` (an address of 127.0.0.x), or the refusal's text.
async fn ws_from(local: [u8; 4], addr: std::net::SocketAddr) -> Result<RawClient, String> {
    let local = std::net::SocketAddr::from((local, 0));
    RawClient::connect_from(Some(local), addr, WS)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_refuse_over_each_limit_and_free_up_again() {
    let refusals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = refusals.clone();
    let limited = |limits: socketio::SessionLimits| {
        let record = record.clone();
        build(move |b| {
            b.connection_limits(limits).on_connection_error(move |err| {
                record.lock().expect("lock").push(err.message.clone());
            })
        })
    };

    // Per server: two sessions, the third refused; one closes, a new one fits.
    let io = limited(socketio::SessionLimits {
        max_sessions: Some(2),
        ..Default::default()
    });
    let addr = serve(&io).await;
    let a = ws_from([127, 0, 0, 1], addr).await.expect("first");
    let _b = ws_from([127, 0, 0, 2], addr).await.expect("second");
    let refused = ws_from([127, 0, 0, 3], addr)
        .await
        .err()
        .expect("third refused");
    assert!(refused.contains("403"), "{refused}");
    drop(a);
    let deadline = tokio::time::Instant::now() + WAIT;
    while io.connection_count() > 1 {
        assert!(tokio::time::Instant::now() < deadline, "session not closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ws_from([127, 0, 0, 3], addr).await.expect("room again");

    // Per address: two from 127.0.0.5, a third from it refused, others still welcome.
    let io = limited(socketio::SessionLimits {
        max_sessions_per_address: Some(2),
        ..Default::default()
    });
    let addr = serve(&io).await;
    let _c = ws_from([127, 0, 0, 5], addr).await.expect("1st from .5");
    let _d = ws_from([127, 0, 0, 5], addr).await.expect("2nd from .5");
    assert!(ws_from([127, 0, 0, 5], addr).await.is_err(), "3rd from .5");
    ws_from([127, 0, 0, 6], addr)
        .await
        .expect("another address");

    // Handshake rate: a burst of 3 at 3/s, the 4th at once refused, one more after 400 ms.
    let io = limited(socketio::SessionLimits {
        handshakes_per_second: Some(3),
        ..Default::default()
    });
    let addr = serve(&io).await;
    let mut kept = Vec::new();
    for i in 0..3 {
        kept.push(
            ws_from([127, 0, 0, 10 + i], addr)
                .await
                .expect("in the burst"),
        );
    }
    assert!(
        ws_from([127, 0, 0, 20], addr).await.is_err(),
        "over the rate"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    ws_from([127, 0, 0, 21], addr)
        .await
        .expect("a token refilled");

    assert_eq!(
        *refusals.lock().expect("lock"),
        [
            "Server full",
            "Too many connections from this address",
            "Too many handshakes"
        ],
        "each refusal says which limit"
    );
}

#[tokio::test]
async fn expire_at_warns_then_disconnects_unless_renewed() {
    use std::time::SystemTime;
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        let notice = socketio::ExpiryNotice::new("expiring", "expired", Duration::from_millis(200))
            .message("token expired");
        socket.expire_at(
            SystemTime::now() + Duration::from_millis(400),
            notice.clone(),
        );
        socket.on("renew", move |socket: Socket| {
            let notice = notice.clone();
            async move {
                socket.expire_at(SystemTime::now() + Duration::from_secs(60), notice);
            }
        });
    });
    let addr = serve(&io).await;

    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    let warned = text(&mut client).await;
    assert!(warned.starts_with(r#"42["expiring",{"#), "{warned}");
    assert!(warned.contains(r#""in_ms":"#) && warned.contains(r#""expires_at":"#));
    let expired = text(&mut client).await;
    assert!(
        expired.starts_with(r#"42["expired",{"expired_at":"#) && expired.contains("token expired"),
        "{expired}"
    );
    assert_eq!(
        text(&mut client).await,
        "41",
        "a DISCONNECT after the expiry event"
    );

    // Renewed before the deadline: no warning, no expiry.
    let (mut renewed, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    renewed.send_text(br#"42["renew"]"#).await.expect("send");
    assert!(
        nothing_within(&mut renewed, 800).await,
        "a renewed socket stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_args_beside_other_extractors_all_see_the_arguments() {
    use socketio::{AckSender, Data, HandlerError, RawArgs};
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        // RawArgs last among the readers: it takes the arguments.
        socket.on(
            "taken",
            |socket: Socket, RawArgs(args): RawArgs, ack: AckSender| async move {
                ack.send_raw(&args)?;
                socket.emit("len", &args.len())?;
                Ok::<_, HandlerError>(())
            },
        );
        // Readers after it: it must leave them in place.
        socket.on(
            "shared",
            |RawArgs(args): RawArgs, Data(n): Data<(u32, String)>, ack: AckSender| async move {
                ack.send(&(args.len(), n.0, n.1))?;
                Ok::<_, HandlerError>(())
            },
        );
        socket.on(
            "after",
            |Data(n): Data<(u32, String)>, RawArgs(args): RawArgs, ack: AckSender| async move {
                ack.send(&(n.0, args.raw(1).map(str::to_owned)))?;
                Ok::<_, HandlerError>(())
            },
        );
    });
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    client
        .send_text(br#"421["taken",1,"a"]"#)
        .await
        .expect("send");
    assert_eq!(text(&mut client).await, r#"431[1,"a"]"#);
    assert_eq!(text(&mut client).await, r#"42["len",2]"#);
    client
        .send_text(br#"422["shared",7,"b"]"#)
        .await
        .expect("send");
    assert_eq!(text(&mut client).await, r#"432[[2,7,"b"]]"#);
    client
        .send_text(br#"423["after",9,"c"]"#)
        .await
        .expect("send");
    assert_eq!(text(&mut client).await, r#"433[[9,"\"c\""]]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_client_closed_by_the_server_between_polls_gets_the_close_packet() {
    use socketio_bench::http::HttpConn;
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on("kick", |socket: Socket| async move {
            socket.close_connection();
        });
    });
    let addr = serve(&io).await;
    let mut http = HttpConn::connect(addr).await.expect("connect");
    let (status, open) = http
        .request("GET", "/socket.io/?EIO=4&transport=polling", b"")
        .await
        .expect("handshake");
    assert_eq!(status, 200);
    let sid = common::sid_of_open(&open);
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, _) = http.request("POST", &path, b"40").await.expect("connect");
    assert_eq!(status, 200);
    let (_, connected) = http.request("GET", &path, b"").await.expect("CONNECT");
    assert!(connected.starts_with(b"40{"), "{connected:?}");
    // The server closes the session while no poll is waiting: the next poll is answered
    // with the close packet (as Node's server does), not "Session ID unknown".
    let (status, _) = http
        .request("POST", &path, br#"42["kick"]"#)
        .await
        .expect("kick");
    assert_eq!(status, 200);
    let (status, body) = http.request("GET", &path, b"").await.expect("poll");
    assert_eq!((status, &body[..]), (200, &b"1"[..]));
    // After that answer the session is gone.
    let (status, _) = http.request("GET", &path, b"").await.expect("poll again");
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_names_are_matched_plain_or_escaped() {
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        for name in ["plain", "quo\"te", "été"] {
            socket.on(
                name,
                move |socketio::Data(n): socketio::Data<u32>, ack: socketio::AckSender| async move {
                    let _ = ack.send(&format!("{name}:{n}"));
                },
            );
        }
    });
    let addr = serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    for (packet, answer) in [
        (r#"421["plain",1]"#, r#"431["plain:1"]"#),
        (r#"422["quo\"te",2]"#, r#"432["quo\"te:2"]"#),
        // The same name written with escapes is the same name.
        (r#"423["\u00e9t\u00e9",3]"#, r#"433["été:3"]"#),
        (r#"424["été",4]"#, r#"434["été:4"]"#),
        (r#"425["\u0070lain",5]"#, r#"435["plain:5"]"#),
    ] {
        client.send_text(packet.as_bytes()).await.expect("send");
        assert_eq!(text(&mut client).await, answer, "{packet}");
    }
}
