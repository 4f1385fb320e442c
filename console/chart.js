// Entries and exits per minute as a small inline SVG bar chart (no library): entries
// above the axis, exits below, one slot per minute of the node's clock (`at`).

import { h, replace } from "./dom.js";

const MINUTE = 60000;

/** Counts entries and exits per minute; `add(atMs, entered, left)` then `render(el)`. */
export class PerMinute {
  constructor(minutes = 30) {
    this.minutes = minutes;
    this.bins = new Map();
    this.latest = null;
  }

  add(atMs, entered, left) {
    const minute = Math.floor(atMs / MINUTE) * MINUTE;
    const bin = this.bins.get(minute) || { in: 0, out: 0 };
    bin.in += entered;
    bin.out += left;
    this.bins.set(minute, bin);
    this.latest = Math.max(this.latest ?? minute, minute);
  }

  /** Returns the shown minutes, oldest first, ending at the newest change seen. */
  window() {
    const end = this.latest ?? Math.floor(Date.now() / MINUTE) * MINUTE;
    const out = [];
    for (let i = this.minutes - 1; i >= 0; i--) {
      const minute = end - i * MINUTE;
      out.push({ minute, ...(this.bins.get(minute) || { in: 0, out: 0 }) });
    }
    return out;
  }

  render(el) {
    const slots = this.window();
    const max = Math.max(1, ...slots.map((s) => Math.max(s.in, s.out)));
    const width = 600;
    const half = 60;
    const slot = width / slots.length;
    const label = (ms) => new Date(ms).toISOString().slice(11, 16);
    const totalIn = slots.reduce((n, s) => n + s.in, 0);
    const totalOut = slots.reduce((n, s) => n + s.out, 0);
    const summary = `Entries and exits per minute, ${label(slots[0].minute)} to ${label(slots[slots.length - 1].minute)} UTC: ${totalIn} entries, ${totalOut} exits.`;
    const bars = slots.flatMap((s, i) => {
      const x = i * slot + 1;
      const title = `${label(s.minute)} UTC: ${s.in} in, ${s.out} out`;
      const hIn = (s.in / max) * (half - 4);
      const hOut = (s.out / max) * (half - 4);
      return [
        s.in ? h("rect", { class: "in", x, y: half - hIn, width: slot - 2, height: hIn }, h("title", {}, title)) : null,
        s.out ? h("rect", { class: "out", x, y: half, width: slot - 2, height: hOut }, h("title", {}, title)) : null,
      ];
    });
    replace(el,
      h("svg", { viewBox: `0 0 ${width} ${half * 2 + 16}`, role: "img", "aria-label": summary, class: "chart" },
        h("line", { x1: 0, x2: width, y1: half, y2: half, class: "axis" }),
        bars,
        h("text", { x: 0, y: half * 2 + 14, class: "tick" }, label(slots[0].minute)),
        h("text", { x: width, y: half * 2 + 14, class: "tick end" }, label(slots[slots.length - 1].minute)),
        h("text", { x: 4, y: 12, class: "tick" }, `max ${max}/min`)),
      h("p", { class: "legend" }, h("span", { class: "swatch in" }), " entries ",
        h("span", { class: "swatch out" }), " exits — ", h("span", { class: "totals" }, `${totalIn} in, ${totalOut} out`)));
  }
}
