// CORS in a real browser (issue #9): a page on an origin listed in `cors_origins` may
// call the API with an Authorization header (a preflighted request); a page on another
// origin is blocked by the browser.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, startOrigin, freePort, launchBrowser, KEYS } from "./harness.mjs";

let uss;
let allowed;
let other;
let browser;

/** A page whose script fetches the segments with a key and records what happened. */
const callingPage = (apiUrl) => () => `<!doctype html><meta charset="utf-8"><title>cors</title>
<script>
window.result = fetch(${JSON.stringify(apiUrl + "/api/v1/segments")}, {
  method: "GET",
  headers: { Authorization: "Bearer ${KEYS.read}" },
}).then(
  (r) => r.json().then((body) => ({ ok: true, status: r.status, body })),
  (e) => ({ ok: false, error: String(e) }),
);
</script>`;

before(async () => {
  const [allowedPort, otherPort] = [await freePort(), await freePort()];
  uss = await startServer("cors", { corsOrigins: [`http://127.0.0.1:${allowedPort}`] });
  allowed = await startOrigin(allowedPort, callingPage(uss.url));
  other = await startOrigin(otherPort, callingPage(uss.url));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await allowed?.stop();
  await other?.stop();
  await uss?.stop();
});

async function run(origin) {
  const page = await browser.context.newPage();
  const messages = [];
  page.on("console", (m) => messages.push(m.text()));
  await page.goto(origin + "/");
  const result = await page.evaluate(() => window.result);
  await page.close();
  return { result, messages };
}

test("a page on an allowed origin calls the API with a key (preflight answered)", async () => {
  const { result } = await run(allowed.origin);
  assert.equal(result.ok, true, `fetch failed: ${result.error}`);
  assert.equal(result.status, 200);
  assert.deepEqual(result.body, { segments: [] });
});

test("a page on an origin not in cors_origins is blocked by the browser", async () => {
  const { result, messages } = await run(other.origin);
  assert.equal(result.ok, false, "the browser let a disallowed origin read the API");
  assert.match(result.error, /Failed to fetch/);
  assert.ok(messages.some((m) => /CORS policy/.test(m)), `no CORS message in the console: ${messages.join(" | ")}`);
});
