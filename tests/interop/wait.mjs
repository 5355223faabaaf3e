// Waiting for events, shared by the specs that need no server URL of helpers.mjs.

// The arguments of the first `event` on `emitter` that satisfies `pred`, within `ms`.
export function waitFor(emitter, event, pred = () => true, ms = 4000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`timed out waiting for '${event}'`));
    }, ms);
    const listener = (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  });
}

// Resolves once `socket` is connected.
export const connected = (socket) => (socket.connected ? Promise.resolve() : waitFor(socket, "connect").then(() => {}));

// The first argument of the next `event` on `emitter`, within `ms`.
export const once = (emitter, event, ms = 3000) => waitFor(emitter, event, () => true, ms).then((args) => args[0]);
