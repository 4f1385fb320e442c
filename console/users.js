// User lookup, by identity (type + id) or by user_id: identities, attributes, traits,
// activities, segments and the merge log. A merged user's id is followed to its
// survivor, and the page says so.

import { api, get } from "./api.js";
import { h, replace, reportError, when, pairs, table } from "./dom.js";

const ID_TYPES = ["cookie", "email", "facebook", "device_id", "user_id"];

function lookupForms(params) {
  const idType = h("input", { id: "lookup-type", name: "idType", type: "text", list: "id-types", value: params.get("idType") || "cookie", required: true });
  const clientRefId = h("input", { id: "lookup-id", name: "clientRefId", type: "text", value: params.get("clientRefId") || "", required: true, autocomplete: "off" });
  const userId = h("input", { id: "lookup-user", name: "user_id", type: "number", min: 1, inputmode: "numeric", required: true });
  const byIdentity = (event) => {
    event.preventDefault();
    const q = new URLSearchParams({ idType: idType.value.trim(), clientRefId: clientRefId.value.trim() });
    location.hash = `#/users?${q}`;
  };
  const byUser = (event) => {
    event.preventDefault();
    location.hash = `#/users/${userId.value.trim()}`;
  };
  return h("div", { class: "columns lookup" },
    h("form", { onsubmit: byIdentity, "aria-labelledby": "by-identity" },
      h("h2", { id: "by-identity" }, "By identity"),
      h("datalist", { id: "id-types" }, ID_TYPES.map((t) => h("option", { value: t }))),
      h("label", { for: "lookup-type" }, "Identity type"), idType,
      h("label", { for: "lookup-id" }, "Identity"), clientRefId,
      h("button", { type: "submit" }, "Look up identity")),
    h("form", { onsubmit: byUser, "aria-labelledby": "by-user" },
      h("h2", { id: "by-user" }, "By user id"),
      h("label", { for: "lookup-user" }, "user_id"), userId,
      h("button", { type: "submit" }, "Look up user")));
}

function segmentLinks(ids, names) {
  if (!ids.length) return h("p", { class: "muted" }, "In no segment.");
  return h("ul", { class: "inline" }, ids.map((id) =>
    h("li", {}, h("a", { href: `#/segments/${id}` }, names.get(id) ? `${names.get(id)} (${id})` : `segment ${id}`))));
}

function mergeLog(log) {
  return [
    table("Merges that formed this user", ["At", "Survivor", "Absorbed", "Identity that linked them"],
      log.merges.map((m) => [when(m.at), m.survivor, h("a", { href: `#/users/${m.absorbed}` }, m.absorbed),
        m.identity ? `${m.identity.id_type}: ${m.identity.id}` : "—"]), "none"),
    table("Refused links", ["At", "Identity", "Reason", "Owner"],
      log.refused.map((r) => [when(r.at), `${r.id_type}: ${r.id}`, r.reason, r.owner ?? "—"]), "none"),
  ];
}

function userView(user, log, names, notice) {
  const activities = Object.entries(user.activities || {}).sort(([a], [b]) => a.localeCompare(b));
  return h("article", { class: "user", "aria-labelledby": "user-title" },
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    h("h2", { id: "user-title" }, `User ${user.user_id}`),
    h("p", { class: "muted" }, `First seen ${when(user.first_seen)} · last seen ${when(user.last_seen)}`),
    h("div", { class: "columns" },
      h("section", {}, h("h3", {}, "Identities"),
        table("Identities", ["Type", "Id"], user.identities.map((i) => [i.id_type, i.id]))),
      h("section", {}, h("h3", {}, "Attributes"), pairs(user.attributes),
        h("h3", {}, "Traits"), pairs(user.traits))),
    h("section", {}, h("h3", {}, "Activities"),
      table("Activities", ["Activity", "Count", "Last at"], activities.map(([type, a]) => [type, a.count, when(a.last_at)]))),
    h("section", {}, h("h3", {}, "Segments"), segmentLinks(user.segments, names)),
    h("section", {}, h("h3", {}, "Merge log"), mergeLog(log)));
}

async function segmentNames() {
  try {
    const { segments } = await get("/api/v1/segments");
    return new Map(segments.map((s) => [s.id, s.name]));
  } catch (e) {
    reportError(e);
    return new Map();
  }
}

/** Finds the user for the route: `#/users/ID` or `#/users?idType=&clientRefId=`. */
async function lookUp(userId, params) {
  if (userId !== undefined) {
    const answer = await api("GET", `/api/v1/users/${encodeURIComponent(userId)}`);
    const notice = answer.redirected
      ? `User ${userId} was merged into user ${answer.data.user_id}; showing user ${answer.data.user_id}.`
      : null;
    return { user: answer.data, notice };
  }
  const q = new URLSearchParams({ clientRefId: params.get("clientRefId"), idType: params.get("idType") || "cookie" });
  const user = await get(`/api/v1/users?${q}`);
  return { user, notice: `Identity ${q.get("idType")}: ${q.get("clientRefId")} belongs to user ${user.user_id}.` };
}

/** `#/users`, `#/users/ID`, `#/users?idType=T&clientRefId=ID` */
export function usersPage(main, userId, params) {
  const result = h("div", { id: "user-result", "aria-live": "polite" });
  replace(main, h("h1", {}, "Users"), lookupForms(params), result);
  if (userId === undefined && !params.get("clientRefId")) return () => {};
  replace(result, h("p", {}, "Looking up…"));
  (async () => {
    try {
      const { user, notice } = await lookUp(userId, params);
      const [log, names] = await Promise.all([get(`/api/v1/users/${user.user_id}/merges`), segmentNames()]);
      replace(result, userView(user, log, names, notice));
    } catch (e) {
      const text = e.status === 404 ? `Not found: ${e.message}` : `Lookup failed: ${e.describe ? e.describe() : e}`;
      replace(result, h("p", { class: "bad" }, text));
      if (e.status !== 404) reportError(e);
    }
  })();
  return () => {};
}
