// The Admin UI protocol across a mixed cluster on one Redis: A is a Node server instrumented
// with the official @socket.io/admin-ui, B and C are Rust servers with socketio-admin. A
// dashboard (the official client, as the dashboard configures it) on either side must see
// every server and every socket, get the other side's live events, and act on its sockets.
// Started by crates/socketio-server/tests/cluster.rs with A_URL/A_NAME, B_URL/B_NAME and
// C_URL/C_NAME; login admin / changeit everywhere.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { waitFor as waitForMs, connected } from "../wait.mjs";

const A = { url: process.env.A_URL, name: process.env.A_NAME };
const B = { url: process.env.B_URL, name: process.env.B_NAME };
const C = { url: process.env.C_URL, name: process.env.C_NAME };
if (!A.url || !B.url || !C.url) throw new Error("A_URL, B_URL and C_URL must be set");

const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

function open(server, nsp, opts = {}) {
  const socket = io(server.url + nsp, { forceNew: true, reconnection: false, ...opts });
  opened.push(socket);
  return socket;
}

const dashboard = (server, auth = { username: "admin", password: "changeit" }) =>
  open(server, "/admin", { withCredentials: true, auth });



// Every server id seen in server_stats, once `names` have all been seen.
const waitFor = (socket, event, pred = () => true, ms = 8000) => waitForMs(socket, event, pred, ms);

async function statsFrom(admin, names) {
  const seen = new Set();
  await waitFor(admin, "server_stats", (s) => {
    seen.add(s.serverId);
    return names.every((n) => seen.has(n));
  });
  return seen;
}

test("a dashboard on a Node server that nobody else watches gets the Rust servers' stats and live events", async () => {
  const admin = dashboard(A);
  await connected(admin);
  // B and C have no dashboard of their own: they report once they see this one.
  await statsFrom(admin, [A.name, B.name, C.name]);
  const joins = [];
  admin.on("room_joined", (...args) => joins.push(args));
  const connects = [];
  admin.on("socket_connected", (...args) => connects.push(args));
  const s = open(B, "/", { transports: ["polling"] });
  await connected(s);
  const deadline = Date.now() + 5000;
  while (!connects.some(([x]) => x.id === s.id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const [socket] = connects.find(([x]) => x.id === s.id) || [];
  assert.ok(socket, "socket_connected from the Rust server");
  assert.equal(socket.clientId, s.io.engine.id.slice(0, 12));
  assert.equal(socket.transport, "polling");
  assert.ok(joins.some(([nsp, room, id]) => nsp === "/" && room === s.id && id === s.id));
  admin.disconnect();
  s.disconnect();
});

test("each side lists the other side's sockets with client id and transport", async () => {
  const onNode = open(A, "/", { transports: ["websocket"] });
  const onRust = open(B, "/", { transports: ["polling"] });
  await Promise.all([connected(onNode), connected(onRust)]);
  for (const server of [A, B]) {
    const admin = dashboard(server);
    const [all] = await waitFor(admin, "all_sockets");
    const n = all.find((x) => x.id === onNode.id);
    const r = all.find((x) => x.id === onRust.id);
    assert.ok(n && r, `${server.name} lists both: ${JSON.stringify(all.map((x) => x.id))}`);
    assert.deepEqual([n.clientId, n.transport, n.nsp], [onNode.io.engine.id.slice(0, 12), "websocket", "/"]);
    assert.deepEqual([r.clientId, r.transport, r.nsp], [onRust.io.engine.id.slice(0, 12), "polling", "/"]);
    assert.equal(n.data._admin, undefined, "_admin is not shown");
    assert.equal(r.data._admin, undefined, "_admin is not shown");
    assert.ok(r.rooms.includes(onRust.id) && n.rooms.includes(onNode.id));
    admin.disconnect();
  }
});

test("commands from either side act on sockets of the other", async () => {
  const onNode = open(A, "/", { transports: ["websocket"] });
  const onRust = open(B, "/", { transports: ["websocket"] });
  const bystander = open(B, "/", { transports: ["websocket"] });
  const fromNode = dashboard(A);
  const fromRust = dashboard(B);
  await Promise.all([onNode, onRust, bystander, fromNode, fromRust].map(connected));
  await statsFrom(fromNode, [B.name]);

  // The Node dashboard makes the Rust socket join a room; the Rust server reports it.
  const joined = waitFor(fromNode, "room_joined", (nsp, room, id) => room === "vip" && id === onRust.id);
  fromNode.emit("join", "/", "vip", onRust.id);
  await joined;
  const left = waitFor(fromNode, "room_left", (nsp, room, id) => room === "vip" && id === onRust.id);
  fromNode.emit("leave", "/", "vip", onRust.id);
  await left;

  // The Rust dashboard disconnects the Node socket; the Node server reports it.
  const nodeId = onNode.id;
  const gone = waitFor(onNode, "disconnect");
  const reported = waitFor(fromRust, "socket_disconnected", (nsp, id) => id === nodeId);
  fromRust.emit("_disconnect", "/", false, nodeId);
  assert.equal((await gone)[0], "io server disconnect");
  assert.equal((await reported)[2], "server namespace disconnect");

  // The Node dashboard disconnects one Rust socket, and only that one.
  const rustGone = waitFor(onRust, "disconnect");
  fromNode.emit("_disconnect", "/", false, onRust.id);
  assert.equal((await rustGone)[0], "io server disconnect");
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(bystander.connected);
});

test("a session from one Rust server is valid on the other (sessions in Redis)", async () => {
  const first = dashboard(B);
  const [id] = await waitFor(first, "session");
  first.disconnect();
  const reload = dashboard(C, { sessionId: id });
  await connected(reload);
  const refused = dashboard(C, { sessionId: "0000000000000000" });
  const [err] = await waitFor(refused, "connect_error");
  assert.equal(err.message, "invalid credentials");
});
