//! An in-process bus: servers in one process form a cluster without a backend. For tests and
//! examples; it shows the smallest [`Transport`] (every message is still encoded to msgpack
//! and decoded again, so it exercises the codec as a real backend does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use socketio::{AdapterError, BoxFuture};
use tokio::sync::mpsc;

use crate::message::ClusterMessage;
use crate::transport::{Inbound, Transport};
use crate::value::{from_msgpack, to_msgpack};

enum Delivery {
    All(Vec<u8>),
    Response(Vec<u8>),
}

struct Attached {
    transport: usize,
    uid: String,
    queue: mpsc::UnboundedSender<Delivery>,
}

#[derive(Default)]
struct Bus {
    namespaces: HashMap<String, Vec<Attached>>,
    next_transport: usize,
    down: bool,
    severed: Vec<usize>,
}

/// The bus. Clone it freely; every [`MemoryTransport`] made from it is one server.
#[derive(Clone, Default)]
pub struct MemoryBus(Arc<Mutex<Bus>>);

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBus")
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn bus(&self) -> std::sync::MutexGuard<'_, Bus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport of one more server.
    pub fn transport(&self) -> MemoryTransport {
        let mut bus = self.bus();
        bus.next_transport += 1;
        MemoryTransport {
            bus: self.clone(),
            id: bus.next_transport,
        }
    }

    /// Simulates an outage: while down, every publish fails at once.
    pub fn set_down(&self, down: bool) {
        self.bus().down = down;
    }
}

impl MemoryTransport {
    /// Simulates this server dying: it stops receiving, and what it publishes is lost, without
    /// any farewell to its peers.
    pub fn sever(&self) {
        let mut bus = self.bus.bus();
        bus.severed.push(self.id);
        for list in bus.namespaces.values_mut() {
            list.retain(|a| a.transport != self.id);
        }
    }
}

/// One server's connection to a [`MemoryBus`].
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    bus: MemoryBus,
    id: usize,
}

fn unavailable() -> AdapterError {
    AdapterError::backend("memory bus is down")
}

impl MemoryTransport {
    fn send(
        &self,
        nsp: &str,
        to: Option<&str>,
        delivery: impl Fn() -> Delivery,
    ) -> Result<(), AdapterError> {
        let bus = self.bus.bus();
        if bus.down {
            return Err(unavailable());
        }
        if bus.severed.contains(&self.id) {
            return Ok(());
        }
        for peer in bus.namespaces.get(nsp).into_iter().flatten() {
            if to.is_none_or(|uid| peer.uid == uid) {
                let _ = peer.queue.send(delivery());
            }
        }
        Ok(())
    }
}

impl Transport for MemoryTransport {
    fn attach(
        &self,
        nsp: &str,
        uid: &str,
        inbound: Weak<dyn Inbound>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let (queue, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let mut bus = self.bus.bus();
        let list = bus.namespaces.entry(nsp.to_owned()).or_default();
        list.retain(|a| a.transport != self.id);
        list.push(Attached {
            transport: self.id,
            uid: uid.to_owned(),
            queue,
        });
        tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                let Some(inbound) = inbound.upgrade() else {
                    break;
                };
                let (bytes, response) = match delivery {
                    Delivery::All(b) => (b, false),
                    Delivery::Response(b) => (b, true),
                };
                let Ok(message) = from_msgpack(&bytes).and_then(|v| ClusterMessage::from_value(&v))
                else {
                    continue;
                };
                if response {
                    inbound.on_response(message);
                } else {
                    inbound.on_message(message, None);
                }
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn detach(&self, nsp: &str) -> BoxFuture<'_, Result<(), AdapterError>> {
        if let Some(list) = self.bus.bus().namespaces.get_mut(nsp) {
            list.retain(|a| a.transport != self.id);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn publish(
        &self,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<Option<String>, AdapterError>> {
        let result = message
            .to_value()
            .map_err(|e| AdapterError::Codec(e.to_string()))
            .and_then(|value| {
                let bytes = to_msgpack(&value);
                self.send(&message.nsp, None, || Delivery::All(bytes.clone()))
            });
        Box::pin(std::future::ready(result.map(|()| None)))
    }

    fn publish_response(
        &self,
        requester: &str,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<(), AdapterError>> {
        let result = message
            .to_value()
            .map_err(|e| AdapterError::Codec(e.to_string()))
            .and_then(|value| {
                let bytes = to_msgpack(&value);
                self.send(&message.nsp, Some(requester), || {
                    Delivery::Response(bytes.clone())
                })
            });
        Box::pin(std::future::ready(result))
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let bus = self.bus.bus();
        let result = if bus.down {
            Err(unavailable())
        } else {
            Ok(bus.namespaces.get(nsp).map_or(0, Vec::len))
        };
        Box::pin(std::future::ready(result))
    }
}
