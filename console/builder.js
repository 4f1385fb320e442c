// The rule builder: conditions on an attribute, a trait, an activity count or a
// first/last-seen time, each optionally negated and joined by and/or, written out as
// rule text (RULES.md) that the user then edits in the rule editor.

import { h, replace } from "./dom.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const UNITS = [["s", "seconds"], ["m", "minutes"], ["h", "hours"], ["d", "days"], ["w", "weeks"]];
const KINDS = [
  ["attribute", "attribute"],
  ["trait", "trait"],
  ["count", "activity count"],
  ["last_seen", "last seen"],
  ["first_seen", "first seen"],
];

/** Quotes a string literal of the rule language. */
export function quote(text) {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function activity(name) {
  return NAME.test(name) ? name : quote(name);
}

/** A trait value: numbers and booleans stay bare, anything else is a string. */
function traitValue(text) {
  return /^-?\d+(\.\d+)?$/.test(text) || text === "true" || text === "false" ? text : quote(text);
}

/** Writes one condition (the values of a row's controls) as rule text. */
export function conditionText(c) {
  let text;
  const list = (value, format) => `[${value.split(",").map((v) => format(v.trim())).join(", ")}]`;
  if (c.kind === "attribute" || c.kind === "trait") {
    const field = c.kind === "trait" ? `traits.${c.trait || "name"}` : c.attribute;
    const format = c.kind === "trait" ? traitValue : quote;
    text = c.op === "in" ? `${field} in ${list(c.value, format)}` : `${field} ${c.op} ${format(c.value)}`;
  } else if (c.kind === "count") {
    const windowText = c.amount ? `, ${c.amount}${c.unit}` : "";
    text = `count(${activity(c.activity || "page_viewed")}${windowText}) ${c.op} ${c.number || 0}`;
  } else {
    const of = c.activity ? activity(c.activity) : "";
    text = `${c.kind}(${of}) ${c.op} now - ${c.amount || 1}${c.unit}`;
  }
  return c.not ? `not (${text})` : text;
}

/** Joins conditions with their and/or (and binds tighter than or, as in the grammar). */
export function ruleText(conditions) {
  return conditions.map((c, i) => (i === 0 ? "" : ` ${c.join} `) + conditionText(c)).join("");
}

function select(label, name, options, value) {
  return h("label", { class: "field" }, h("span", {}, label),
    h("select", { name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function input(label, name, attrs = {}) {
  return h("label", { class: "field" }, h("span", {}, label), h("input", { name, ...attrs }));
}

const ops = (list) => list.map((o) => [o, o]);

/** The controls of one condition row for its kind. */
function kindControls(kind) {
  const span = (label, value) => [input(label, "amount", { type: "number", min: 1, inputmode: "numeric", value }),
    select("unit", "unit", UNITS, "d")];
  switch (kind) {
    case "attribute":
      return [select("attribute", "attribute", ops(["region", "country", "device_type"]), "region"),
        select("operator", "op", ops(["==", "!=", "in"]), "=="),
        input("value (in: a, b)", "value", { type: "text", value: "" })];
    case "trait":
      return [input("trait name", "trait", { type: "text", placeholder: "plan" }),
        select("operator", "op", ops(["==", "!=", "<", "<=", ">", ">=", "in"]), "=="),
        input("value", "value", { type: "text" })];
    case "count":
      return [input("activity", "activity", { type: "text", list: "activity-types", placeholder: "page_viewed" }),
        ...span("window (optional)", ""),
        select("operator", "op", ops(["==", "!=", "<", "<=", ">", ">="]), ">="),
        input("number", "number", { type: "number", min: 0, inputmode: "numeric", value: "1" })];
    default:
      return [input("activity (optional)", "activity", { type: "text", list: "activity-types", placeholder: "any" }),
        select("operator", "op", ops(["<", "<=", ">", ">="]), "<"),
        h("span", { class: "now" }, "now −"), ...span("amount", "7")];
  }
}

/**
 * Creates the builder. `activities` are suggested activity types; `onUse(text)` gets
 * the rule when the user asks to use it. Returns the element.
 */
export function ruleBuilder({ activities = [], onUse }) {
  const rows = h("ol", { class: "conditions" });
  const preview = h("output", { class: "code preview", "aria-live": "polite" });

  const read = () => Array.from(rows.children).map((row) => {
    const c = { kind: row.dataset.kind };
    for (const el of row.querySelectorAll("input, select")) c[el.name] = el.type === "checkbox" ? el.checked : el.value.trim();
    return c;
  });
  const update = () => replace(preview, rows.children.length ? ruleText(read()) : "(no condition yet)");

  const addRow = (kind) => {
    const n = rows.children.length;
    const row = h("li", { class: "condition", "data-kind": kind },
      n === 0 ? null : select("join with", "join", [["and", "and"], ["or", "or"]], "and"),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "not" }), " not"),
      h("span", { class: "kind" }, KINDS.find(([k]) => k === kind)[1]),
      kindControls(kind),
      h("button", { type: "button", class: "link", onclick: () => { row.remove(); fixJoins(); update(); } }, "Remove"));
    rows.append(row);
    update();
    const first = row.querySelector("select, input:not([type=checkbox])");
    if (first) first.focus();
  };
  const fixJoins = () => {
    const first = rows.firstElementChild;
    const join = first && first.querySelector("[name=join]");
    if (join) join.closest("label").remove();
  };
  rows.addEventListener("input", update);
  rows.addEventListener("change", update);

  const kind = select("condition on", "kind", KINDS, "attribute");
  return h("section", { class: "builder", "aria-labelledby": "builder-title" },
    h("h3", { id: "builder-title" }, "Rule builder"),
    h("datalist", { id: "activity-types" }, activities.map((a) => h("option", { value: a }))),
    rows,
    h("div", { class: "row" }, kind,
      h("button", { type: "button", onclick: () => addRow(kind.querySelector("select").value) }, "Add condition")),
    h("p", {}, "Rule: ", preview),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => rows.children.length && onUse(ruleText(read()), "replace") }, "Use as rule"),
      h("button", { type: "button", onclick: () => rows.children.length && onUse(ruleText(read()), "and") }, "Add to rule with and")));
}
