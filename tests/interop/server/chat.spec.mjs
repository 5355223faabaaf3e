// The socketio-server binary seen by the official client: JWT paths, the /chat demo events, and
// graceful shutdown. Started by crates/socketio-server/tests/interop.rs with SIO_SERVER_URL,
// SIO_SECRET (HS256, issuer "socketio-rs") and SIO_SERVER_PID set.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { jwt as signed, now } from "./tokens.mjs";
import { once } from "../wait.mjs";

const URL = process.env.SIO_SERVER_URL;
const SECRET = process.env.SIO_SECRET;
const PID = Number(process.env.SIO_SERVER_PID);
const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

const jwt = (claims, secret = SECRET) => signed({ iss: "socketio-rs", ...claims }, secret);
const token = (sub, name = sub) => jwt({ sub, name, exp: now() + 600 });

function chat(auth, opts = {}) {
  const socket = io(`${URL}/chat`, { forceNew: true, reconnection: false, auth, ...opts });
  opened.push(socket);
  return socket;
}

async function connected(user) {
  const socket = chat({ token: token(user) });
  await once(socket, "connect");
  return socket;
}

describe("JWT", () => {
  it("accepts a valid token and attaches the claims as the user", async () => {
    const s = await connected("alice");
    assert.deepEqual(await s.emitWithAck("whoami"), { id: "alice", name: "alice" });
  });

  const refused = [
    ["missing", {}, "No token provided", "NO_TOKEN"],
    ["expired", { token: jwt({ sub: "a", exp: now() - 120 }) }, "Token expired", "TOKEN_EXPIRED"],
    ["wrong signature", { token: jwt({ sub: "a", exp: now() + 60 }, "not-the-secret") }, "Invalid token", "BAD_SIGNATURE"],
    ["wrong issuer", { token: jwt({ sub: "a", exp: now() + 60, iss: "elsewhere" }) }, "Invalid token", "WRONG_ISSUER"],
  ];
  for (const [name, auth, message, code] of refused) {
    it(`refuses a ${name} token`, async () => {
      const err = await once(chat(auth), "connect_error");
      assert.equal(err.message, message);
      assert.equal(err.data.code, code);
    });
  }
});

describe("/chat demo", () => {
  it("rooms, room messages, members, typing", async () => {
    const alice = await connected("alice");
    const bob = await connected("bob");
    assert.deepEqual(await alice.emitWithAck("join", "lobby"), { ok: true, room: "lobby" });
    const joined = once(alice, "user-joined");
    assert.deepEqual(await bob.emitWithAck("join", "lobby"), { ok: true, room: "lobby" });
    assert.equal((await joined).user.id, "bob");

    const toBob = once(bob, "message");
    const toAlice = once(alice, "message");
    assert.deepEqual(await alice.emitWithAck("message", { room: "lobby", text: "hi all" }), { ok: true });
    for (const got of [await toBob, await toAlice]) {
      assert.equal(got.text, "hi all");
      assert.equal(got.from.id, "alice");
      assert.match(got.at, /^\d{4}-\d\d-\d\dT/);
    }

    const members = await alice.emitWithAck("members", "lobby");
    assert.deepEqual(members.map((u) => u.id).sort(), ["alice", "bob"]);

    const typing = once(bob, "typing");
    alice.emit("typing", { room: "lobby" });
    assert.equal((await typing).user.id, "alice");
  });

  it("a direct message reaches every socket of the user, with a delivery ack", async () => {
    const alice = await connected("alice");
    const carolPhone = await connected("carol");
    const carolLaptop = await connected("carol");
    const got = [carolPhone, carolLaptop].map(
      (s) => new Promise((resolve) => s.once("dm", (msg, ack) => { ack("read"); resolve(msg); })),
    );
    assert.deepEqual(await alice.emitWithAck("dm", { to: "carol", text: "psst" }), { ok: true, delivered: 2 });
    for (const msg of await Promise.all(got)) {
      assert.equal(msg.text, "psst");
      assert.equal(msg.from.id, "alice");
    }
    assert.deepEqual(await alice.emitWithAck("dm", { to: "nobody", text: "hello?" }), { ok: false, delivered: 0 });
  });

  it("invalid input gets an error with a reason, and the server keeps going", async () => {
    const alice = await connected("alice");
    const reply = await alice.emitWithAck("message", { room: "lobby", text: "not joined yet" });
    assert.equal(reply.error.message, "not in room");
    const errorEvent = once(alice, "error");
    alice.emit("message", { room: "lobby", text: "" });
    const err = await errorEvent;
    assert.equal(err.message, "invalid message");
    assert.match(err.data.reason, /characters/);
    const bad = await alice.emitWithAck("join", "");
    assert.equal(bad.error.message, "invalid room");
    assert.deepEqual(await alice.emitWithAck("whoami"), { id: "alice", name: "alice" });
  });
});

