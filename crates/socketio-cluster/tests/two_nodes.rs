//! Two servers in one process joined by the in-process bus, driven by raw protocol clients:
//! every cluster operation crosses from one node to the other. The adapter under test uses
//! only the public API of `socketio` (it lives in another crate).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketio::{Binary, Data, ServerEvent, Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_cluster::memory::{MemoryBus, MemoryTransport};
use socketio_cluster::{ClusterAdapter, ClusterConfig, HeartbeatConfig};

const WAIT: Duration = Duration::from_secs(3);

async fn node(
    bus: &MemoryBus,
    config: ClusterConfig,
    name: &'static str,
) -> (SocketIo, SocketAddr) {
    node_on(bus.transport(), config, name).await
}

async fn node_on(
    transport: MemoryTransport,
    config: ClusterConfig,
    name: &'static str,
) -> (SocketIo, SocketAddr) {
    let io = SocketIo::builder()
        .adapter(ClusterAdapter::factory(Arc::new(transport), config))
        .build();
    io.of("/").on_connection(move |socket: Socket| async move {
        socket
            .set_data(&serde_json::json!({"node": name}))
            .expect("data");
        socket.join("everyone");
        socket.on("relay", |socket: Socket, Data(n): Data<u32>| async move {
            socket.broadcast().emit("relayed", &n).ok();
        });
    });
    io.of("/")
        .on_server_event("ping", move |event: ServerEvent| async move {
            let n: u32 = event.data().unwrap_or(0);
            event
                .ack(&serde_json::json!({"from": name, "n": n + 1}))
                .ok();
        });
    io.of("/").ready().await.expect("adapter ready");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = io.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    (io, addr)
}

