// The official Admin UI dashboard (the @socket.io/admin-ui files our binary serves) in a real
// browser: Debian's chromium driven by playwright-core. Started by
// crates/socketio-server/tests/admin_browser.rs with:
//   UI_URL        the dashboard page, served by NODE2
//   NODE1, NODE2  two servers on one Redis (server ids node-1, node-2); the dashboard logs in
//                 to NODE1, another origin than the page (CORS with credentials)
//   READONLY      a third server, read-only, serving its own dashboard
//   CHROMIUM, SCREENSHOT_DIR
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";

const { UI_URL, NODE1, NODE2, READONLY, SCREENSHOT_DIR } = process.env;
const WAIT = { timeout: 10_000 };

let browser;
let page;
const problems = [];
const elsewhere = []; // requests to any host but this machine's servers
const clients = [];
const t = {}; // the test sockets

function open(base, nsp, opts) {
  const socket = io(base + nsp, { forceNew: true, reconnection: false, ...opts });
  clients.push(socket);
  return socket;
}

const once = (emitter, event, ms = 5000) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });

async function connected(socket) {
  if (!socket.connected) await once(socket, "connect");
}

async function token(base, user) {
  const response = await fetch(`${base}/dev/token?user=${user}`);
  return (await response.json()).token;
}

async function shot(name) {
  if (SCREENSHOT_DIR) await page.screenshot({ path: path.join(SCREENSHOT_DIR, `admin-${name}.png`) });
}

async function newPage(url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const p = await context.newPage();
  p.on("pageerror", (err) => problems.push(err.message));
  p.on("request", (req) => {
    if (!req.url().startsWith("http://127.0.0.1:")) elsewhere.push(req.url());
  });
  await p.goto(url);
  return p;
}

async function login(p, server, password) {
  await p.getByLabel("Server URL").fill(server);
  await p.getByLabel("Username").fill("admin");
  await p.getByLabel("Password").fill(password);
  await p.getByRole("button", { name: "Connect" }).click();
}

async function view(name) {
  await page.locator("nav").getByRole("link", { name }).click();
  await page.waitForURL(new RegExp(`#/${name.toLowerCase()}$`));
}

async function selectNamespace(nsp) {
  await until(async () => (await page.getByLabel("Select namespace").count()) === 1);
  await page.getByLabel("Select namespace").click({ force: true });
  await page.getByRole("option", { name: nsp, exact: true }).click();
}

// The first cell of every row of the main table, once `check` accepts them.
async function firstColumn(check) {
  let seen = [];
  const deadline = Date.now() + WAIT.timeout;
  while (Date.now() < deadline) {
    seen = await page.locator("main table tbody tr td:first-child").allInnerTexts();
    seen = seen.map((s) => s.trim()).filter((s) => s && s !== "No data available");
    if (check(seen)) return seen;
    await page.waitForTimeout(100);
  }
  throw new Error(`table never matched: ${JSON.stringify(seen)}`);
}

async function until(check) {
  const deadline = Date.now() + WAIT.timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await page.waitForTimeout(50);
  }
}

const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

// The socket's page, reached as a user would (a deep link renders before the dashboard knows
// the socket, and stays empty).
async function socketPage(socket, nsp = "/") {
  await view("Sockets");
  await selectNamespace(nsp);
  await page.locator("main").getByText(socket.id, { exact: true }).click();
  await page.getByText("Socket details").first().waitFor(WAIT);
}

const connectedBadge = () => page.locator("header").getByText("connected", { exact: true }).first();

const roomsCard = () => page.locator(".v-card").filter({ has: page.locator(".v-card__title", { hasText: /^Rooms$/ }) });

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  // Polling only, upgraded, WebSocket only, two namespaces, two nodes.
  t.a = open(NODE1, "/", { transports: ["polling"] });
  t.b = open(NODE1, "/", {});
  t.c = open(NODE1, "/chat", { transports: ["websocket"], auth: { token: await token(NODE1, "carol") } });
  t.d = open(NODE2, "/", { transports: ["websocket"] });
  await Promise.all(Object.values(t).map(connected));
  if (t.b.io.engine.transport.name !== "websocket") await once(t.b.io.engine, "upgrade");
  const [joined] = await new Promise((resolve) => t.c.emit("join", "lobby", (...args) => resolve(args)));
  assert.equal(joined.ok, true);
});

after(async () => {
  clients.forEach((s) => s.disconnect());
  await browser?.close();
});

