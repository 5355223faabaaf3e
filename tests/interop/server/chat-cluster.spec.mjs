// Two socketio-server binaries on one Redis (SIO_ADAPTER: redis or redis-sharded), sharing
// the HS256 secret SIO_SECRET: the /chat app works across them. Started by
// crates/socketio-server/tests/cluster.rs with SIO_A_URL and SIO_B_URL.
import { it, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { jwt, now } from "./tokens.mjs";
import { once } from "../wait.mjs";

const [A, B, SECRET] = [process.env.SIO_A_URL, process.env.SIO_B_URL, process.env.SIO_SECRET];
const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

const token = (sub) => jwt({ sub, name: sub, exp: now() + 600 }, SECRET);

async function user(base, name) {
  const socket = io(`${base}/chat`, { forceNew: true, reconnection: false, auth: { token: token(name) } });
  opened.push(socket);
  await once(socket, "connect");
  return socket;
}

const settle = () => new Promise((r) => setTimeout(r, 150));

it("room messages and members span both servers", async () => {
  const alice = await user(A, "alice");
  const bob = await user(B, "bob");
  await alice.emitWithAck("join", "lobby");
  await bob.emitWithAck("join", "lobby");
  await settle();
  const toBob = once(bob, "message");
  assert.deepEqual(await alice.emitWithAck("message", { room: "lobby", text: "hi from A" }), { ok: true });
  assert.equal((await toBob).text, "hi from A");
  for (const asker of [alice, bob]) {
    const members = await asker.emitWithAck("members", "lobby");
    assert.deepEqual(members.map((u) => u.id).sort(), ["alice", "bob"]);
  }
});

it("a direct message reaches the user's sockets on every server, with their acks", async () => {
  const alice = await user(A, "alice");
  const carolHere = await user(A, "carol");
  const carolThere = await user(B, "carol");
  await settle();
  const got = [carolHere, carolThere].map(
    (s) => new Promise((resolve) => s.once("dm", (msg, ack) => { ack("read"); resolve(msg); })),
  );
  assert.deepEqual(await alice.emitWithAck("dm", { to: "carol", text: "psst" }), { ok: true, delivered: 2 });
  for (const msg of await Promise.all(got)) assert.equal(msg.text, "psst");
});
