// The demo page in a real browser: Debian's chromium driven by playwright-core, two browser
// contexts as two users. Started by crates/socketio-server/tests/browser.rs with SIO_SERVER_URL
// (a development-mode server, so the page gets its tokens from /dev/token), CHROMIUM and
// SCREENSHOT_DIR set.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";

const URL = process.env.SIO_SERVER_URL;
const SHOTS = process.env.SCREENSHOT_DIR;
const WAIT = { timeout: 10_000 };

let browser;
const pages = {};
const problems = []; // uncaught page errors and console errors, for every page

async function open(user) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.push(`${user}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`${user}: console: ${msg.text()}`);
  });
  await page.goto(URL);
  pages[user] = page;
  return page;
}

const byTestId = (page, id, text) =>
  text === undefined ? page.getByTestId(id) : page.getByTestId(id).filter({ hasText: text });

async function see(page, id, text) {
  await byTestId(page, id, text).first().waitFor(WAIT);
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  if (SHOTS) {
    for (const [user, page] of Object.entries(pages)) {
      await page.screenshot({ path: path.join(SHOTS, `chat-${user}.png`), fullPage: true });
    }
  }
  await browser?.close();
});

describe("demo page", () => {
  it("shows only the sign-in card before sign-in (no token box in development mode)", async () => {
    const page = await open("newcomer");
    await page.getByTestId("signin").waitFor(WAIT);
    // Boxes, not DOM state: a CSS rule must not bring back what `hidden` hides.
    assert.ok(await page.getByTestId("signin").boundingBox(), "the sign-in card is shown");
    assert.ok(await page.getByTestId("name").boundingBox());
    for (const hidden of ["#chat", "#token-field", "#errors", "[data-testid=join-button]", "[data-testid=send-button]"]) {
      assert.equal(await page.locator(hidden).boundingBox(), null, `${hidden} is not shown before sign-in`);
    }
    await page.context().close();
    delete pages.newcomer;
  });

  it("signs two users in with development tokens and upgrades to WebSocket", async () => {
    for (const user of ["alice", "bob"]) {
      const page = await open(user);
      await page.getByTestId("name").fill(user);
      await page.getByTestId("signin-button").click();
      await see(page, "me", `signed in as ${user}`);
      await see(page, "status", "connected (websocket)");
    }
  });

  it("joins a room and lists its members", async () => {
    const { alice, bob } = pages;
    for (const page of [alice, bob]) {
      await page.getByTestId("room").fill("lobby");
      await page.getByTestId("join-button").click();
      await see(page, "room-lobby");
    }
    await see(alice, "entry-notice", "bob joined #lobby");
    await see(alice, "member-bob");
    await see(bob, "member-alice");
  });

  it("shows typing and room messages, with the sender's ack", async () => {
    const { alice, bob } = pages;
    await bob.getByTestId("text").pressSequentially("hi al", { delay: 20 });
    await see(alice, "typing", "bob is typing");
    await bob.getByTestId("text").fill("hi alice, from bob");
    await bob.getByTestId("send-button").click();
    await see(alice, "entry-room", "hi alice, from bob");
    const own = byTestId(bob, "entry-room-out", "hi alice, from bob");
    await own.getByTestId("ack").filter({ hasText: "✓ sent" }).waitFor(WAIT);
  });

  it("delivers a direct message and shows the delivery ack", async () => {
    const { alice, bob } = pages;
    await alice.getByTestId("dm-to").fill("bob");
    await alice.getByTestId("dm-text").fill("a secret for bob");
    await alice.getByTestId("dm-button").click();
    await see(bob, "entry-dm-in", "a secret for bob");
    const sent = byTestId(alice, "entry-dm-out", "a secret for bob");
    await sent.getByTestId("ack").filter({ hasText: "✓ delivered to 1 device" }).waitFor(WAIT);

    await alice.getByTestId("dm-to").fill("carol");
    await alice.getByTestId("dm-text").fill("anyone there?");
    await alice.getByTestId("dm-button").click();
    const lost = byTestId(alice, "entry-dm-out", "anyone there?");
    await lost.getByTestId("ack").filter({ hasText: "not delivered: carol is offline" }).waitFor(WAIT);
  });

  it("shows the server's reason when an action is refused", async () => {
    const { alice } = pages;
    await alice.getByTestId("room").fill("user:bob");
    await alice.getByTestId("join-button").click();
    await see(alice, "error", "invalid room");
    assert.equal(await byTestId(alice, "room-user:bob").count(), 0);
  });

  it("refuses a message of spaces like an empty one", async () => {
    const { alice } = pages;
    const before = await byTestId(alice, "entry-room-out").count();
    await alice.getByTestId("text").fill("    ");
    await alice.getByTestId("send-button").click();
    await alice.waitForTimeout(300);
    assert.equal(await byTestId(alice, "entry-room-out").count(), before, "nothing sent, no empty entry");
    assert.equal(await alice.locator("#text:invalid").count(), 1);
  });

  it("keeps the ack badges visible next to an error card", async () => {
    const { alice } = pages;
    // Refused by the server (over 2,000 characters): an error card and a failed badge at once.
    await alice.getByTestId("text").fill("x".repeat(2100));
    await alice.getByTestId("send-button").click();
    await see(alice, "error", "Message not sent");
    const badge = byTestId(alice, "entry-room-out").last().getByTestId("ack").filter({ hasText: "✗ not sent" });
    await badge.waitFor(WAIT);
    const box = await badge.boundingBox();
    assert.ok(box && box.width > 0, "the badge is laid out");
    const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
    for (const card of await byTestId(alice, "error").all()) {
      const c = await card.boundingBox();
      assert.ok(!c || !overlaps(box, c), `an error card covers the badge: ${JSON.stringify({ box, c })}`);
    }
    // The badge is what the user sees at its centre, not something drawn over it.
    const onTop = await badge.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
    });
    assert.ok(onTop, "nothing is drawn over the badge");
  });

  it("gets large long-polling responses and the served scripts compressed, as from Node", async () => {
    // A second socket on alice's page, long-polling only: chromium sends Accept-Encoding, so a
    // room message of over 1 KB comes gzip-encoded; the browser decodes it for the client.
    const result = await pages.alice.evaluate(async () => {
      const { token } = await (await fetch("/dev/token?user=poller")).json();
      const path = document.querySelector('meta[name="socketio-path"]').content;
      const socket = io("/chat", { path, auth: { token }, transports: ["polling"], forceNew: true });
      await new Promise((resolve, reject) => {
        socket.on("connect", resolve);
        socket.on("connect_error", reject);
      });
      await socket.emitWithAck("join", "big");
      const text = "a long line of chat, ".repeat(70);
      const received = new Promise((resolve) => socket.on("message", (m) => resolve(m.text)));
      const ack = await socket.emitWithAck("message", { room: "big", text });
      const same = (await received) === text;
      socket.disconnect();
      const url = `${path}socket.io.min.js`;
      await (await fetch(url, { cache: "no-store" })).arrayBuffer();
      // Its timing entry is added once the body is in, a moment after.
      for (let i = 0; i < 50 && !performance.getEntriesByName(new URL(url, location.href).href).length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const entries = performance.getEntriesByType("resource");
      const compressed = (e) => e.encodedBodySize > 0 && e.encodedBodySize < e.decodedBodySize;
      const polls = entries.filter((e) => e.name.includes("transport=polling"));
      const script = entries.filter((e) => e.name.endsWith(url)).pop();
      // The page's own copy of the client, loaded with the page.
      const vendor = entries.filter((e) => e.name.endsWith("/vendor/socket.io.min.js")).pop();
      return {
        vendor: vendor && [vendor.encodedBodySize, vendor.decodedBodySize],
        ok: ack.ok,
        same,
        polls: polls.length,
        compressedPolls: polls.filter(compressed).length,
        script: script && [script.encodedBodySize, script.decodedBodySize],
      };
    });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(result.same, "the message arrived whole");
    assert.ok(result.compressedPolls >= 1, `no compressed poll: ${JSON.stringify(result)}`);
    assert.ok(result.script && result.script[0] * 2 < result.script[1], `client not compressed: ${JSON.stringify(result)}`);
    assert.ok(result.vendor && result.vendor[0] * 2 < result.vendor[1], `page's client not compressed: ${JSON.stringify(result)}`);
  });

  it("ran without page errors", () => {
    // The refused join above logs nothing to the console; anything here is a bug in the page.
    assert.deepEqual(problems, []);
  });
});
