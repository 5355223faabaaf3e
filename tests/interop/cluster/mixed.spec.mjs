// Two servers on one Redis, driven through the benchmark contract's cluster operations with
// the official client: A_URL / B_URL (named A_NAME / B_NAME) may be a Node server with the
// official adapter and a Rust server, or two Rust servers. Every check goes both ways.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";

const A = { url: process.env.A_URL, name: process.env.A_NAME };
const B = { url: process.env.B_URL, name: process.env.B_NAME };
if (!A.url || !B.url) throw new Error("A_URL and B_URL must be set (cargo test starts the servers)");

const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

function once(socket, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

async function nothing(socket, event, ms = 300) {
  let got = null;
  const listener = (...args) => (got = args);
  socket.on(event, listener);
  await new Promise((r) => setTimeout(r, ms));
  socket.off(event, listener);
  assert.equal(got, null, `unexpected '${event}' ${JSON.stringify(got)}`);
}

async function connect(server, transports = ["websocket"]) {
  const socket = io(server.url, { forceNew: true, reconnection: false, transports });
  opened.push(socket);
  await once(socket, "connect");
  return socket;
}

// In the sharded adapter's dynamic mode (Node's default) the first local member of a room makes
// its server subscribe to the room's channel in the background; a broadcast published in the
// first moments after that may miss the server, with Node's adapter as with ours.
const settle = () => new Promise((r) => setTimeout(r, 150));

test("both servers count the cluster", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  assert.equal(await a.emitWithAck("servers"), 2);
  assert.equal(await b.emitWithAck("servers"), 2);
});

test("room broadcasts reach the room on both servers, from either side", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  await a.emitWithAck("join", "room1");
  await b.emitWithAck("join", "room1");
  await settle();
  for (const [from, data] of [[a, "from-a"], [b, "from-b"]]) {
    const got = [once(a, "bcast"), once(b, "bcast")];
    from.emit("broadcast", { room: "room1", data });
    assert.deepEqual(await Promise.all(got), [[data], [data]]);
  }
});

test("except and local are honoured across servers", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  for (const [sender, here, there] of [[a, a, b], [b, b, a]]) {
    const got = once(here, "x");
    await sender.emitWithAck("emit", { event: "x", data: 1, except: [there.id] });
    assert.deepEqual(await got, [1]);
    await nothing(there, "x");
    const local = once(here, "loc");
    await sender.emitWithAck("emit", { event: "loc", data: 2, local: true });
    assert.deepEqual(await local, [2]);
    await nothing(there, "loc");
  }
});

test("binary payloads cross both ways", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  for (const [sender, receiver] of [[a, b], [b, a]]) {
    const got = once(receiver, "bin");
    await sender.emitWithAck("emit", { event: "bin", binary: true, rooms: [receiver.id] });
    const [data] = await got;
    assert.deepEqual([...new Uint8Array(data)], [1, 2, 3]);
  }
});

test("a broadcast with acks collects the clients of both servers", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  const room = "askers" + Math.random();
  a.on("question", (from, cb) => cb(`a<-${from}`));
  b.on("question", (from, cb) => cb(`b<-${from}`));
  await a.emitWithAck("join", room);
  await b.emitWithAck("join", room);
  assert.deepEqual(await a.emitWithAck("ask", room), { ok: [`a<-${A.name}`, `b<-${A.name}`] });
  assert.deepEqual(await b.emitWithAck("ask", room), { ok: [`a<-${B.name}`, `b<-${B.name}`] });
});

test("fetchSockets describes the other server's sockets", async () => {
  const [a, b] = [await connect(A), await connect(B, ["polling", "websocket"])];
  await b.emitWithAck("join", "described");
  for (const [asker, other, otherName] of [[a, b, B.name], [b, a, A.name]]) {
    const list = await asker.emitWithAck("details");
    const entry = list.find((s) => s.id === other.id);
    assert.ok(entry, `${other.id} missing from ${JSON.stringify(list)}`);
    assert.deepEqual(entry.data, { node: otherName });
    assert.equal(entry.eio, "4");
    assert.ok(entry.rooms.includes(other.id));
    const ids = await asker.emitWithAck("sockets");
    assert.ok(ids.includes(a.id) && ids.includes(b.id));
  }
  const described = (await a.emitWithAck("details")).find((s) => s.id === b.id);
  assert.ok(described.rooms.includes("described"));
});

test("socketsJoin, socketsLeave and disconnectSockets act on the other server", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  a.on("question", (_, cb) => cb("a"));
  b.on("question", (_, cb) => cb("b"));
  const vip = "vip" + Math.random();
  await a.emitWithAck("pull", { target: b.id, room: vip });
  await b.emitWithAck("pull", { target: a.id, room: vip });
  await settle();
  assert.deepEqual(await a.emitWithAck("ask", vip), { ok: ["a", "b"] });
  await b.emitWithAck("drop", { target: a.id, room: vip });
  await a.emitWithAck("drop", { target: b.id, room: vip });
  await settle();
  assert.deepEqual(await b.emitWithAck("ask", vip), { ok: [] });
  for (const [kickerServer, victimServer] of [[A, B], [B, A]]) {
    const [kicker, victim] = [await connect(kickerServer), await connect(victimServer)];
    const gone = once(victim, "disconnect");
    await kicker.emitWithAck("kick", victim.id);
    assert.equal((await gone)[0], "io server disconnect");
  }
});

test("serverSideEmit with acks reaches the other server, both ways", async () => {
  const [a, b] = [await connect(A), await connect(B)];
  const fromA = await a.emitWithAck("peers", { n: 1 });
  assert.deepEqual(fromA.ok.map((s) => JSON.parse(s)), [{ node: B.name, got: { n: 1 } }]);
  const fromB = await b.emitWithAck("peers", { n: 2 });
  assert.deepEqual(fromB.ok.map((s) => JSON.parse(s)), [{ node: A.name, got: { n: 2 } }]);
});

test("20 events from a client on one server arrive in order on the other", async () => {
  for (const [sender, receiver] of [[A, B], [B, A]]) {
    const [s, r] = [await connect(sender), await connect(receiver)];
    const room = "order" + Math.random();
    await r.emitWithAck("join", room);
    await settle();
    const got = [];
    const all = new Promise((resolve) => {
      r.on("bcast", (n) => {
        got.push(n);
        if (got.length === 20) resolve();
      });
    });
    for (let n = 0; n < 20; n++) s.emit("broadcast", { room, data: n });
    await Promise.race([all, new Promise((_, rej) => setTimeout(() => rej(new Error(`got ${got}`)), 3000))]);
    assert.deepEqual(got, [...Array(20).keys()]);
  }
});