describe("rate limit", () => {
  it("refuses events past the per-socket limit with a reason, then recovers", async () => {
    // The binary's default: 20 events/s per socket, bursts of 40.
    const s = await connected("rusher");
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => s.timeout(3000).emitWithAck("whoami")),
    );
    const limited = answers.filter((a) => a.error);
    const served = answers.filter((a) => a.id === "rusher");
    assert.ok(served.length >= 40, `served ${served.length}`);
    assert.ok(limited.length >= 10, `limited ${limited.length}`);
    assert.equal(limited[0].error.message, "rate limited");
    assert.match(limited[0].error.data.reason, /more than 20 events per second/);
    assert.ok(limited[0].error.data.retry_after_ms > 0);
    // The connection stays, and the bucket refills.
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await s.emitWithAck("whoami"), { id: "rusher", name: "rusher" });
  });
});

describe("live token expiry", () => {
  // The server runs with auth.expiry_warning_ms = 1000.
  const expiring = (sub, secs) => jwt({ sub, name: sub, exp: now() + secs });

  it("warns, then disconnects when the token expires", async () => {
    const s = chat({ token: expiring("eve", 3) });
    // Subscribed up front: the expiry event and the DISCONNECT may arrive in one read.
    const warned = once(s, "token-expiring", 5000);
    const expiredEvent = once(s, "token-expired", 6000);
    const disconnected = once(s, "disconnect", 7000);
    await once(s, "connect");
    const start = Date.now();
    const warning = await warned;
    assert.ok(warning.in_ms > 0 && warning.in_ms <= 1000, JSON.stringify(warning));
    const expired = await expiredEvent;
    assert.equal(expired.message, "token expired");
    const reason = await disconnected;
    assert.equal(reason, "io server disconnect", "no automatic reconnection with the dead token");
    assert.ok(Date.now() - start < 4500, "promptly after exp");
    assert.equal(s.active, false);
  });

  it("a refreshed token extends the socket, which keeps its rooms", async () => {
    const s = chat({ token: expiring("fay", 3) });
    await once(s, "connect");
    await s.emitWithAck("join", "refreshers");
    const refreshed = await s.emitWithAck("refresh-token", expiring("fay", 600));
    assert.equal(refreshed.ok, true);
    assert.ok(refreshed.expires_at);
    await new Promise((r) => setTimeout(r, 3500));
    assert.ok(s.connected, "still connected after the first token's exp");
    const members = await s.emitWithAck("members", "refreshers");
    assert.deepEqual(members.map((m) => m.id), ["fay"]);
  });

  it("a bad refresh is refused and disconnects", async () => {
    const s = chat({ token: expiring("gus", 600) });
    await once(s, "connect");
    const gone = once(s, "disconnect", 3000);
    const answer = await s.emitWithAck("refresh-token", "not-a-jwt");
    assert.equal(answer.error.message, "Invalid token");
    assert.equal(await gone, "io server disconnect");
    const other = chat({ token: expiring("hal", 600) });
    await once(other, "connect");
    const stolen = await other.emitWithAck("refresh-token", expiring("somebody-else", 600));
    assert.equal(stolen.error.data.code, "OTHER_USER");
  });
});

describe("graceful shutdown", () => {
  it("keeps serving through the drain period, then disconnects", async () => {
    const alice = await connected("alice");
    // A polling-only client opens a new HTTP connection for every poll: the server must keep
    // accepting them while it drains.
    const bob = chat({ token: token("bob") }, { transports: ["polling"] });
    await once(bob, "connect");
    const reasons = [once(alice, "disconnect", 5000), once(bob, "disconnect", 5000)];
    const signalled = Date.now();
    process.kill(PID, "SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    // Still served during the drain, polling included, several times over.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await alice.emitWithAck("whoami"), { id: "alice", name: "alice" });
      assert.deepEqual(await bob.emitWithAck("whoami"), { id: "bob", name: "bob" });
      await new Promise((r) => setTimeout(r, 100));
    }
    // A new client is refused: the server is going away.
    const late = chat({ token: token("carol") }, { transports: ["polling"] });
    const refused = await once(late, "connect_error");
    assert.match(String(refused.message), /xhr poll error/);
    assert.deepEqual(await Promise.all(reasons), ["transport close", "transport close"]);
    assert.ok(Date.now() - signalled >= 700, "disconnected before the drain period ended");
  });
});
