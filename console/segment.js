// The segment page: its definition, live member count, members (paginated), the live
// feed of users entering and leaving it, and entries/exits per minute.

import { get } from "./api.js";
import { h, replace, reportError, when, coalesce } from "./dom.js";
import { liveSocket } from "./socket.js";
import { PerMinute } from "./chart.js";

const FEED_MAX = 200;

function membersPanel(id) {
  const list = h("div", {});
  const limit = h("select", { id: "members-limit", name: "limit" },
    [25, 100, 1000].map((n) => h("option", { value: n, selected: n === 25 }, n)));
  const position = h("span", { class: "muted" });
  const previous = h("button", { type: "button" }, "Previous page");
  const next = h("button", { type: "button" }, "Next page");
  const cursors = [null];
  let page = 0;
  let nextCursor = null;

  const load = async () => {
    const cursor = cursors[page];
    const query = `limit=${limit.value}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    try {
      const data = await get(`/api/v1/segments/${id}/members?${query}`);
      nextCursor = data.next_cursor;
      previous.disabled = page === 0;
      next.disabled = !nextCursor;
      position.textContent = `page ${page + 1}`;
      replace(list, data.members.length
        ? h("ul", { class: "members" }, data.members.map((u) => h("li", {}, h("a", { href: `#/users/${u}` }, `user ${u}`))))
        : h("p", { class: "muted" }, page === 0 ? "No member." : "No more members."));
    } catch (e) {
      replace(list, h("p", { class: "bad" }, `Cannot list members: ${e.describe ? e.describe() : e}`));
      reportError(e);
    }
  };
  previous.addEventListener("click", () => { page = Math.max(0, page - 1); load(); });
  next.addEventListener("click", () => { if (nextCursor) { cursors[page + 1] = nextCursor; page += 1; load(); } });
  limit.addEventListener("change", () => { cursors.length = 1; page = 0; load(); });
  const refresh = h("button", { type: "button", onclick: load }, "Refresh");
  load();
  return {
    load,
    element: h("section", { "aria-labelledby": "members-title" },
      h("h2", { id: "members-title" }, "Members"),
      h("div", { class: "row" }, h("label", { for: "members-limit" }, "Per page"), limit, previous, next, refresh, position),
      list),
  };
}

function feedItem(n, id) {
  const entered = n.in_segments.includes(id);
  const left = n.out_segments.includes(id);
  const what = entered ? "entered" : left ? (n.merged_into ? `left (merged into user ${n.merged_into})` : "left") : `merged into user ${n.merged_into}`;
  return h("li", { class: entered ? "in" : "out" },
    h("time", { datetime: n.at }, when(n.at)), " ",
    h("a", { href: `#/users/${n.user_id}` }, `user ${n.user_id}`), ` ${what}`);
}

/** `#/segments/ID` */
export function segmentPage(main, id) {
  const head = h("div", {}, h("p", {}, "Loading…"));
  const count = h("strong", { id: "member-count", "aria-live": "polite" }, "…");
  const status = h("span", { class: "badge" });
  const feed = h("ol", { class: "feed", id: "segment-feed", "aria-live": "polite", reversed: true });
  const feedState = h("span", { class: "live-state" });
  const chartBox = h("div", { class: "chart-box" });
  const chart = new PerMinute(30);
  const members = membersPanel(id);

  const loadSegment = async () => {
    try {
      const s = await get(`/api/v1/segments/${id}`);
      count.textContent = s.member_count;
      status.textContent = s.status;
      status.className = `badge ${s.status}`;
      replace(head,
        h("div", { class: "page-head" }, h("h1", {}, s.name),
          h("a", { class: "button", href: `#/segments/${id}/edit` }, "Edit")),
        s.description ? h("p", {}, s.description) : null,
        h("pre", { class: "code rule" }, s.rule),
        h("p", { class: "muted" }, `Segment ${s.id} · created ${when(s.created_at)} · updated ${when(s.updated_at)}`));
    } catch (e) {
      replace(head, h("p", { class: "bad" }, `Cannot read segment ${id}: ${e.describe ? e.describe() : e}`));
      reportError(e);
    }
  };
  const refresh = coalesce(loadSegment, 200);
  const socket = liveSocket(`/api/v1/notifications/ws?segments=${id}`, (n) => {
    feed.prepend(feedItem(n, id));
    while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
    chart.add(Date.parse(n.at), n.in_segments.length, n.out_segments.length);
    chart.render(chartBox);
    refresh();
  }, (text, ok) => {
    feedState.textContent = text;
    feedState.className = `live-state ${ok ? "ok" : "bad"}`;
  });
  const poll = setInterval(loadSegment, 5000);

  replace(main, head,
    h("p", { class: "stat" }, "Members: ", count, " ", status),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "feed-title" },
        h("h2", { id: "feed-title" }, "Live feed"),
        h("p", { class: "muted" }, "Users entering and leaving, newest first: ", feedState),
        feed),
      h("section", { "aria-labelledby": "chart-title" },
        h("h2", { id: "chart-title" }, "Entries and exits per minute"),
        h("p", { class: "muted" }, "Since this page opened, by the node's clock."),
        chartBox)),
    members.element);
  chart.render(chartBox);
  loadSegment();
  return () => {
    socket.close();
    clearInterval(poll);
    refresh.cancel();
  };
}
