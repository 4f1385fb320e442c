// The live view: every membership change as it happens, activity types with counts,
// the cluster's nodes and their state, and the dev clock (read; set with --dev-clock).

import { api, get } from "./api.js";
import { h, replace, reportError, when, table } from "./dom.js";
import { liveSocket } from "./socket.js";

const FEED_MAX = 300;

function describeError(e) {
  return e.describe ? e.describe() : String(e);
}

/** Keeps `el` filled by `render(await fetcher())`, every `ms`; errors shown in place. */
function polled(el, fetcher, render, ms) {
  const load = async () => {
    try {
      replace(el, render(await fetcher()));
    } catch (e) {
      replace(el, h("p", { class: "bad" }, describeError(e)));
    }
  };
  load();
  const timer = setInterval(load, ms);
  return { load, stop: () => clearInterval(timer) };
}

function clockPanel() {
  const shown = h("p", { id: "clock-now", class: "stat" }, "…");
  const input = h("input", { id: "clock-input", name: "now", type: "text", placeholder: "2026-11-10T00:00:00Z", autocomplete: "off" });
  const result = h("p", { class: "form-error", role: "status" });
  let current = null;
  const form = h("form", { class: "row", hidden: true },
    h("label", { for: "clock-input" }, "Set to"), input,
    h("button", { type: "submit" }, "Set clock"),
    ...[["+1 hour", 3600e3], ["+1 day", 86400e3], ["+7 days", 7 * 86400e3]].map(([label, ms]) =>
      h("button", { type: "button", onclick: () => set(new Date(Date.parse(current) + ms).toISOString()) }, label)));

  const read = async () => {
    try {
      current = (await get("/api/v1/admin/clock")).now;
      shown.textContent = `Node clock: ${when(current)} (dev clock)`;
      form.hidden = false;
      if (!input.value) input.value = current;
    } catch (e) {
      form.hidden = true;
      shown.textContent = e.status === 404
        ? "The dev clock is off (start the node with --dev-clock to set it); the node uses the system clock."
        : `Cannot read the clock: ${describeError(e)}`;
    }
  };
  const set = async (now) => {
    result.textContent = "Setting…";
    try {
      const { data } = await api("POST", "/api/v1/admin/clock", { now });
      result.textContent = `Clock set to ${when(data.now)}; due timers have fired.`;
      input.value = data.now;
    } catch (e) {
      result.textContent = `Not set: ${describeError(e)}`;
      reportError(e);
    }
    read();
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    set(input.value.trim());
  });
  read();
  const timer = setInterval(read, 5000);
  return {
    stop: () => clearInterval(timer),
    element: h("section", { "aria-labelledby": "clock-title" }, h("h2", { id: "clock-title" }, "Clock"), shown, form, result),
  };
}

/** Reads `/api/v1/cluster` and whether this node answers `/readyz`. */
async function readCluster() {
  const c = await get("/api/v1/cluster");
  const ready = await fetch("/readyz").then((r) => r.ok, () => false);
  return { c, ready };
}

function changeItem(n, names) {
  const seg = (id) => h("a", { href: `#/segments/${id}` }, names.get(id) || `segment ${id}`);
  const list = (ids) => ids.flatMap((id, i) => (i ? [", ", seg(id)] : [seg(id)]));
  return h("li", {},
    h("time", { datetime: n.at }, when(n.at)), " ",
    h("a", { href: `#/users/${n.user_id}` }, `user ${n.user_id}`),
    n.in_segments.length ? [h("span", { class: "in" }, " entered "), list(n.in_segments)] : null,
    n.out_segments.length ? [h("span", { class: "out" }, " left "), list(n.out_segments)] : null,
    n.merged_into ? ` — merged into user ${n.merged_into}` : null);
}

/** `#/live` */
export function livePage(main) {
  const feed = h("ol", { id: "live-feed", class: "feed", reversed: true, "aria-live": "polite" });
  const state = h("span", { class: "live-state" });
  const activities = h("div", {});
  const cluster = h("div", {});
  const names = new Map();
  const clock = clockPanel();
  get("/api/v1/segments")
    .then(({ segments }) => segments.forEach((s) => names.set(s.id, s.name)))
    .catch(reportError);
  const socket = liveSocket("/api/v1/notifications/ws", (n) => {
    feed.prepend(changeItem(n, names));
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  }, (text, ok) => {
    state.textContent = text;
    state.className = `live-state ${ok ? "ok" : "bad"}`;
  });
  const acts = polled(activities, () => get("/api/v1/activities"), ({ activities: list }) =>
    table("Activity types", ["Activity", "Count", "Last at"], list.map((a) => [a.activity_type, a.count, when(a.last_at)]), "none yet"), 3000);
  const nodes = polled(cluster, readCluster, ({ c, ready }) => [
    h("p", { id: "node-ready" }, `This node (${c.node_id}): `, h("span", { class: `badge ${ready ? "ready" : "down"}` }, ready ? "ready" : "not ready")),
    table("Nodes", ["Node", "Address", "State"],
      c.nodes.map((n) => [n.id === c.node_id ? h("strong", {}, `${n.id} (this node)`) : n.id, n.addr,
        h("span", { class: `badge ${n.state}` }, n.state)]))], 5000);

  replace(main, h("h1", {}, "Live"),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "changes-title" },
        h("h2", { id: "changes-title" }, "Membership changes"),
        h("p", { class: "muted" }, "Every segment, newest first: ", state, " ",
          h("button", { type: "button", class: "link", onclick: () => feed.replaceChildren() }, "Clear")),
        feed),
      h("div", {},
        clock.element,
        h("section", { "aria-labelledby": "cluster-title" }, h("h2", { id: "cluster-title" }, "Cluster"), cluster),
        h("section", { "aria-labelledby": "activities-title" }, h("h2", { id: "activities-title" }, "Activities"), activities))));
  return () => {
    socket.close();
    clock.stop();
    acts.stop();
    nodes.stop();
  };
}
