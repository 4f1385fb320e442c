// The console's entry point: the API key form and the hash router
// (#/segments, #/segments/new, #/segments/ID, #/segments/ID/edit, #/users[/ID], #/live).
// Each page renders into <main> and returns a cleanup that closes its sockets and timers.

import { apiKey, setApiKey } from "./api.js";
import { reportError } from "./dom.js";
import { segmentsPage, segmentFormPage } from "./segments.js";
import { segmentPage } from "./segment.js";
import { usersPage } from "./users.js";
import { livePage } from "./live.js";

const main = document.getElementById("main");
let cleanup = () => {};

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const params = new URLSearchParams(query);
  const [section = "segments", id, action] = parts;
  const number = id !== undefined && /^\d+$/.test(id) ? Number(id) : undefined;
  if (section === "segments" && id === "new") return [() => segmentFormPage(main), "segments"];
  if (section === "segments" && number !== undefined && action === "edit") return [() => segmentFormPage(main, number), "segments"];
  if (section === "segments" && number !== undefined) return [() => segmentPage(main, number), "segments"];
  if (section === "users") return [() => usersPage(main, number, params), "users"];
  if (section === "live") return [() => livePage(main), "live"];
  return [() => segmentsPage(main), "segments"];
}

function show() {
  cleanup();
  const [render, nav] = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    cleanup = render() || (() => {});
  } catch (e) {
    cleanup = () => {};
    reportError(e);
  }
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

const keyInput = document.getElementById("api-key");
keyInput.value = apiKey();
document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setApiKey(keyInput.value.trim());
  document.getElementById("errors").replaceChildren();
  show();
});
window.addEventListener("hashchange", show);
window.addEventListener("unhandledrejection", (event) => reportError(event.reason));
show();
