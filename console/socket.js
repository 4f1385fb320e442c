// A WebSocket to the API that reconnects with exponential backoff (0.5 s doubling to
// 30 s, with jitter) and reports its state, so a page shows when it is live.

import { apiKey } from "./api.js";

/**
 * Opens `path` (e.g. "/api/v1/notifications/ws?segments=1") with `?key=` when a key is
 * set. Calls `onMessage(parsedJson)` per message and `onState(text, live)` on changes.
 * Returns `{close()}`; closing stops reconnecting.
 */
export function liveSocket(path, onMessage, onState) {
  let socket = null;
  let delay = 500;
  let timer = null;
  let closed = false;

  const url = () => {
    const u = new URL(path, location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const key = apiKey();
    if (key) u.searchParams.set("key", key);
    return u.href;
  };

  const connect = () => {
    onState("connecting…", false);
    socket = new WebSocket(url());
    socket.onopen = () => {
      delay = 500;
      onState("live", true);
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        onState(`unreadable message: ${String(event.data).slice(0, 80)}`, true);
        return;
      }
      onMessage(message);
    };
    socket.onclose = (event) => {
      if (closed) return;
      const wait = Math.round(delay * (0.75 + Math.random() / 2));
      const why = event.reason ? ` (${event.code} ${event.reason})` : event.code === 1006 ? " (refused or dropped: check the key)" : ` (${event.code})`;
      onState(`disconnected${why}; reconnecting in ${(wait / 1000).toFixed(1)} s`, false);
      timer = setTimeout(connect, wait);
      delay = Math.min(delay * 2, 30000);
    };
  };

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close(1000, "page closed");
    },
  };
}
