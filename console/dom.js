// Small DOM helpers shared by the pages: element building, the global error list,
// and how times and durations read.

/**
 * Builds an element: `h("a", {href: "#/"}, "text", child)`. Attributes starting with
 * "on" are listeners; `null`/`false` attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "rect", "line", "text", "title", "g", "path"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.setAttribute("class", value);
    else if (name in el && !svg && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Shows an error in the page's alert list until dismissed (never swallowed). */
export function reportError(error) {
  if (error && error.name === "AbortError") return;
  const text = error && error.describe ? error.describe() : String(error && error.message || error);
  const list = document.getElementById("errors");
  const item = h("div", { class: "error-item" },
    h("span", {}, text),
    h("button", { type: "button", class: "link", onclick: () => item.remove(), "aria-label": "Dismiss error" }, "×"));
  list.append(item);
  while (list.children.length > 5) list.firstElementChild.remove();
  console.error(text);
}

/** Formats an RFC 3339 time (or null) for a person. */
export function when(value) {
  return value ? value.replace("T", " ").replace(/\.000Z$|Z$/, " UTC") : "—";
}

/** Builds a key/value description list from an object. */
export function pairs(object, empty = "none") {
  const keys = Object.keys(object || {});
  if (!keys.length) return h("p", { class: "muted" }, empty);
  return h("dl", { class: "pairs" }, keys.map((k) => [h("dt", {}, k), h("dd", {}, JSON.stringify(object[k]))]));
}

/** Builds a table with a caption, header cells and rows of cells. */
export function table(caption, headers, rows, empty = "none") {
  if (!rows.length) return h("p", { class: "muted" }, `${caption}: ${empty}`);
  return h("div", { class: "scroll" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))))));
}

/** Calls `fn` at most once per `ms`, after the last call. */
export function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}

/**
 * Calls `fn` once, `ms` after the first of a run of calls: unlike a debounce, a steady
 * stream of calls (a busy notification socket) still gets it called every `ms`.
 */
export function coalesce(fn, ms) {
  let timer = null;
  const call = () => {
    if (timer === null) timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
  call.cancel = () => { clearTimeout(timer); timer = null; };
  return call;
}
