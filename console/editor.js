// The rule editor: a textarea that asks the server (`POST /api/v1/segments/validate`)
// whether the rule is valid as the user types, and marks the first problem at the
// server's line and column (both counted in characters from 1) with its message.

import { api } from "./api.js";
import { h, replace, debounce } from "./dom.js";

/** Returns the UTF-16 offset in `text` of a 1-based (line, column) counted in characters. */
function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  const chars = Array.from(lines[line - 1] || "");
  return offset + chars.slice(0, column - 1).join("").length;
}

/** Builds the excerpt of the bad line with the character at `column` marked. */
function excerpt(text, line, column) {
  const chars = Array.from(text.split("\n")[line - 1] || "");
  const at = chars[column - 1];
  return h("pre", { class: "excerpt", "aria-hidden": "true" },
    h("span", { class: "gutter" }, `${line} | `),
    chars.slice(0, column - 1).join(""),
    h("mark", { class: "at", "data-line": line, "data-column": column }, at === undefined ? " " : at),
    chars.slice(column).join(""));
}

/**
 * Creates the editor. `onState(valid)` is called with true, false, or null (unknown).
 * Returns `{element, textarea, value(), set(text)}`.
 */
export function ruleEditor({ id, value = "", onState = () => {} }) {
  const status = h("div", { id: `${id}-status`, class: "rule-status", "aria-live": "polite" });
  const textarea = h("textarea", {
    id, name: "rule", rows: 4, spellcheck: "false", autocomplete: "off", required: true,
    "aria-describedby": `${id}-status ${id}-help`,
    class: "code",
  });
  textarea.value = value;
  let sequence = 0;
  let inflight = null;

  const show = (kind, ...children) => {
    status.className = `rule-status ${kind}`;
    replace(status, ...children);
  };

  const check = async () => {
    const rule = textarea.value;
    const mine = ++sequence;
    if (inflight) inflight.abort();
    if (!rule.trim()) {
      textarea.removeAttribute("aria-invalid");
      show("", "Write a rule, or build one below.");
      onState(null);
      return;
    }
    inflight = new AbortController();
    show("pending", "Checking…");
    try {
      await api("POST", "/api/v1/segments/validate", { rule }, { signal: inflight.signal });
      if (mine !== sequence) return;
      textarea.setAttribute("aria-invalid", "false");
      show("ok", "✓ Valid rule");
      onState(true);
    } catch (e) {
      if (e.name === "AbortError" || mine !== sequence) return;
      onState(e.code === "invalid_rule" ? false : null);
      if (e.code !== "invalid_rule") {
        show("bad", `Cannot check the rule: ${e.describe()}`);
        return;
      }
      textarea.setAttribute("aria-invalid", "true");
      const goTo = () => {
        const at = offsetOf(textarea.value, e.line, e.column);
        textarea.focus();
        textarea.setSelectionRange(at, at + 1);
      };
      show("bad",
        h("p", { class: "rule-error" },
          h("strong", {}, `✗ Line ${e.line}, column ${e.column}: `),
          h("span", { class: "rule-message" }, e.message), " ",
          h("button", { type: "button", class: "link", onclick: goTo }, "Go to problem")),
        excerpt(rule, e.line, e.column));
    }
  };
  const later = debounce(check, 250);
  textarea.addEventListener("input", later);

  const element = h("div", { class: "rule-editor" },
    h("label", { for: id }, "Rule"),
    h("span", { id: `${id}-help`, class: "hint" },
      " e.g. ", h("code", {}, 'region == "Area X" and count(product_purchased, 30d) == 0')),
    textarea, status);
  check();
  return {
    element,
    textarea,
    value: () => textarea.value,
    set(text) {
      textarea.value = text;
      later.cancel();
      check();
    },
  };
}