async fn text(client: &mut RawClient) -> String {
    let bytes = client
        .recv_text_timeout(WAIT)
        .await
        .expect("message in time")
        .expect("open");
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn nothing_within(client: &mut RawClient, ms: u64) -> bool {
    client
        .recv_text_timeout(Duration::from_millis(ms))
        .await
        .is_err()
}

async fn client(addr: SocketAddr) -> (RawClient, String) {
    RawClient::socketio_handshake(addr, "")
        .await
        .expect("client connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_crosses_nodes() {
    let bus = MemoryBus::new();
    let (a, a_addr) = node(&bus, ClusterConfig::new(), "a").await;
    let (b, b_addr) = node(&bus, ClusterConfig::new(), "b").await;
    let (mut ca, ca_id) = client(a_addr).await;
    let (mut cb, cb_id) = client(b_addr).await;
    assert_eq!(a.of("/").server_count().await.expect("count"), 2);

    // A broadcast from node a reaches both nodes' clients; `except` and `local` are honoured.
    a.of("/").emit("hello", &1).expect("emit");
    assert_eq!(text(&mut ca).await, r#"42["hello",1]"#);
    assert_eq!(text(&mut cb).await, r#"42["hello",1]"#);
    a.of("/")
        .except(cb_id.as_str())
        .emit("not-b", &2)
        .expect("emit");
    assert_eq!(text(&mut ca).await, r#"42["not-b",2]"#);
    a.of("/").local().emit("local", &3).expect("emit");
    assert_eq!(text(&mut ca).await, r#"42["local",3]"#);
    assert!(
        nothing_within(&mut cb, 200).await,
        "except and local stay off node b"
    );

    // Binary arguments cross as attachments.
    a.of("/")
        .to("everyone")
        .emit("file", &Binary::from(vec![1u8, 2, 3]))
        .expect("emit");
    assert_eq!(
        text(&mut cb).await,
        r#"451-["file",{"_placeholder":true,"num":0}]"#
    );
    let frame = cb.recv().await.expect("frame").expect("open");
    assert_eq!(format!("{frame:?}"), r#"Binary(b"\x01\x02\x03")"#);
    assert_eq!(
        text(&mut ca).await,
        r#"451-["file",{"_placeholder":true,"num":0}]"#
    );
    let _ = ca.recv().await;

    // fetch_sockets from a describes b's socket: id, rooms, handshake and data.
    let mut sockets = a.of("/").fetch_sockets().await.expect("fetch");
    sockets.sort_by_key(|s| s.data["node"].as_str().map(str::to_owned));
    assert_eq!(sockets.len(), 2);
    assert_eq!(sockets[1].id.as_str(), cb_id);
    assert!(sockets[1].local.is_none() && sockets[0].local.is_some());
    assert_eq!(sockets[1].data, serde_json::json!({"node": "b"}));
    assert_eq!(sockets[1].handshake["query"]["EIO"], "4");
    assert!(sockets[1].rooms.iter().any(|r| &**r == "everyone"));

    // Join, leave and disconnect b's socket from a.
    a.of("/")
        .to(cb_id.as_str())
        .sockets_join(&["vip"])
        .await
        .expect("join");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.of("/").to("vip").emit("vip", &true).expect("emit");
    assert_eq!(text(&mut cb).await, r#"42["vip",true]"#);
    assert!(nothing_within(&mut ca, 100).await);
    sockets[1].leave(&["vip"]).await.expect("leave");
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.of("/").to("vip").emit("vip", &false).expect("emit");
    assert!(nothing_within(&mut cb, 200).await, "left the room");

    // Server-side emit with acks, both ways; plain server-side emit.
    let answers = a
        .of("/")
        .server_side_emit_with_ack("ping", &41)
        .await
        .expect("answers");
    assert_eq!(answers.len(), 1);
    let answer: serde_json::Value = answers[0].data().expect("json");
    assert_eq!(answer, serde_json::json!({"from": "b", "n": 42}));
    let answers = b
        .of("/")
        .server_side_emit_with_ack("ping", &1)
        .await
        .expect("answers");
    assert_eq!(
        answers[0].data::<serde_json::Value>().expect("json")["from"],
        "a"
    );

    // A broadcast with acks collects the clients of both nodes.
    let collect = {
        let a = a.clone();
        tokio::spawn(async move {
            a.of("/")
                .timeout(Duration::from_secs(2))
                .emit_with_ack("question", &"?")
                .await
        })
    };
    for (c, answer) in [(&mut ca, "from-a"), (&mut cb, "from-b")] {
        let asked = text(c).await;
        let id = asked
            .strip_prefix("42")
            .and_then(|r| r.split('[').next())
            .expect("ack id");
        assert_eq!(asked, format!(r#"42{id}["question","?"]"#));
        c.send_text(format!(r#"43{id}["{answer}"]"#).as_bytes())
            .await
            .expect("answer");
    }
    let mut acks: Vec<String> = collect
        .await
        .expect("task")
        .expect("every ack")
        .iter()
        .map(|r| r.data().expect("string"))
        .collect();
    acks.sort();
    assert_eq!(acks, ["from-a", "from-b"]);

    // 20 events from a client on b arrive in order on a.
    for n in 0..20 {
        cb.send_text(format!(r#"42["relay",{n}]"#).as_bytes())
            .await
            .expect("send");
    }
    for n in 0..20 {
        assert_eq!(text(&mut ca).await, format!(r#"42["relayed",{n}]"#));
    }

    // Disconnect across nodes.
    a.of("/")
        .to(cb_id.as_str())
        .disconnect_sockets(false)
        .await
        .expect("disconnect");
    assert_eq!(text(&mut cb).await, "41");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.of("/").fetch_sockets().await.expect("fetch").len(), 1);
    let _ = ca_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_local_delivery_and_fails_remote_requests_fast() {
    let bus = MemoryBus::new();
    let (a, a_addr) = node(&bus, ClusterConfig::new(), "a").await;
    let (_b, b_addr) = node(&bus, ClusterConfig::new(), "b").await;
    let (mut ca, _) = client(a_addr).await;
    let (mut cb, _) = client(b_addr).await;

    bus.set_down(true);
    // The local half is delivered, and the caller learns that the other servers were not told.
    let err = a.of("/").emit("during", &1).expect_err("not published");
    assert!(
        matches!(
            err,
            socketio::EmitError::Adapter(socketio::AdapterError::Backend(_))
        ),
        "{err}"
    );
    assert_eq!(text(&mut ca).await, r#"42["during",1]"#);
    assert!(nothing_within(&mut cb, 200).await);
    let started = std::time::Instant::now();
    let err = a.of("/").fetch_sockets().await.expect_err("backend down");
    assert!(matches!(err, socketio::AdapterError::Backend(_)), "{err}");
    let err = a
        .of("/")
        .broadcast()
        .emit_with_ack("q", &1)
        .await
        .expect_err("not published");
    assert!(
        matches!(err, socketio::BroadcastAckError::Failed { .. }),
        "{err}"
    );
    let err = a
        .of("/")
        .server_side_emit_with_ack("ping", &1)
        .await
        .expect_err("down");
    assert!(matches!(err.source, socketio::AdapterError::Backend(_)));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed fast: {:?}",
        started.elapsed()
    );
    assert!(
        nothing_within(&mut ca, 100).await,
        "a failed broadcast with acks reached nobody"
    );

    bus.set_down(false);
    a.of("/").emit("after", &2).expect("emit");
    assert_eq!(text(&mut ca).await, r#"42["after",2]"#);
    assert_eq!(text(&mut cb).await, r#"42["after",2]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_with_what_arrived() {
    let bus = MemoryBus::new();
    let config = ClusterConfig::new().request_timeout(Duration::from_millis(300));
    let (a, _) = node(&bus, config, "a").await;
    let (b, _) = node(&bus, config, "b").await;
    // b's handler never answers.
    b.of("/").on_server_event("ping", |_: ServerEvent| async {});
    let started = std::time::Instant::now();
    let err = a
        .of("/")
        .server_side_emit_with_ack("ping", &1)
        .await
        .expect_err("no answer");
    assert!(
        matches!(
            err.source,
            socketio::AdapterError::Timeout { missing: 1, .. }
        ),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_track_nodes_joining_leaving_and_dying() {
    let bus = MemoryBus::new();
    let heartbeat = HeartbeatConfig {
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(600),
    };
    let config = ClusterConfig::new().heartbeat(Some(heartbeat));
    let (a, _) = node(&bus, config, "a").await;
    let (b, _) = node(&bus, config, "b").await;
    let c_link = bus.transport();
    let (c, _) = node_on(c_link.clone(), config, "c").await;
    // c's INITIAL_HEARTBEAT makes a and b answer at once; everyone knows everyone.
    tokio::time::sleep(Duration::from_millis(150)).await;
    for io in [&a, &b, &c] {
        assert_eq!(io.of("/").server_count().await.expect("count"), 3);
    }
    let answers = a
        .of("/")
        .server_side_emit_with_ack("ping", &0)
        .await
        .expect("answers");
    assert_eq!(answers.len(), 2);

    // b leaves cleanly: ADAPTER_CLOSE removes it at once.
    b.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.of("/").server_count().await.expect("count"), 2);

    // c dies silently (no ADAPTER_CLOSE): a forgets it after the timeout, and a request
    // waiting for it ends with what it has.
    c_link.sever();
    let started = std::time::Instant::now();
    let answers = a.of("/").server_side_emit_with_ack("ping", &0).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    match answers {
        Ok(list) => assert!(list.is_empty()),
        Err(err) => assert!(err.responses.is_empty(), "{err}"),
    }
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(a.of("/").server_count().await.expect("count"), 1);
    drop(c);
}
