// The web console in headless chromium against the real server: the key, a segment
// built with the rule builder, a validation error at its line and column, the member
// count and live feed moving as events arrive, a user lookup (merges included), the
// live view, and the one-click examples with delete. Each page is saved as a screenshot.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, screenshot, KEYS } from "./harness.mjs";

let uss;
let browser;
let page;
const errors = [];

before(async () => {
  uss = await startServer("console");
  await uss.call("POST", "/api/v1/admin/clock", { now: "2026-11-01T00:00:00Z" });
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
});

after(async () => {
  await browser?.close();
  await uss?.stop();
});

const event = (id, fields) => ({ id, id_type: "cookie", created_at: "2026-10-31T12:00:00Z", payload: { activity_type: "page_viewed" }, ...fields });

test("without a key the API's 401 is shown; with the admin key the list loads", async () => {
  await page.goto(uss.url + "/");
  await page.locator("#errors").getByText(/401 unauthorized/).waitFor();
  await page.getByLabel("API key").fill(KEYS.admin);
  await page.getByRole("button", { name: "Use key" }).click();
  await page.getByText("No segment yet.").waitFor();
  assert.equal(await page.locator("#errors .error-item").count(), 0);
});

test("a segment is created through the rule builder", async () => {
  await page.getByRole("link", { name: "New segment" }).click();
  await page.getByLabel("Name", { exact: true }).fill("area_x_viewers");
  const builder = page.locator(".builder");
  await builder.getByLabel("condition on").selectOption("attribute");
  await builder.getByRole("button", { name: "Add condition" }).click();
  const first = builder.locator(".condition").nth(0);
  await first.getByLabel("attribute").selectOption("region");
  await first.getByLabel("operator").selectOption("==");
  await first.getByLabel(/^value/).fill("Area X");
  await builder.getByLabel("condition on").selectOption("count");
  await builder.getByRole("button", { name: "Add condition" }).click();
  const second = builder.locator(".condition").nth(1);
  await second.getByLabel("join with").selectOption("and");
  await second.getByLabel("activity").fill("page_viewed");
  await second.getByLabel("operator").selectOption(">=");
  await second.getByLabel("number").fill("2");
  const rule = 'region == "Area X" and count(page_viewed) >= 2';
  assert.equal(await builder.locator("output").textContent(), rule);
  await builder.getByRole("button", { name: "Use as rule" }).click();
  assert.equal(await page.getByLabel("Rule", { exact: true }).inputValue(), rule);
  await page.locator(".rule-status.ok").getByText("Valid rule").waitFor();
  await screenshot(page, "segment-form");
  await page.getByRole("button", { name: "Create segment" }).click();
  await page.getByRole("heading", { level: 1, name: "area_x_viewers" }).waitFor();
  assert.equal(await page.locator("pre.rule").textContent(), rule);
  const saved = await uss.call("GET", "/api/v1/segments/1");
  assert.equal(saved.rule, rule);
});

test("a validation error is marked at the server's line and column", async () => {
  await page.goto(uss.url + "/#/segments/new");
  const editor = page.getByLabel("Rule", { exact: true });
  await editor.fill('region == "Area X"\nand cnt(page_viewed) > 1');
  const error = page.locator(".rule-error");
  await error.waitFor();
  assert.match(await error.textContent(), /Line 2, column 5: unknown function "cnt".*count/);
  const mark = page.locator("pre.excerpt mark.at");
  assert.equal(await mark.getAttribute("data-line"), "2");
  assert.equal(await mark.getAttribute("data-column"), "5");
  assert.equal(await mark.textContent(), "c");
  assert.equal(await editor.getAttribute("aria-invalid"), "true");
  await page.getByRole("button", { name: "Go to problem" }).click();
  const selection = await editor.evaluate((t) => [t.selectionStart, t.selectionEnd]);
  assert.deepEqual(selection, [23, 24]);
  await screenshot(page, "validation-error");
  await editor.fill('region == "Area X"\nand count(page_viewed) > 1');
  await page.locator(".rule-status.ok").waitFor();
  assert.equal(await page.locator(".rule-error").count(), 0);
});

