// The benchmark contract on the Node.js reference server (socket.io@4), on 127.0.0.1:$PORT,
// with the cluster operations when SOCKETIO_ADAPTER names a Redis adapter (see bench/README.md).
const { createServer } = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3000);
const adapter = process.env.SOCKETIO_ADAPTER || "memory";
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const nodeName = process.env.NODE_NAME || "node";

async function main() {
  const httpServer = createServer();
  httpServer.on("connection", (socket) => socket.setNoDelay(true));
  // SOCKETIO_PARSER=msgpack: socket.io-msgpack-parser (the benchmark's msgpack echo).
  const parser = process.env.SOCKETIO_PARSER === "msgpack" ? { parser: require("socket.io-msgpack-parser") } : {};
  const io = new Server(httpServer, parser);

  if (adapter !== "memory") {
    const { createClient, createCluster } = require("redis");
    const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
    // redis-cluster://h1:p1?node=h2:p2&node=h3:p3: a Redis Cluster client over those nodes.
    const cluster = redisUrl.startsWith("redis-cluster://");
    const rootNodes = () => {
      const url = new URL(redisUrl.replace("redis-cluster://", "http://"));
      const hosts = [url.host, ...url.searchParams.getAll("node")];
      return hosts.map((host) => ({ url: `redis://${host}` }));
    };
    const pub = cluster ? createCluster({ rootNodes: rootNodes() }) : createClient({ url: redisUrl });
    const sub = pub.duplicate();
    for (const client of [pub, sub]) client.on("error", (err) => console.error("redis:", err.message));
    await Promise.all([pub.connect(), sub.connect()]);
    // SUBSCRIPTION_MODE: the sharded adapter's (static, dynamic (default), dynamic-private).
    const subscriptionMode = process.env.SUBSCRIPTION_MODE || "dynamic";
    if (adapter === "redis-sharded") io.adapter(createShardedAdapter(pub, sub, { subscriptionMode }));
    else if (adapter === "redis") io.adapter(createAdapter(pub, sub));
    else throw new Error(`unknown SOCKETIO_ADAPTER ${adapter}`);
  }

  // The Admin UI instrumentation (SOCKETIO_ADMIN=1): login admin / ADMIN_HASH (bcrypt), or none.
  if (process.env.SOCKETIO_ADMIN === "1") {
    const { instrument } = require("@socket.io/admin-ui");
    const hash = process.env.ADMIN_HASH;
    instrument(io, {
      auth: hash ? { type: "basic", username: "admin", password: hash } : false,
      serverId: nodeName,
      mode: "development",
    });
  }

  io.use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.token === "bad") {
      return next(new Error("unauthorized"));
    }
    next();
  });

  // Server-side events from the other servers of the cluster.
  io.on("hello", (data, cb) => typeof cb === "function" && cb({ node: nodeName, got: data }));
  io.on("announce", (data) => io.local.emit("announced", { node: nodeName, data }));

  const ok = (ack) => (typeof ack === "function" ? ack : () => {});
  const sortedIds = (sockets) => sockets.map((s) => s.id).sort();

  // A failing cluster operation answers {error} instead of crashing the peer.
  process.on("unhandledRejection", (err) => console.error("unhandled:", err && err.message));

  io.on("connection", (socket) => {
    socket.on("echo", (data, ack) => {
      if (typeof ack === "function") ack(data);
      else socket.emit("echo", data);
    });
    socket.on("join", (room, ack) => {
      socket.join(room);
      ok(ack)("ok");
    });
    socket.on("broadcast", (msg) => {
      io.to(msg.room).emit("bcast", msg.data);
    });
    socket.on("fail", () => {
      socket.emit("error", { message: "boom" });
    });

    // Cluster operations, only in a cluster (the single-server figures measure the contract
    // above alone).
    if (adapter === "memory") return;
    // Assigned into, not replaced: the Admin UI keeps its own details in socket.data._admin.
    socket.data.node = nodeName;
    socket.on("sockets", async (ack) => {
      try {
        ok(ack)(sortedIds(await io.fetchSockets()));
      } catch (err) {
        ok(ack)({ error: err.message });
      }
    });
    socket.on("servers", async (ack) => ok(ack)(await io.of("/").adapter.serverCount()));
    socket.on("ask", async (room, ack) => {
      try {
        const answers = await io.to(room).timeout(2000).emitWithAck("question", nodeName);
        ok(ack)({ ok: answers.map(String).sort() });
      } catch (err) {
        ok(ack)({ error: err.message });
      }
    });
    socket.on("pull", async ({ target, room }, ack) => {
      io.in(target).socketsJoin(room);
      ok(ack)("ok");
    });
    socket.on("drop", async ({ target, room }, ack) => {
      io.in(target).socketsLeave(room);
      ok(ack)("ok");
    });
    socket.on("kick", async (room, ack) => {
      io.in(room).disconnectSockets();
      ok(ack)("ok");
    });
    socket.on("details", async (ack) => {
      try {
        const sockets = await io.fetchSockets();
        ok(ack)(
          sockets
            .map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), data: s.data, eio: s.handshake.query.EIO }))
            .sort((a, b) => (a.id < b.id ? -1 : 1)),
        );
      } catch (err) {
        ok(ack)({ error: err.message });
      }
    });
    socket.on("emit", (msg, ack) => {
      let op = io;
      for (const room of msg.rooms || []) op = op.to(room);
      for (const room of msg.except || []) op = op.except(room);
      if (msg.local) op = op.local;
      op.emit(msg.event, msg.binary ? Buffer.from([1, 2, 3]) : msg.data);
      ok(ack)("ok");
    });
    socket.on("peers", async (data, ack) => {
      try {
        const answers = await io.serverSideEmitWithAck("hello", data);
        ok(ack)({ ok: answers.map((a) => JSON.stringify(a)).sort() });
      } catch (err) {
        ok(ack)({ error: err.message });
      }
    });
  });

  httpServer.listen(port, "127.0.0.1", () =>
    console.log(`node socket.io peer on 127.0.0.1:${port} (adapter ${adapter})`),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
