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

  it("ran without page errors", () => {
    // The refused join above logs nothing to the console; anything here is a bug in the page.
    assert.deepEqual(problems, []);
  });
});
