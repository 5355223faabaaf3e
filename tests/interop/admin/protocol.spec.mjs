// The Admin UI dashboard's protocol against our servers, with the official client configured
// the way the dashboard configures it. Started by crates/socketio-admin/tests/dashboard.rs with
// SIO_ADMIN_DEV (development mode, server id "rust-dev"), SIO_ADMIN_READONLY (read-only) and
// SIO_ADMIN_PROD (production mode); each has namespaces / and /chat whose sockets join the
// rooms named in their CONNECT auth `rooms`, and /admin for admin / changeit.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { waitFor, connected } from "../wait.mjs";

const DEV = process.env.SIO_ADMIN_DEV;
const READONLY = process.env.SIO_ADMIN_READONLY;
const PROD = process.env.SIO_ADMIN_PROD;
if (!DEV || !READONLY || !PROD) throw new Error("SIO_ADMIN_DEV, SIO_ADMIN_READONLY and SIO_ADMIN_PROD must be set");

const LOGIN = { username: "admin", password: "changeit" };
const ALL = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

function open(base, nsp, opts = {}) {
  const socket = io(base + nsp, { forceNew: true, reconnection: false, ...opts });
  opened.push(socket);
  return socket;
}

// The dashboard's own options (withCredentials, polling then WebSocket).
function dashboard(base, auth = LOGIN) {
  return open(base, "/admin", { withCredentials: true, transports: ["polling", "websocket"], auth });
}

// Resolves true if `event` arrives within `ms`, false otherwise.
function arrives(socket, event, ms, pred = () => true) {
  return waitFor(socket, event, pred, ms).then(() => true, () => false);
}

