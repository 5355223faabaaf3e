// Transports: polling only, WebSocket only, the upgrade, and reconnection after a server close.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { client, connected, once, closeAll } from "./helpers.mjs";

after(closeAll);

describe("transports", () => {
  it("polling only", async () => {
    const socket = await connected("/", { transports: ["polling"] });
    assert.equal((await socket.emitWithAck("whoami")).transport, "polling");
    assert.equal(await socket.emitWithAck("echo", "p"), "p");
  });

  it("websocket only", async () => {
    const socket = await connected("/", { transports: ["websocket"] });
    assert.equal((await socket.emitWithAck("whoami")).transport, "websocket");
  });

  it("upgrades from polling to websocket", async () => {
    const socket = client("/");
    const opened = once(socket.io, "open");
    await opened;
    assert.equal(socket.io.engine.transport.name, "polling");
    const upgraded = once(socket.io.engine, "upgrade");
    await once(socket, "connect");
    await upgraded;
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal((await socket.emitWithAck("whoami")).transport, "websocket");
    assert.equal(await socket.emitWithAck("echo", "after upgrade"), "after upgrade");
  });

  it("reconnects after the server closes the connection", async () => {
    const socket = client("/", { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    await once(socket, "connect");
    const firstId = socket.id;
    const reason = once(socket, "disconnect");
    socket.emit("kick");
    assert.equal(await reason, "transport close");
    await once(socket, "connect");
    assert.notEqual(socket.id, firstId);
    assert.equal(await socket.emitWithAck("echo", 1), 1);
  });

  it("a client namespace disconnect reaches the server and leaves other namespaces up", async () => {
    const main = await connected("/", { forceNew: true });
    const secure = main.io.socket("/secure", { auth: { token: "bob" } });
    secure.connect();
    await once(secure, "connect");
    secure.disconnect();
    assert.equal(await main.emitWithAck("echo", "ok"), "ok");
  });
});
