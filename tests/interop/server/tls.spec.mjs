// The binary over TLS with the official client: WSS and HTTPS long-polling against a
// certificate made at test time, then a certificate reload on SIGHUP that leaves open
// connections alone. Started by crates/socketio-server/tests/tls.rs with SIO_SERVER_URL
// (https://127.0.0.1:port), SIO_SECRET, SIO_SERVER_PID and CERT_DIR (cert.pem/key.pem served,
// cert2.pem/key2.pem the renewal; ca.pem trusts both).
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import tls from "node:tls";
import { io } from "socket.io-client";
import { jwt, now } from "./tokens.mjs";
import { once as onceWithin } from "../wait.mjs";

const { SIO_SERVER_URL: URL, SIO_SECRET: SECRET, SIO_SERVER_PID: PID, CERT_DIR } = process.env;
const CA = [fs.readFileSync(path.join(CERT_DIR, "cert.pem")), fs.readFileSync(path.join(CERT_DIR, "cert2.pem"))];
const opened = [];
after(() => opened.forEach((s) => s.disconnect()));

const token = (sub) => jwt({ sub, name: sub, exp: now() + 600 }, SECRET);
const once = (emitter, event, ms = 4000) => onceWithin(emitter, event, ms);

async function connect(user, transports) {
  const s = io(`${URL}/chat`, { forceNew: true, reconnection: false, transports, ca: CA, auth: { token: token(user) } });
  opened.push(s);
  await once(s, "connect");
  return s;
}

// The SHA-256 fingerprint of the certificate the server presents now.
function fingerprint() {
  const { hostname, port } = new globalThis.URL(URL);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca: CA, servername: "localhost" }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on("error", reject);
  });
}

const pemFingerprint = (file) => new crypto.X509Certificate(fs.readFileSync(path.join(CERT_DIR, file))).fingerprint256;

describe("TLS", () => {
  it("serves WSS", async () => {
    const s = await connect("wss-user", ["websocket"]);
    assert.equal(s.io.engine.transport.name, "websocket");
    assert.deepEqual(await s.emitWithAck("whoami"), { id: "wss-user", name: "wss-user" });
  });

  it("serves HTTPS long-polling, and the upgrade to WSS", async () => {
    const p = await connect("https-user", ["polling"]);
    assert.equal(p.io.engine.transport.name, "polling");
    assert.deepEqual(await p.emitWithAck("whoami"), { id: "https-user", name: "https-user" });
    const u = await connect("upgrader", ["polling", "websocket"]);
    if (u.io.engine.transport.name !== "websocket") await once(u.io.engine, "upgrade");
    assert.deepEqual(await u.emitWithAck("whoami"), { id: "upgrader", name: "upgrader" });
  });

  it("reloads the certificate on SIGHUP without dropping connections", async () => {
    assert.equal(await fingerprint(), pemFingerprint("cert.pem"));
    const kept = await connect("kept", ["websocket"]);
    const polling = await connect("kept-polling", ["polling"]);
    fs.copyFileSync(path.join(CERT_DIR, "cert2.pem"), path.join(CERT_DIR, "cert.pem"));
    fs.copyFileSync(path.join(CERT_DIR, "key2.pem"), path.join(CERT_DIR, "key.pem"));
    process.kill(Number(PID), "SIGHUP");
    const deadline = Date.now() + 3000;
    let now = await fingerprint();
    while (now !== pemFingerprint("cert2.pem") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      now = await fingerprint();
    }
    assert.equal(now, pemFingerprint("cert2.pem"), "new connections get the new certificate");
    assert.deepEqual(await kept.emitWithAck("whoami"), { id: "kept", name: "kept" });
    assert.deepEqual(await polling.emitWithAck("whoami"), { id: "kept-polling", name: "kept-polling" });
    const fresh = await connect("fresh", ["websocket"]);
    assert.ok(fresh.connected);
  });
});