test("events sent through the API move the member count and the live feed", async () => {
  await page.goto(uss.url + "/#/segments/1");
  const count = page.locator("#member-count");
  await page.locator(".live-state.ok").waitFor();
  assert.equal(await count.textContent(), "0");
  await uss.call("POST", "/api/v1/events", [event("visitor-1", { region: "Area X" }), event("visitor-1", {})], "ingest");
  await page.locator("#segment-feed li.in").getByText(/user \d+ entered/).waitFor();
  await page.waitForFunction(() => document.querySelector("#member-count").textContent === "1");
  await page.locator(".chart-box .totals").getByText("1 in, 0 out").waitFor();
  await page.getByRole("button", { name: "Refresh" }).click();
  await page.locator("ul.members li").first().waitFor();
  await screenshot(page, "segment-page");
  await uss.call("POST", "/api/v1/events", event("visitor-1", { region: "Elsewhere", created_at: "2026-10-31T13:00:00Z" }), "ingest");
  await page.locator("#segment-feed li.out").getByText(/user \d+ left/).waitFor();
  await page.waitForFunction(() => document.querySelector("#member-count").textContent === "0");
  await page.locator(".chart-box .totals").getByText("1 in, 1 out").waitFor();
  await page.goto(uss.url + "/#/segments");
  await page.locator("td[data-count='1']").getByText("0").waitFor();
  await uss.call("POST", "/api/v1/events", event("visitor-1", { region: "Area X", created_at: "2026-10-31T14:00:00Z" }), "ingest");
  await page.locator("td[data-count='1']").getByText("1").waitFor();
  await screenshot(page, "segments");
});

test("a user is looked up by identity and by a merged user_id", async () => {
  await uss.call("POST", "/api/v1/events", event("shopper@example.com", { id_type: "email", traits: { plan: "pro" } }), "ingest");
  const merge = await uss.call("POST", "/api/v1/identify",
    { identities: [{ id_type: "cookie", id: "visitor-1" }, { id_type: "email", id: "shopper@example.com" }] }, "ingest");
  const [absorbed] = merge.merged;
  await page.getByRole("link", { name: "Users" }).click();
  await page.getByLabel("Identity type").fill("cookie");
  await page.getByLabel("Identity", { exact: true }).fill("visitor-1");
  await page.getByRole("button", { name: "Look up identity" }).click();
  const result = page.locator("#user-result");
  await result.getByRole("heading", { name: `User ${merge.user_id}` }).waitFor();
  await result.getByRole("cell", { name: "shopper@example.com", exact: true }).waitFor();
  await result.getByRole("cell", { name: "page_viewed" }).waitFor();
  await result.getByRole("link", { name: "area_x_viewers (1)" }).waitFor();
  await result.getByText('"pro"').waitFor();
  await result.getByRole("table", { name: "Merges that formed this user" }).getByRole("cell", { name: "email: shopper@example.com" }).waitFor();
  await page.getByLabel("user_id").fill(String(absorbed));
  await page.getByRole("button", { name: "Look up user" }).click();
  await result.getByText(`User ${absorbed} was merged into user ${merge.user_id}`).waitFor();
  await screenshot(page, "user");
  await page.getByLabel("user_id").fill("999");
  await page.getByRole("button", { name: "Look up user" }).click();
  await result.getByText(/Not found: user 999/).waitFor();
});

test("the live view shows changes, activities, the node and the dev clock", async () => {
  await page.getByRole("link", { name: "Live" }).click();
  await page.locator("#clock-now").getByText("2026-11-01 00:00:00 UTC").waitFor();
  await page.locator(".live-state.ok").waitFor();
  await page.getByRole("cell", { name: "page_viewed" }).waitFor();
  await page.locator("#node-ready").getByText("ready").waitFor();
  await page.getByRole("cell", { name: "n1 (this node)" }).waitFor();
  await uss.call("POST", "/api/v1/events", event("visitor-2", { region: "Area X", created_at: "2026-10-31T15:00:00Z" }), "ingest");
  await uss.call("POST", "/api/v1/events", event("visitor-2", { created_at: "2026-10-31T15:01:00Z" }), "ingest");
  await page.locator("#live-feed li").getByText(/entered area_x_viewers/).waitFor();
  await page.getByRole("button", { name: "+1 day" }).click();
  await page.locator("#clock-now").getByText("2026-11-02 00:00:00 UTC").waitFor();
  assert.equal((await uss.call("GET", "/api/v1/admin/clock", undefined, "read")).now, "2026-11-02T00:00:00.000Z");
  await page.getByLabel("Set to").fill("2026-10-01T00:00:00Z");
  await page.getByRole("button", { name: "Set clock" }).click();
  await page.getByText(/Not set: 409 clock_backwards/).waitFor();
  await screenshot(page, "live");
});

