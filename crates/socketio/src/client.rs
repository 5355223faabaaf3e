//! One Engine.IO connection seen from Socket.IO: decodes its packets (joining binary
//! attachments), routes them to the namespace sockets, runs the CONNECT flow (recovery,
//! middlewares, reply) and closes everything when the connection ends.

use std::sync::{Arc, Mutex, Weak};

use engineio::{Frame, Message, Session, Sid};

use crate::encode::{encode_connect, encode_control, encode_event, EncodedPacket};
use crate::handler::{run_inline, ConnectRequest};
use crate::namespace::NsInner;
use crate::packet::{decode, Packet, PacketType, Reassembler};
use crate::server::{ServerConfig, ServerInner};
use crate::socket::{DisconnectReason, Socket};

/// A remote address as a span field (empty when unknown), formatted only if recorded.
struct RemoteField(Option<std::net::SocketAddr>);

impl std::fmt::Display for RemoteField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => Ok(()),
        }
    }
}

pub(crate) struct Client {
    pub(crate) session: Arc<Session>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) state: Arc<http::Extensions>,
    server: Weak<ServerInner>,
    /// One socket per joined namespace.
    sockets: Mutex<Vec<Socket>>,
    reassembler: Mutex<Reassembler>,
}

impl Client {
    pub(crate) fn new(session: Arc<Session>, server: &Arc<ServerInner>) -> Arc<Client> {
        let client = Arc::new(Client {
            session,
            config: server.config.clone(),
            state: server.state.clone(),
            server: Arc::downgrade(server),
            sockets: Mutex::new(Vec::new()),
            reassembler: Mutex::new(Reassembler::default()),
        });
        // No namespace joined in time: the session closes itself (no timer task per connection).
        client
            .session
            .close_at(std::time::Instant::now() + client.config.connect_timeout);
        client
    }

    pub(crate) fn on_message(self: &Arc<Self>, message: Message) {
        // Everything this message causes (handlers, their logs, their tasks) is in the
        // connection's span; free when no subscriber wants it.
        let span = tracing::info_span!(
            "connection",
            sid = %self.session.sid(),
            transport = %self.session.transport().as_str(),
            remote = %RemoteField(self.session.request().remote_addr),
        );
        let _entered = span.enter();
        if let Some(o) = &self.config.observer {
            if o.0.wants_traffic() {
                o.0.message_in(match &message {
                    Message::Text(text) => text.len(),
                    Message::Binary(data) => data.len(),
                });
            }
        }
        let complete = match (self.config.parser, message) {
            (crate::Parser::MsgPack, Message::Binary(data)) => {
                crate::msgpack::decode(&data, &self.config.limits).map(Some)
            }
            // The msgpack parser sends every packet as binary.
            (crate::Parser::MsgPack, Message::Text(_)) => {
                Err(crate::packet::ParseError::InvalidType)
            }
            (crate::Parser::Default, message) => {
                let mut reassembler = self.reassembler.lock().unwrap_or_else(|e| e.into_inner());
                match message {
                    Message::Text(text) => {
                        decode(text, &self.config.limits).and_then(|p| reassembler.text(p))
                    }
                    Message::Binary(data) => reassembler.binary(data),
                }
            }
        };
        match complete {
            Ok(Some(packet)) => self.route(packet),
            Ok(None) => {}
            Err(err) => {
                if let Some(o) = &self.config.observer {
                    o.0.parse_error();
                }
                tracing::debug!(sid = %self.session.sid(), %err, "invalid packet: closing connection");
                self.close_all(DisconnectReason::ParseError);
                self.session.close_with(engineio::CloseReason::ParseError);
            }
        }
    }