async function until(check, ms = 4000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function upgraded(socket) {
  await connected(socket);
  if (socket.io.engine.transport.name === "websocket") return;
  await waitFor(socket.io.engine, "upgrade");
}

test("a wrong password, a wrong user or no credentials are refused with exactly 'invalid credentials'", async () => {
  for (const auth of [{ username: "admin", password: "nope" }, { username: "root", password: "changeit" }, {}, { sessionId: "0123456789abcdef" }]) {
    const socket = dashboard(DEV, auth);
    const [err] = await waitFor(socket, "connect_error");
    assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
    assert.equal(err.data, undefined);
  }
});

test("login: session after CONNECT, then config and every socket of every namespace", async () => {
  const polling = open(DEV, "/", { transports: ["polling"], auth: { rooms: ["r1"] } });
  const ws = open(DEV, "/chat", { transports: ["websocket"], auth: { rooms: ["r2", "r3"] } });
  const upgrading = open(DEV, "/", {});
  await Promise.all([connected(polling), connected(ws), upgraded(upgrading)]);

  const admin = dashboard(DEV);
  const session = waitFor(admin, "session");
  const config = waitFor(admin, "config");
  const all = waitFor(admin, "all_sockets");
  await connected(admin);
  const [id] = await session;
  assert.match(id, /^[0-9a-f]{16}$/);
  const [{ supportedFeatures }] = await config;
  assert.deepEqual(supportedFeatures, ALL);
  const [sockets] = await all;
  const find = (s) => sockets.find((x) => x.id === s.id);

  const p = find(polling);
  assert.ok(p, "the polling client is listed");
  assert.equal(p.nsp, "/");
  assert.equal(p.transport, "polling");
  assert.equal(p.clientId, polling.io.engine.id.slice(0, 12));
  assert.deepEqual([...p.rooms].sort(), [polling.id, "r1"].sort());
  assert.equal(p.handshake.address, "127.0.0.1");
  assert.equal(p.handshake.auth, undefined, "auth stays on the server");
  assert.equal(p.handshake.query.EIO, "4");
  assert.ok(p.handshake.headers.host);
  assert.deepEqual(p.data, {});

  const w = find(ws);
  assert.equal(w.nsp, "/chat");
  assert.equal(w.transport, "websocket");
  assert.deepEqual([...w.rooms].sort(), [ws.id, "r2", "r3"].sort());
  assert.equal(find(upgrading).transport, "websocket");
  assert.ok(sockets.some((x) => x.nsp === "/admin" && x.id === admin.id), "the dashboard itself is listed");

  // A page reload: the session id alone is enough, and no new session is handed out.
  const reloaded = dashboard(DEV, { sessionId: id });
  const again = arrives(reloaded, "session", 700);
  await connected(reloaded);
  assert.equal(await again, false);
});

test("server_stats every 2 s, with this server's figures and traffic", async () => {
  const admin = dashboard(DEV);
  await connected(admin);
  const [first] = await waitFor(admin, "server_stats", (s) => s.serverId === "rust-dev");
  const t0 = Date.now();
  const client = open(DEV, "/chat", { transports: ["websocket"] });
  await connected(client);
  client.emit("ping-me", "x".repeat(100));
  const [second] = await waitFor(admin, "server_stats", (s) => s.serverId === "rust-dev");
  const gap = Date.now() - t0;
  assert.ok(gap > 1000 && gap < 3000, `stats ${gap} ms apart`);
  for (const s of [first, second]) {
    assert.equal(typeof s.hostname, "string");
    assert.equal(typeof s.pid, "number");
    assert.equal(typeof s.uptime, "number");
    assert.ok(s.clientsCount >= 1);
    assert.ok(s.pollingClientsCount >= 0 && s.pollingClientsCount <= s.clientsCount);
    assert.ok(s.namespaces.some((n) => n.name === "/admin" && n.socketsCount >= 1));
  }
  assert.ok(second.namespaces.some((n) => n.name === "/chat" && n.socketsCount >= 1));
  const count = (type) => second.aggregatedEvents.filter((e) => e.type === type).reduce((a, e) => a + e.count, 0);
  assert.ok(count("rawConnection") >= 1, JSON.stringify(second.aggregatedEvents));
  assert.ok(count("packetsIn") >= 1);
  assert.ok(count("bytesIn") >= 100);
  assert.ok(count("packetsOut") >= 1);
  for (const e of second.aggregatedEvents) assert.equal(e.timestamp % 1000, 0);
});

test("live events: connection, rooms, events in and out, upgrade, disconnection", async () => {
  const admin = dashboard(DEV);
  const listed = waitFor(admin, "all_sockets");
  await connected(admin);
  await listed;

  // The client's id is known only once it is connected: record, then look.
  const joins = [];
  admin.on("room_joined", (...args) => joins.push(args));
  const connects = [];
  admin.on("socket_connected", (...args) => connects.push(args));
  const client = open(DEV, "/", { auth: { rooms: ["live"] } });
  await connected(client);
  await until(() => connects.some(([s]) => s.id === client.id));
  const [socket, date] = connects.find(([s]) => s.id === client.id);
  assert.equal(socket.nsp, "/");
  assert.equal(socket.clientId, client.io.engine.id.slice(0, 12));
  assert.ok(socket.rooms.includes(client.id)); // "live" is joined after, by the connection handler
  assert.match(date, ISO);
  await until(() => joins.filter(([nsp, , id]) => nsp === "/" && id === client.id).length === 2);
  const rooms = joins.filter(([, , id]) => id === client.id);
  assert.deepEqual(rooms.map(([, room]) => room).sort(), [client.id, "live"].sort());
  rooms.forEach(([, , , at]) => assert.match(at, ISO));

  const updated = waitFor(admin, "socket_updated", (u) => u.id === client.id && u.transport === "websocket");
  await upgraded(client);
  assert.equal((await updated)[0].nsp, "/");

  // socket.data changes are reported (without the instrumentation's own _admin details).
  const changed = waitFor(admin, "socket_updated", (u) => u.id === client.id && u.data);
  client.emit("set-data", { user: "ann" });
  assert.deepEqual((await changed)[0], { id: client.id, nsp: "/", data: { user: "ann" } });

  const received = waitFor(admin, "event_received", (nsp, id, args) => id === client.id && args[0] === "hello");
  client.emit("hello", 1, { a: 2 });
  const [nsp, , args, at] = await received;
  assert.equal(nsp, "/");
  assert.deepEqual(args, ["hello", 1, { a: 2 }]);
  assert.match(at, ISO);

  // The dashboard's emit command reaches the socket, and is reported as sent.
  const sent = waitFor(admin, "event_sent", (nsp, id) => id === client.id);
  const greeted = waitFor(client, "greet");
  admin.emit("emit", "/", client.id, "greet", "x", 2);
  assert.deepEqual(await greeted, ["x", 2]);
  assert.deepEqual((await sent)[2], ["greet", "x", 2]);

  const cid = client.id; // undefined once disconnected
  const gone = waitFor(admin, "socket_disconnected", (nsp, id) => id === cid);
  client.disconnect();
  const [goneNsp, , reason, goneAt] = await gone;
  assert.equal(goneNsp, "/");
  assert.equal(reason, "client namespace disconnect");
  assert.match(goneAt, ISO);
});

test("commands act on exactly the selected sockets", async () => {
  const admin = dashboard(DEV);
  await connected(admin);
  const a = open(DEV, "/", { transports: ["websocket"] });
  const b = open(DEV, "/", { transports: ["websocket"] });
  await Promise.all([connected(a), connected(b)]);

  const joined = waitFor(admin, "room_joined", (nsp, room, id) => room === "vip" && id === a.id);
  admin.emit("join", "/", "vip", a.id);
  await joined;
  const toVip = waitFor(a, "news");
  const bGotIt = arrives(b, "news", 700);
  admin.emit("emit", "/", "vip", "news", "for vip");
  assert.deepEqual(await toVip, ["for vip"]);
  assert.equal(await bGotIt, false, "only the room's sockets");

  const left = waitFor(admin, "room_left", (nsp, room, id) => room === "vip" && id === a.id);
  admin.emit("leave", "/", "vip", a.id);
  await left;

  const aGone = waitFor(a, "disconnect");
  const aid = a.id;
  const reported = waitFor(admin, "socket_disconnected", (nsp, id) => id === aid);
  admin.emit("_disconnect", "/", false, a.id);
  assert.equal((await aGone)[0], "io server disconnect");
  assert.equal((await reported)[2], "server namespace disconnect");
  assert.equal(await arrives(b, "disconnect", 700), false, "the other socket stays");
  assert.ok(b.connected);

  // close = true ends the client's whole connection.
  const c = open(DEV, "/chat", { transports: ["websocket"] });
  await connected(c);
  const engineClosed = waitFor(c.io.engine, "close");
  admin.emit("_disconnect", "/chat", true, c.id);
  await engineClosed;
  assert.ok(b.connected);
});

test("read-only: no commands advertised and none obeyed", async () => {
  const client = open(READONLY, "/", { transports: ["websocket"] });
  await connected(client);
  const admin = dashboard(READONLY);
  const config = waitFor(admin, "config");
  await connected(admin);
  assert.deepEqual((await config)[0].supportedFeatures, ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
  const joined = arrives(admin, "room_joined", 800, (nsp, room) => room === "nope");
  admin.emit("join", "/", "nope", client.id);
  const kicked = arrives(client, "disconnect", 800);
  admin.emit("_disconnect", "/", false, client.id);
  assert.equal(await joined, false);
  assert.equal(await kicked, false);
  assert.ok(client.connected);
});

test("production mode: stats with traffic only, no sockets and no live events", async () => {
  const admin = dashboard(PROD);
  const config = waitFor(admin, "config");
  const all = arrives(admin, "all_sockets", 1000);
  await connected(admin);
  assert.deepEqual((await config)[0].supportedFeatures, ALL.filter((f) => f !== "ALL_EVENTS"));
  assert.equal(await all, false);
  const live = arrives(admin, "socket_connected", 1500);
  const counted = waitFor(admin, "server_stats", (s) => s.aggregatedEvents.some((e) => e.type === "rawConnection"), 5000);
  const client = open(PROD, "/", { transports: ["websocket"] });
  await connected(client);
  client.emit("hello");
  assert.equal(await live, false);
  const [stats] = await counted;
  assert.ok(stats.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1));
});
