// Shared helpers for the interop tests: connect with the official client and wait for events.
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";

export const URL = process.env.SIO_URL;
export const RECOVERY_URL = process.env.SIO_RECOVERY_URL;

if (!URL || !RECOVERY_URL) {
  throw new Error("SIO_URL and SIO_RECOVERY_URL must be set (cargo test starts the servers)");
}

// SIO_PARSER=msgpack: every client speaks socket.io-msgpack-parser (the servers do too).
const PARSER = process.env.SIO_PARSER === "msgpack" ? { parser: msgpackParser } : {};

const opened = [];

export function client(path = "/", opts = {}, base = URL) {
  const socket = io(base + path, { forceNew: true, reconnection: false, ...PARSER, ...opts });
  opened.push(socket);
  return socket;
}

export function once(emitter, event, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), timeoutMs);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args[0]);
    });
  });
}

export async function connected(path = "/", opts = {}, base = URL) {
  const socket = client(path, opts, base);
  await once(socket, "connect");
  return socket;
}

export function closeAll() {
  for (const socket of opened.splice(0)) socket.disconnect();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
