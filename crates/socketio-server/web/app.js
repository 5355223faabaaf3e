// The demo page's client: signs in (a development token from /dev/token, or a pasted JWT),
// connects to /chat with the official Socket.IO client, and shows acknowledgements and errors.
"use strict";

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;

const state = {
  socket: null,
  user: null,
  rooms: [],
  current: null,
  typing: new Map(), // user name -> timer, for the current room
  lastTypingSent: 0,
};

const ACK_TIMEOUT_MS = 5000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text; // never innerHTML: every text is untrusted
  return node;
}

function time(iso) {
  const date = iso ? new Date(iso) : new Date();
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function showError(message, detail) {
  const item = el("li", "error");
  item.dataset.testid = "error";
  item.append(el("strong", "", message));
  if (detail) item.append(el("span", "", ` — ${detail}`));
  const close = el("button", "dismiss", "×");
  close.type = "button";
  close.title = "dismiss";
  close.onclick = () => item.remove();
  item.append(close);
  $("errors").append(item);
  setTimeout(() => item.remove(), 15000);
}

// The reason a failed handler gives: `{error: {message, data: {reason}}}` in an ack, or an
// `error` event with the same shape.
function reasonOf(err) {
  if (!err) return "";
  if (err.data && typeof err.data === "object") {
    return err.data.reason || err.data.code || JSON.stringify(err.data);
  }
  return "";
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = `status ${kind}`;
}

function logEntry({ kind, label, text, at, status }) {
  const item = el("li", `entry ${kind}`);
  item.dataset.testid = `entry-${kind}`;
  item.append(el("time", "", time(at)));
  item.append(el("span", "label", label));
  item.append(el("span", "text", text));
  const badge = el("span", "ack", status || "");
  badge.dataset.testid = "ack";
  item.append(badge);
  $("log").append(item);
  $("log").scrollTop = $("log").scrollHeight;
  return badge;
}

function notice(text) {
  const item = el("li", "entry notice", text);
  item.dataset.testid = "entry-notice";
  $("log").append(item);
}

// Sends with an acknowledgement; resolves to the server's answer, or throws with a readable message.
async function request(event, payload) {
  let answer;
  try {
    answer = await state.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  } catch {
    throw new Error(`no answer to '${event}' within ${ACK_TIMEOUT_MS / 1000} s`);
  }
  if (answer && answer.error) {
    const reason = reasonOf(answer.error);
    throw new Error(reason ? `${answer.error.message}: ${reason}` : answer.error.message);
  }
  return answer;
}

function renderRooms() {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of state.rooms) {
    const item = el("li", room === state.current ? "current" : "", `# ${room}`);
    item.dataset.testid = `room-${room}`;
    item.onclick = () => selectRoom(room);
    list.append(item);
  }
  $("text").placeholder = state.current ? `message to #${state.current}` : "join a room first";
  $("leave").disabled = !state.current;
}

function selectRoom(room) {
  state.current = room;
  state.typing.forEach((timer) => clearTimeout(timer));
  state.typing.clear();
  renderTyping();
  renderRooms();
  refreshMembers();
}

async function refreshMembers() {
  const room = state.current;
  $("members-room").textContent = room ? `in #${room}` : "";
  const list = $("members");
  if (!room) {
    list.replaceChildren();
    return;
  }
  try {
    const members = await request("members", room);
    if (room !== state.current) return;
    list.replaceChildren();
    for (const member of members) {
      const item = el("li", "", member.name || member.id);
      item.dataset.testid = `member-${member.id}`;
      if (member.id !== state.user.id) {
        item.title = "send a direct message";
        item.onclick = () => {
          $("dm-to").value = member.id;
          $("dm-text").focus();
        };
      }
      list.append(item);
    }
  } catch (err) {
    showError("Member list failed", err.message);
  }
}

function renderTyping() {
  const names = [...state.typing.keys()];
  $("typing").textContent =
    names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
}

async function token(name) {
  if (meta("dev-tokens") === "true") {
    const response = await fetch(`/dev/token?user=${encodeURIComponent(name)}`);
    if (!response.ok) throw new Error(`/dev/token answered ${response.status}`);
    return (await response.json()).token;
  }
  const pasted = $("token").value.trim();
  if (!pasted) throw new Error("this server needs a token signed with its key");
  return pasted;
}

async function signIn(event) {
  event.preventDefault();
  if (typeof io !== "function") {
    showError("Cannot sign in", "the Socket.IO client is missing from this server (see the README)");
    return;
  }
  const name = $("name").value.trim();
  let jwt;
  try {
    jwt = await token(name);
  } catch (err) {
    showError("Sign-in failed", err.message);
    return;
  }
  connect(jwt);
}

