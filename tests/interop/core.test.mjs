// Seed scenarios: auth, query, typed data, acks both ways, rooms, direct messages, errors, binary.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { client, connected, once, closeAll, sleep } from "./helpers.mjs";

after(closeAll);

describe("connection middleware", () => {
  it("accepts a valid token and attaches the user to the socket", async () => {
    const socket = await connected("/secure", { auth: { token: "alice" } });
    const me = await socket.emitWithAck("whoami");
    assert.equal(me.user, "alice");
    assert.equal(me.id, socket.id);
  });

  it("rejects a missing token with message and data", async () => {
    const socket = client("/secure");
    const err = await once(socket, "connect_error");
    assert.equal(err.message, "No token provided");
    assert.deepEqual(err.data, { code: "NO_TOKEN" });
  });

  it("rejects a bad token with message and data", async () => {
    const socket = client("/secure", { auth: { token: "bad" } });
    const err = await once(socket, "connect_error");
    assert.equal(err.message, "Invalid token");
    assert.deepEqual(err.data, { code: "INVALID_TOKEN" });
  });

  it("reads query fields of the handshake", async () => {
    const socket = await connected("/", { query: { tenant: "acme" } });
    const me = await socket.emitWithAck("whoami");
    assert.equal(me.tenant, "acme");
  });

  it("answers an unknown namespace with Invalid namespace", async () => {
    const socket = client("/nope");
    const err = await once(socket, "connect_error");
    assert.equal(err.message, "Invalid namespace");
  });
});

describe("acknowledgements", () => {
  it("client to server", async () => {
    const socket = await connected();
    assert.deepEqual(await socket.emitWithAck("echo", { a: [1, "2", null] }), { a: [1, "2", null] });
  });

  it("client to server with a timeout that expires", async () => {
    const socket = await connected();
    // `whoami` with an extra argument still answers; an event without a handler never does.
    await assert.rejects(socket.timeout(200).emitWithAck("no-such-event"), /operation has timed out/);
  });

  it("server to client, answered", async () => {
    const socket = await connected();
    socket.on("question", (n, cb) => cb(n + 1));
    socket.emit("ask", 1000);
    assert.deepEqual(await once(socket, "answer-result"), { ok: true, data: 43 });
  });

  it("server to client, timing out", async () => {
    const socket = await connected();
    socket.on("question", () => {});
    socket.emit("ask", 200);
    const result = await once(socket, "answer-result");
    assert.equal(result.ok, false);
    assert.match(result.error, /timed out/);
  });

  it("a burst of 5000 acked events all get their ack", async () => {
    const socket = await connected("/", { transports: ["websocket"] });
    const acks = await Promise.all(
      Array.from({ length: 5000 }, (_, i) => socket.timeout(20000).emitWithAck("echo", i)),
    );
    assert.equal(acks.length, 5000);
    acks.forEach((value, i) => assert.equal(value, i));
  });
});

describe("rooms and direct messages", () => {
  it("room messages reach members but not the sender or non-members", async () => {
    const [a, b, c] = await Promise.all([connected(), connected(), connected()]);
    assert.equal(await a.emitWithAck("join", "lobby"), "ok");
    assert.equal(await b.emitWithAck("join", "lobby"), "ok");
    let aGot = 0;
    let cGot = 0;
    a.on("room-msg", () => aGot++);
    c.on("room-msg", () => cGot++);
    const received = once(b, "room-msg");
    a.emit("to-room", { room: "lobby", msg: "hello" });
    assert.deepEqual(await received, { from: a.id, msg: "hello" });
    await sleep(100);
    assert.equal(aGot, 0);
    assert.equal(cGot, 0);
  });

  it("leaving a room stops its messages", async () => {
    const [a, b] = await Promise.all([connected(), connected()]);
    await b.emitWithAck("join", "tmp");
    await b.emitWithAck("leave", "tmp");
    let got = 0;
    b.on("room-msg", () => got++);
    a.emit("to-room", { room: "tmp", msg: "x" });
    await sleep(150);
    assert.equal(got, 0);
  });

  it("a direct message reaches one socket by id, with a delivery ack", async () => {
    const [a, b] = await Promise.all([connected(), connected()]);
    const received = once(b, "dm");
    assert.equal(await a.emitWithAck("dm", { to: b.id, msg: "psst" }), "delivered");
    assert.deepEqual(await received, { from: a.id, msg: "psst" });
  });

  it("a broadcast with acks collects one answer per room member", async () => {
    const [a, b, c] = await Promise.all([connected(), connected(), connected()]);
    for (const s of [b, c]) {
      await s.emitWithAck("join", "voters");
    }
    b.on("poll", (q, cb) => cb("yes"));
    c.on("poll", () => {}); // never answers
    const summary = await a.emitWithAck("room-ack", "voters");
    assert.deepEqual(summary, { complete: false, count: 1, missing: 1 });
    c.off("poll");
    c.on("poll", (q, cb) => cb("yes"));
    assert.deepEqual(await a.emitWithAck("room-ack", "voters"), { complete: true, count: 2 });
  });
});

describe("handler errors", () => {
  it("become an error event when no ack was asked", async () => {
    const socket = await connected();
    const errorEvent = once(socket, "error");
    socket.emit("fail");
    assert.deepEqual(await errorEvent, { message: "boom", data: { reason: "test" } });
  });

  it("become an error ack when an ack was asked", async () => {
    const socket = await connected();
    assert.deepEqual(await socket.emitWithAck("fail"), {
      error: { message: "boom", data: { reason: "test" } },
    });
  });

  it("invalid typed arguments are reported, valid ones work", async () => {
    const socket = await connected();
    const reply = await socket.emitWithAck("typed", "not a number");
    assert.match(reply.error.message, /invalid arguments/);
    assert.equal(await socket.emitWithAck("typed", 21), 42);
  });

  it("a panicking handler does not take the connection or server down", async () => {
    const socket = await connected();
    socket.emit("panic");
    assert.equal(await socket.emitWithAck("echo", "still here"), "still here");
    const other = await connected();
    assert.equal(await other.emitWithAck("echo", 1), 1);
  });
});

describe("binary", () => {
  for (const transports of [["polling"], ["websocket"]]) {
    it(`travels both ways (${transports[0]})`, async () => {
      const socket = await connected("/", { transports });
      const back = once(socket, "bin-back");
      const length = await socket.emitWithAck("bin", Buffer.from([1, 2, 3, 4, 5]));
      assert.equal(length, 5);
      assert.deepEqual([...(await back)], [5, 4, 3, 2, 1]);
    });
  }
});
