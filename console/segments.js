// The segments pages: the list (name, rule, live member count, status; delete), and
// the create/edit form with the rule editor, the rule builder and the two examples.

import { api, get } from "./api.js";
import { h, replace, reportError, coalesce } from "./dom.js";
import { liveSocket } from "./socket.js";
import { ruleEditor } from "./editor.js";
import { ruleBuilder } from "./builder.js";

/** The original proof of concept's two segments. */
export const EXAMPLES = [
  {
    name: "area_x_no_purchase_30d",
    description: "Visitors from Area X with no purchase in the last 30 days",
    rule: 'region == "Area X" and count(product_purchased, 30d) == 0',
  },
  {
    name: "mobile_10_views_inactive_7d",
    description: "Mobile users with at least 10 page views, inactive for 7 days",
    rule: 'device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d',
  },
];

function segmentRow(s, reload) {
  const remove = async () => {
    if (!confirm(`Delete segment ${s.id} “${s.name}”? Its members leave it.`)) return;
    try {
      await api("DELETE", `/api/v1/segments/${s.id}`);
    } catch (e) {
      reportError(e);
    }
    reload();
  };
  return h("tr", { "data-segment": s.id },
    h("td", { "data-label": "Id" }, s.id),
    h("td", { "data-label": "Name" }, h("a", { href: `#/segments/${s.id}` }, s.name),
      s.description ? h("div", { class: "muted" }, s.description) : null),
    h("td", { "data-label": "Rule" }, h("code", { class: "rule" }, s.rule)),
    h("td", { class: "num", "data-label": "Members", "data-count": s.id }, s.member_count),
    h("td", { "data-label": "Status" }, h("span", { class: `badge ${s.status}` }, s.status)),
    h("td", { class: "actions", "data-label": "Actions" },
      h("a", { href: `#/segments/${s.id}/edit`, "aria-label": `Edit ${s.name}` }, "Edit"), " ",
      h("button", { type: "button", class: "danger", onclick: remove, "aria-label": `Delete ${s.name}` }, "Delete")));
}

/** `#/segments`: every segment, refreshed on each membership change and every 5 s. */
export function segmentsPage(main) {
  const body = h("div", {}, h("p", {}, "Loading segments…"));
  const live = h("span", { class: "live-state" });
  replace(main,
    h("div", { class: "page-head" },
      h("h1", {}, "Segments"),
      h("a", { class: "button", href: "#/segments/new" }, "New segment")),
    h("p", { class: "muted" }, "Member counts follow membership changes live: ", live),
    body);

  const load = async () => {
    try {
      const { segments } = await get("/api/v1/segments");
      if (!segments.length) {
        replace(body, h("p", {}, "No segment yet. ", h("a", { href: "#/segments/new" }, "Create one"),
          " — or start from one of the two examples there."));
        return;
      }
      replace(body, h("div", { class: "scroll" }, h("table", { class: "segments" },
        h("caption", {}, `${segments.length} segment${segments.length === 1 ? "" : "s"}`),
        h("thead", {}, h("tr", {}, ["Id", "Name", "Rule", "Members", "Status", "Actions"].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, segments.map((s) => segmentRow(s, load))))));
    } catch (e) {
      replace(body, h("p", { class: "bad" }, `Cannot list segments: ${e.describe ? e.describe() : e}`));
      reportError(e);
    }
  };
  const soon = coalesce(load, 300);
  const socket = liveSocket("/api/v1/notifications/ws", soon, (text, ok) => {
    live.textContent = text;
    live.className = `live-state ${ok ? "ok" : "bad"}`;
  });
  const poll = setInterval(load, 5000);
  load();
  return () => {
    socket.close();
    clearInterval(poll);
    soon.cancel();
  };
}

/** `#/segments/new` and `#/segments/ID/edit`: the form. */
export function segmentFormPage(main, id) {
  const editing = id !== undefined;
  const formError = h("div", { class: "form-error", role: "alert" });
  const name = h("input", { id: "segment-name", name: "name", type: "text", required: true, maxlength: 256, autocomplete: "off" });
  const description = h("input", { id: "segment-description", name: "description", type: "text", autocomplete: "off" });
  const save = h("button", { type: "submit", class: "primary" }, editing ? "Save changes" : "Create segment");
  const editor = ruleEditor({ id: "segment-rule", onState: (valid) => { save.dataset.valid = String(valid); } });
  const builderSlot = h("div", {});

  const useRule = (text, how) => {
    const current = editor.value().trim();
    editor.set(how === "and" && current ? `${current}\nand ${text}` : text);
    editor.textarea.focus();
  };
  const example = (ex) => h("button", {
    type: "button",
    onclick: () => { name.value = ex.name; description.value = ex.description; editor.set(ex.rule); },
  }, `Example: ${ex.name}`);

  const submit = async (event) => {
    event.preventDefault();
    replace(formError);
    const body = { name: name.value.trim(), rule: editor.value(), description: description.value.trim() || null };
    try {
      const { data } = editing
        ? await api("PUT", `/api/v1/segments/${id}`, body)
        : await api("POST", "/api/v1/segments", body);
      location.hash = `#/segments/${data.id}`;
    } catch (e) {
      replace(formError, e.describe ? e.describe() : String(e));
      if (e.code === "invalid_rule") editor.set(editor.value());
      (e.code === "name_taken" || e.field === "name" ? name : editor.textarea).focus();
    }
  };

  replace(main,
    h("h1", {}, editing ? `Edit segment ${id}` : "New segment"),
    editing ? null : h("div", { class: "row examples" }, h("span", {}, "One click: "), EXAMPLES.map(example)),
    h("form", { class: "segment-form", onsubmit: submit, novalidate: true },
      h("label", { for: "segment-name" }, "Name"), name,
      h("label", { for: "segment-description" }, "Description (optional)"), description,
      editor.element,
      builderSlot,
      formError,
      h("div", { class: "row" }, save, h("a", { href: editing ? `#/segments/${id}` : "#/segments" }, "Cancel"))));

  get("/api/v1/activities")
    .then(({ activities }) => activities.map((a) => a.activity_type))
    .catch((e) => { reportError(e); return []; })
    .then((activities) => replace(builderSlot, ruleBuilder({ activities, onUse: useRule })));
  if (editing) {
    get(`/api/v1/segments/${id}`).then((s) => {
      name.value = s.name;
      description.value = s.description || "";
      editor.set(s.rule);
    }).catch((e) => { replace(formError, e.describe()); reportError(e); });
  }
  name.focus();
  return () => {};
}