function connect(jwt) {
  if (state.socket) state.socket.disconnect();
  setStatus("connecting…", "pending");
  const socket = io("/chat", { path: meta("socketio-path"), auth: { token: jwt } });
  state.socket = socket;

  socket.on("connect", async () => {
    setStatus(`connected (${socket.io.engine.transport.name})`, "on");
    socket.io.engine.once("upgrade", (transport) => setStatus(`connected (${transport.name})`, "on"));
    try {
      state.user = await request("whoami");
    } catch (err) {
      showError("whoami failed", err.message);
      return;
    }
    $("me").textContent = `signed in as ${state.user.name || state.user.id}`;
    $("me").dataset.user = state.user.id;
    $("signin").hidden = true;
    $("chat").hidden = false;
    // After a reconnection the server has forgotten this socket's rooms: join them again.
    for (const room of state.rooms) {
      request("join", room).catch((err) => showError(`Rejoining #${room} failed`, err.message));
    }
    refreshMembers();
  });

  socket.on("connect_error", (err) => {
    const code = err.data && err.data.code ? ` (${err.data.code})` : "";
    setStatus("not connected", "off");
    showError(`Connection refused: ${err.message}${code}`);
    if (!socket.active) {
      // Refused by the middleware: the client does not retry. Back to the sign-in form.
      $("signin").hidden = false;
      $("chat").hidden = true;
    }
  });

  socket.on("disconnect", (reason) => {
    setStatus(`disconnected: ${reason}`, "off");
    notice(`disconnected (${reason})${socket.active ? ", reconnecting…" : ""}`);
  });

  socket.on("error", (err) => {
    showError(err.message || "error", reasonOf(err));
  });

  socket.on("message", (msg) => {
    const mine = state.user && msg.from.id === state.user.id;
    if (mine) return; // our own copy is already in the log, with its ack
    logEntry({ kind: "room", label: `#${msg.room} ${msg.from.name || msg.from.id}`, text: msg.text, at: msg.at });
    if (state.typing.has(msg.from.name || msg.from.id)) {
      clearTimeout(state.typing.get(msg.from.name || msg.from.id));
      state.typing.delete(msg.from.name || msg.from.id);
      renderTyping();
    }
  });

  // A direct message is acknowledged: the sender sees how many of our sockets received it.
  socket.on("dm", (msg, ack) => {
    logEntry({ kind: "dm-in", label: `DM from ${msg.from.name || msg.from.id}`, text: msg.text, at: msg.at });
    if (typeof ack === "function") ack({ ok: true });
  });

  socket.on("user-joined", ({ room, user }) => {
    notice(`${user.name || user.id} joined #${room}`);
    if (room === state.current) refreshMembers();
  });

  socket.on("user-left", ({ room, user }) => {
    notice(`${user.name || user.id} left #${room}`);
    if (room === state.current) refreshMembers();
  });

  socket.on("typing", ({ room, user }) => {
    if (room !== state.current) return;
    const who = user.name || user.id;
    clearTimeout(state.typing.get(who));
    state.typing.set(who, setTimeout(() => {
      state.typing.delete(who);
      renderTyping();
    }, 3000));
    renderTyping();
  });
}

async function joinRoom(event) {
  event.preventDefault();
  const room = $("room").value.trim();
  try {
    await request("join", room);
  } catch (err) {
    showError(`Joining #${room} failed`, err.message);
    return;
  }
  $("room").value = "";
  if (!state.rooms.includes(room)) state.rooms.push(room);
  notice(`you joined #${room}`);
  selectRoom(room);
}

async function leaveRoom() {
  const room = state.current;
  if (!room) return;
  try {
    await request("leave", room);
  } catch (err) {
    showError(`Leaving #${room} failed`, err.message);
    return;
  }
  state.rooms = state.rooms.filter((r) => r !== room);
  notice(`you left #${room}`);
  selectRoom(state.rooms[0] || null);
}

async function sendMessage(event) {
  event.preventDefault();
  const text = $("text").value;
  const room = state.current;
  if (!room) {
    showError("No room", "join a room first");
    return;
  }
  $("text").value = "";
  const badge = logEntry({ kind: "room-out", label: `#${room} you`, text, status: "sending…" });
  try {
    await request("message", { room, text });
    badge.textContent = "✓ sent";
    badge.classList.add("ok");
  } catch (err) {
    badge.textContent = "✗ not sent";
    badge.classList.add("failed");
    showError("Message not sent", err.message);
  }
}

async function sendDirect(event) {
  event.preventDefault();
  const to = $("dm-to").value.trim();
  const text = $("dm-text").value;
  $("dm-text").value = "";
  const badge = logEntry({ kind: "dm-out", label: `DM to ${to}`, text, status: "sending…" });
  try {
    const { delivered } = await request("dm", { to, text });
    if (delivered > 0) {
      badge.textContent = `✓ delivered to ${delivered} ${delivered === 1 ? "device" : "devices"}`;
      badge.classList.add("ok");
    } else {
      badge.textContent = `✗ not delivered: ${to} is offline`;
      badge.classList.add("failed");
    }
  } catch (err) {
    badge.textContent = "✗ not sent";
    badge.classList.add("failed");
    showError("Direct message not sent", err.message);
  }
}

function typing() {
  const now = Date.now();
  if (!state.current || !state.socket || now - state.lastTypingSent < 1000) return;
  state.lastTypingSent = now;
  state.socket.volatile.emit("typing", { room: state.current });
}

if (meta("dev-tokens") !== "true") {
  $("token-field").hidden = false;
  $("token").required = true;
  $("signin-hint").textContent = "This server verifies tokens signed with its own key.";
} else {
  $("signin-hint").textContent = "Development mode: the server issues a token for the name you pick.";
}
if (typeof io !== "function") {
  // Say it plainly instead of hanging on "connecting…".
  setStatus("client missing", "off");
  $("signin-button").disabled = true;
  showError(
    "The Socket.IO client is missing",
    "this server was built without npm: install Node.js and npm, then run `cargo build` again",
  );
}
$("signin-form").addEventListener("submit", signIn);
$("join-form").addEventListener("submit", joinRoom);
$("message-form").addEventListener("submit", sendMessage);
$("dm-form").addEventListener("submit", sendDirect);
$("leave").addEventListener("click", leaveRoom);
$("text").addEventListener("input", typing);
renderRooms();
