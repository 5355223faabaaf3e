// Connection state recovery: same id, rooms kept, missed events replayed, middlewares skipped.
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { client, connected, once, closeAll, sleep, RECOVERY_URL } from "./helpers.mjs";

after(closeAll);

describe("connection state recovery", () => {
  it("restores the session and replays missed room messages", async () => {
    const a = client("/", { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 }, RECOVERY_URL);
    await once(a, "connect");
    assert.equal(a.recovered, false);
    const b = await connected("/", {}, RECOVERY_URL);
    await a.emitWithAck("join", "news");
    // One event with an offset, so that the client has something to recover from.
    const first = once(a, "room-msg");
    b.emit("to-room", { room: "news", msg: "one" });
    assert.equal((await first).msg, "one");
    const id = a.id;

    const gone = once(a, "disconnect");
    a.io.engine.close(); // the client calls this "forced close"; the server sees a transport close
    assert.equal(await gone, "forced close");
    b.emit("to-room", { room: "news", msg: "two" }); // missed while away
    await sleep(20);

    const replay = once(a, "room-msg");
    await once(a, "connect");
    assert.equal(a.recovered, true);
    assert.equal(a.id, id);
    assert.equal((await replay).msg, "two");
    // Rooms were restored too.
    const live = once(a, "room-msg");
    b.emit("to-room", { room: "news", msg: "three" });
    assert.equal((await live).msg, "three");
  });

  it("a client without any offset gets a fresh session", async () => {
    const a = client("/", { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 }, RECOVERY_URL);
    await once(a, "connect");
    const id = a.id;
    a.io.engine.close();
    await once(a, "connect");
    assert.equal(a.recovered, false);
    assert.notEqual(a.id, id);
  });
});