test("the live view's socket reconnects after the node restarts", async () => {
  await page.goto(uss.url + "/#/live");
  const state = page.locator("#changes-title + p .live-state");
  await state.getByText("live", { exact: true }).waitFor();
  await uss.restart(() => state.getByText(/disconnected.*reconnecting in/).waitFor());
  await state.getByText("live", { exact: true }).waitFor({ timeout: 30000 });
  await uss.call("POST", "/api/v1/events", [event("visitor-3", { region: "Area X", created_at: "2026-10-31T16:00:00Z" }),
    event("visitor-3", { created_at: "2026-10-31T16:01:00Z" })], "ingest");
  const { user_id: id } = await uss.call("GET", "/api/v1/users?clientRefId=visitor-3", undefined, "read");
  await page.locator("#live-feed li").getByText(`user ${id} entered area_x_viewers`).waitFor();
});

test("a one-click example is created, then deleted from the list", async () => {
  await page.goto(uss.url + "/#/segments/new");
  await page.getByRole("button", { name: "Example: mobile_10_views_inactive_7d" }).click();
  assert.equal(await page.getByLabel("Rule", { exact: true }).inputValue(),
    'device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d');
  await page.locator(".rule-status.ok").waitFor();
  await page.getByRole("button", { name: "Create segment" }).click();
  await page.getByRole("heading", { level: 1, name: "mobile_10_views_inactive_7d" }).waitFor();
  await page.getByRole("link", { name: "Segments", exact: true }).click();
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete mobile_10_views_inactive_7d" }).click();
  await page.getByRole("button", { name: "Delete mobile_10_views_inactive_7d" }).waitFor({ state: "detached" });
  const { segments } = await uss.call("GET", "/api/v1/segments");
  assert.deepEqual(segments.map((s) => s.name), ["area_x_viewers"]);
});

test("a segment is edited, and its members are paginated", async () => {
  await page.goto(uss.url + "/#/segments/1/edit");
  const description = page.getByLabel("Description (optional)");
  await page.waitForFunction(() => document.querySelector("#segment-name").value === "area_x_viewers");
  await description.fill("Area X visitors with two page views");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByText("Area X visitors with two page views").waitFor();
  assert.equal((await uss.call("GET", "/api/v1/segments/1")).description, "Area X visitors with two page views");
  const batch = [];
  for (let i = 0; i < 30; i++) {
    batch.push(event(`crowd-${i}`, { region: "Area X" }), event(`crowd-${i}`, {}));
  }
  await uss.call("POST", "/api/v1/events", batch, "ingest");
  const { count } = await uss.call("GET", "/api/v1/segments/1/count");
  await page.waitForFunction((n) => document.querySelector("#member-count").textContent === String(n), count);
  await page.getByRole("button", { name: "Refresh" }).click();
  await page.locator("ul.members li").nth(24).waitFor();
  assert.equal(await page.locator("ul.members li").count(), 25);
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("page 2").waitFor();
  assert.equal(await page.locator("ul.members li").count(), count - 25);
  assert.equal(await page.getByRole("button", { name: "Next page" }).isDisabled(), true);
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.getByText("page 1").waitFor();
  assert.equal(await page.locator("ul.members li").count(), 25);
});

test("the list reads at phone width, and no script error happened", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(uss.url + "/#/segments");
  await page.getByRole("link", { name: "area_x_viewers", exact: true }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
  await screenshot(page, "segments-phone");
  assert.deepEqual(errors, []);
});