describe("the official Admin UI against socketio-rs", () => {
  it("refuses a wrong password with 'Invalid credentials'", async () => {
    page = await newPage(UI_URL);
    await page.getByLabel("Password").waitFor(WAIT);
    assert.equal(await page.getByText("Invalid credentials").count(), 0);
    await login(page, NODE1, "wrong");
    await page.getByText("Invalid credentials").waitFor(WAIT);
    await shot("invalid-credentials");
  });

  it("logs in across origins and lists both servers of the cluster", async () => {
    await login(page, NODE1, "changeit");
    await connectedBadge().waitFor(WAIT);
    await view("Servers");
    // Exactly these two (while the views switch, the old table may still be there).
    await firstColumn((ids) => sameSet(ids, ["node-1", "node-2"]));
    assert.equal(await page.locator("main").getByText("unhealthy", { exact: true }).count(), 0);
    await shot("servers");
  });

  it("shows exactly the test sockets, with their transports, in each namespace", async () => {
    await view("Sockets");
    const root = [t.a.id, t.b.id, t.d.id];
    await firstColumn((ids) => sameSet(ids, root));
    const transport = async (socket) => (await page.locator("tr", { hasText: socket.id }).innerText()).trim();
    assert.match(await transport(t.a), /HTTP long-polling/);
    assert.match(await transport(t.b), /WebSocket/);
    assert.match(await transport(t.d), /WebSocket/);
    await shot("sockets");
    await selectNamespace("/chat");
    await firstColumn((ids) => sameSet(ids, [t.c.id]));
  });

  it("shows every client, and the rooms of a namespace", async () => {
    await view("Clients");
    const ids = Object.values(t).map((s) => s.io.engine.id.slice(0, 12));
    // The test clients, and the dashboard's own connection.
    const listed = await firstColumn((seen) => seen.length === ids.length + 1 && ids.every((id) => seen.includes(id)));
    assert.ok(listed.every((id) => id.length === 12), JSON.stringify(listed));
    await shot("clients");
    await view("Rooms");
    await selectNamespace("/chat");
    await firstColumn((rooms) => rooms.includes("lobby"));
    const lobby = await page.locator("main tr", { hasText: "lobby" }).innerText();
    assert.match(lobby, /\b1\b/);
    await shot("rooms");
  });

  it("shows live events from both nodes", async () => {
    await view("Events");
    await selectNamespace("/");
    t.a.emit("hello-from-node-1", 1);
    t.d.emit("hello-from-node-2", 2);
    await page.getByText("Event name: hello-from-node-1").waitFor(WAIT);
    await page.getByText("Event name: hello-from-node-2").waitFor(WAIT);
    await shot("events");
  });

  it("makes a socket join a room and leave it, and a reload stays logged in", async () => {
    await socketPage(t.a);
    await page.getByLabel("Join a room").fill("vip");
    await page.locator("button:has(i.mdi-tag-plus-outline)").click();
    await roomsCard().getByText("vip", { exact: true }).waitFor(WAIT);
    await shot("joined");

    // A reload asks the server again (all_sockets), without the password.
    await page.reload();
    await connectedBadge().waitFor(WAIT);
    assert.equal(await page.getByLabel("Password").isVisible(), false, "no login dialog after a reload");
    await socketPage(t.a);
    await roomsCard().getByText("vip", { exact: true }).waitFor(WAIT);

    await roomsCard().locator("tr", { hasText: "vip" }).locator("button:has(i.mdi-tag-off-outline)").click();
    await roomsCard().getByText("vip", { exact: true }).waitFor({ state: "detached", ...WAIT });
    await page.reload();
    await connectedBadge().waitFor(WAIT);
    await socketPage(t.a);
    await roomsCard().getByText(t.a.id, { exact: true }).waitFor(WAIT);
    assert.equal(await roomsCard().getByText("vip", { exact: true }).count(), 0);
  });

  it("disconnects one socket of the other node, and only that one", async () => {
    const gone = once(t.d, "disconnect");
    await socketPage(t.d);
    const socketStatus = page.locator("tr", { hasText: "Status" }).last();
    // The icon font is served by our server: the button shows its icon.
    const icon = socketStatus.locator("i.mdi-logout");
    await page.waitForFunction((el) => document.fonts.check("24px 'Material Design Icons'") && el.getBoundingClientRect().width > 0, await icon.elementHandle());
    const family = await icon.evaluate((el) => getComputedStyle(el, "::before").fontFamily);
    assert.match(family, /Material Design Icons/);
    await socketStatus.locator("button:has(i.mdi-logout)").click();
    const [reason] = await gone;
    assert.equal(reason, "io server disconnect");
    await page.waitForTimeout(300);
    for (const s of [t.a, t.b, t.c]) assert.ok(s.connected, "the others stay connected");
    await shot("disconnected");
  });

  it("read-only mode shows no buttons and obeys no command", async () => {
    const r = open(READONLY, "/", { transports: ["websocket"] });
    await connected(r);
    page = await newPage(`${READONLY}/admin/`);
    await login(page, READONLY, "changeit");
    await connectedBadge().waitFor(WAIT);
    await socketPage(r);
    await roomsCard().getByText(r.id, { exact: true }).waitFor(WAIT);
    assert.equal(await page.locator("button:has(i.mdi-logout)").count(), 0, "no disconnect buttons");
    assert.equal(await page.locator("button:has(i.mdi-tag-off-outline)").count(), 0, "no leave buttons");
    // The dashboard keeps its join form; the server does not act on it.
    await page.getByLabel("Join a room").fill("vip");
    await page.locator("button:has(i.mdi-tag-plus-outline)").click();
    await page.waitForTimeout(800);
    assert.equal(await roomsCard().getByText("vip", { exact: true }).count(), 0);
    await shot("readonly");
  });

  it("raised no errors in the page, and asked no other host for anything", () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(elsewhere, []);
  });
});