    fn route(self: &Arc<Self>, packet: Packet) {
        if packet.kind == PacketType::Connect {
            return self.on_connect(packet);
        }
        let socket = self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|s| s.ns_name() == &*packet.nsp)
            .cloned();
        let Some(socket) = socket else {
            tracing::debug!(sid = %self.session.sid(), nsp = %packet.nsp, "packet for a namespace not joined: closing");
            self.close_all(DisconnectReason::ParseError);
            self.session.close_with(engineio::CloseReason::ParseError);
            return;
        };
        match packet.kind {
            PacketType::Event => socket.dispatch_event(packet),
            PacketType::Ack => socket.dispatch_ack(packet),
            PacketType::Disconnect => {
                self.remove_socket(&packet.nsp);
                socket.close(DisconnectReason::ClientNamespaceDisconnect);
            }
            _ => {}
        }
    }

    fn on_connect(self: &Arc<Self>, packet: Packet) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        if self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|s| s.ns_name() == &*packet.nsp)
        {
            tracing::debug!(nsp = %packet.nsp, "already connected to namespace: ignoring CONNECT");
            return;
        }
        let Some(ns) = server.namespace_for(&packet.nsp) else {
            if let Some(o) = &self.config.observer {
                o.0.refused(&packet.nsp);
            }
            let body = r#"{"message":"Invalid namespace"}"#;
            let _ = self.send_control(encode_control(
                PacketType::ConnectError,
                &packet.nsp,
                Some(body),
            ));
            return;
        };
        let auth = packet
            .auth
            .as_deref()
            .and_then(|raw| serde_json::from_slice(raw).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        let client = self.clone();
        run_inline(async move { client.connect(ns, auth).await });
    }

    async fn connect(self: Arc<Self>, ns: Arc<NsInner>, auth: serde_json::Value) {
        // A failed init is logged once; the namespace still serves its local sockets.
        let _ = ns.wait_ready().await;
        let mut restored = None;
        if ns.recovery_enabled() {
            if let (Some(pid), Some(offset)) = (
                auth.get("pid").and_then(|v| v.as_str()),
                auth.get("offset").and_then(|v| v.as_str()),
            ) {
                restored = ns.adapter().restore_session(pid, offset).await;
            }
        }
        let auth = Arc::new(auth);
        let extensions = restored
            .as_ref()
            .map(|r| r.session.extensions.clone())
            .unwrap_or_default();

        let skip_middlewares =
            restored.is_some() && ns.recovery.is_some_and(|r| r.skip_middlewares);
        let extensions = if skip_middlewares {
            extensions
        } else {
            let req = ConnectRequest {
                session: self.session.clone(),
                auth: auth.clone(),
                ns: ns.clone(),
                extensions: Arc::new(Mutex::new(extensions)),
            };
            // One at a time (no copy of the list): a middleware added meanwhile runs too.
            let mut next = 0;
            loop {
                let middleware = ns
                    .handlers
                    .middlewares
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(next)
                    .cloned();
                let Some(middleware) = middleware else { break };
                next += 1;
                if let Err(err) = middleware(req.clone()).await {
                    let mut body = serde_json::Map::new();
                    body.insert("message".into(), err.message.clone().into());
                    if let Some(data) = err.data {
                        body.insert("data".into(), data);
                    }
                    let body = serde_json::Value::Object(body).to_string();
                    tracing::debug!(nsp = ns.name(), message = %err.message, "connection refused by middleware");
                    if let Some(o) = &ns.observer {
                        o.refused(ns.name());
                    }
                    let _ = self.send_control(encode_control(
                        PacketType::ConnectError,
                        ns.name(),
                        Some(&body),
                    ));
                    ns.remove_if_empty();
                    return;
                }
            }
            let ext = req
                .extensions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            ext
        };
        if self.session.is_closed() {
            ns.remove_if_empty();
            return;
        }
        let (id, pid, recovered) = match &restored {
            Some(r) => (r.session.sid, Some(r.session.pid), true),
            None => (
                Sid::generate(),
                ns.recovery_enabled().then(Sid::generate),
                false,
            ),
        };
        let mut auth = Arc::try_unwrap(auth).unwrap_or_else(|shared| (*shared).clone());
        let mut extensions = extensions;
        let mut ns = ns;
        let socket = loop {
            // A child namespace may be removed (its last socket gone) while this one connected:
            // then it joins the namespace that replaces it, with what its middlewares gave.
            let spare = ns.cleans_up().then(|| (auth.clone(), extensions.clone()));
            let socket = Socket::new(
                id,
                pid,
                ns.clone(),
                self.clone(),
                auth,
                extensions,
                recovered,
            );
            if let Some(r) = &restored {
                socket.replace_data(r.session.data.clone());
            }
            if ns.add_socket(socket.clone()) {
                break socket;
            }
            let Some(((spare_auth, spare_extensions), next)) = spare.zip(
                self.server
                    .upgrade()
                    .and_then(|server| server.namespace_for(ns.name())),
            ) else {
                return;
            };
            let _ = next.wait_ready().await;
            (auth, extensions, ns) = (spare_auth, spare_extensions, next);
        };
        let own = crate::adapter::Room::from(id.as_str());
        match &restored {
            Some(r) => {
                let mut rooms = vec![own];
                rooms.extend(r.session.rooms.iter().cloned());
                ns.adapter().add_all(id, &rooms);
            }
            None => ns.adapter().add_all(id, std::slice::from_ref(&own)),
        }
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(socket.clone());
        self.session.cancel_close_at();
        if let Some(o) = &ns.observer {
            o.connected(ns.name());
        }
        if let Some(r) = restored {
            for (payload, offset) in &r.missed {
                let encoded = encode_event(ns.name(), None, payload, Some(offset));
                let _ = socket.send_encoded(&encoded, false);
            }
        }
        let _ = self.send_control(encode_connect(ns.name(), id, pid));
        if let Some(o) = &ns.observer {
            if o.wants_socket_events() {
                o.socket_connected(&socket);
            }
        }
        let handler = ns
            .handlers
            .on_connect
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(handler) = handler {
            if let Err(err) = handler(socket.clone()).await {
                tracing::warn!(sid = %id, nsp = ns.name(), error = %err.message, "connection handler failed");
            }
        }
    }

    /// Queues a control packet (CONNECT reply, CONNECT_ERROR, DISCONNECT) in this server's
    /// wire format.
    pub(crate) fn send_control(&self, frame: Frame) -> Result<(), engineio::SendError> {
        match self.config.parser {
            crate::Parser::Default => self.session.send(frame),
            crate::Parser::MsgPack => match EncodedPacket::new(frame, Vec::new()).msgpack_frame() {
                Some(frame) => self.session.send(frame),
                None => Ok(()),
            },
        }
    }

    /// This connection's namespace sockets.
    pub(crate) fn sockets(&self) -> Vec<Socket> {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn remove_socket(&self, nsp: &str) {
        self.sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s.ns_name() != nsp);
    }

    /// Disconnects every socket of this connection with `reason`.
    pub(crate) fn close_all(&self, reason: DisconnectReason) {
        let sockets: Vec<Socket> = self
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for socket in sockets {
            socket.close(reason);
        }
    }

    pub(crate) fn on_close(&self, reason: engineio::CloseReason) {
        self.close_all(reason.into());
    }
}
