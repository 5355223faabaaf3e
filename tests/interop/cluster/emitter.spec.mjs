// The Redis emitters against a classic-adapter cluster of a Rust server (R_URL) and a Node
// server (N_URL) on REDIS_URL: the official @socket.io/redis-emitter (from the Node peer's
// packages, NODE_PEER_DIR) and ours (EMIT_BIN, the `emit` example), each reaching the
// clients of both servers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { io } from "socket.io-client";

const { R_URL, N_URL, REDIS_URL, EMIT_BIN, NODE_PEER_DIR } = process.env;
if (!R_URL || !N_URL || !REDIS_URL || !EMIT_BIN || !NODE_PEER_DIR) {
  throw new Error("R_URL, N_URL, REDIS_URL, EMIT_BIN and NODE_PEER_DIR must be set (cargo test sets them)");
}
const require = createRequire(`${NODE_PEER_DIR}/server.js`);
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");

let redis;
let nodeEmitter;
const opened = [];
before(async () => {
  redis = createClient({ url: REDIS_URL });
  await redis.connect();
  nodeEmitter = new Emitter(redis);
});
after(async () => {
  opened.forEach((s) => s.disconnect());
  await redis.quit();
});

const rustEmit = (...args) => promisify(execFile)(EMIT_BIN, [REDIS_URL, ...args]);

function once(socket, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function connect(url) {
  const socket = io(url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  opened.push(socket);
  await once(socket, "connect");
  return socket;
}

const settle = () => new Promise((r) => setTimeout(r, 150));

test("each emitter reaches room members on both servers", async () => {
  const [r, n] = [await connect(R_URL), await connect(N_URL)];
  await r.emitWithAck("join", "news");
  await n.emitWithAck("join", "news");
  await settle();
  let got = [once(r, "news"), once(n, "news")];
  nodeEmitter.to("news").emit("news", { from: "node emitter" });
  assert.deepEqual(await Promise.all(got), [[{ from: "node emitter" }], [{ from: "node emitter" }]]);
  got = [once(r, "news"), once(n, "news")];
  await rustEmit("emit", "news", "news", JSON.stringify({ from: "rust emitter" }));
  assert.deepEqual(await Promise.all(got), [[{ from: "rust emitter" }], [{ from: "rust emitter" }]]);
  // Everyone, without a room.
  got = [once(r, "all"), once(n, "all")];
  await rustEmit("emit", "*", "all", "1");
  assert.deepEqual(await Promise.all(got), [[1], [1]]);
});

test("each emitter makes sockets of the other kind of server join rooms and leave", async () => {
  const [r, n] = [await connect(R_URL), await connect(N_URL)];
  const rooms = async (socket, id) => (await socket.emitWithAck("details")).find((s) => s.id === id).rooms;
  nodeEmitter.in(r.id).socketsJoin("by-node-emitter");
  await rustEmit("join", n.id, "by-rust-emitter");
  await settle();
  assert.ok((await rooms(n, r.id)).includes("by-node-emitter"));
  assert.ok((await rooms(r, n.id)).includes("by-rust-emitter"));
  await rustEmit("leave", r.id, "by-node-emitter");
  nodeEmitter.in(n.id).socketsLeave("by-rust-emitter");
  await settle();
  assert.ok(!(await rooms(n, r.id)).includes("by-node-emitter"));
  assert.ok(!(await rooms(r, n.id)).includes("by-rust-emitter"));
});

test("each emitter disconnects sockets on the other kind of server", async () => {
  const [r, n] = [await connect(R_URL), await connect(N_URL)];
  let gone = once(r, "disconnect");
  nodeEmitter.in(r.id).disconnectSockets();
  assert.equal((await gone)[0], "io server disconnect");
  gone = once(n, "disconnect");
  await rustEmit("disconnect", n.id);
  assert.equal((await gone)[0], "io server disconnect");
});

test("each emitter's server-side events reach both servers", async () => {
  const [r, n] = [await connect(R_URL), await connect(N_URL)];
  for (const send of [() => nodeEmitter.serverSideEmit("announce", "from node"), () => rustEmit("server-side", "announce", '"from rust"')]) {
    const got = [once(r, "announced"), once(n, "announced")];
    await send();
    const [[atR], [atN]] = await Promise.all(got);
    assert.equal(atR.node, "rs");
    assert.equal(atN.node, "node");
    assert.equal(atR.data, atN.data);
  }
});
