// Starts what the e2e tests drive: the real `uss` binary on a free port (with keys and
// cors_origins in a config file of its own), small origin servers for CORS pages, and
// headless Debian chromium through playwright-core with a fresh profile.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, createWriteStream, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "target", "e2e");
export const KEYS = { admin: "k_admin_e2e_0123456789", read: "k_read_e2e_0123456789", ingest: "k_ingest_e2e_0123456789" };
const BINARY = process.env.USS_BIN || join(ROOT, "target", "debug", "uss");

/** Returns a TCP port that is free now. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

async function waitReady(url, child, deadlineMs) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`uss exited with ${child.exitCode} before it was ready`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`uss was not ready at ${url} within ${deadlineMs} ms`);
}

/** Starts `uss serve --dev-clock` with keys and `corsOrigins`; returns `{url, call, restart, stop}`. */
export async function startServer(name, { corsOrigins = [] } = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "uss-e2e-"));
  const port = await freePort();
  const config = join(dir, "config.toml");
  const origins = corsOrigins.map((o) => JSON.stringify(o)).join(", ");
  writeFileSync(config, `[auth]
keys = [
  { name = "ops", key = "${KEYS.admin}", role = "admin" },
  { name = "crm", key = "${KEYS.read}", role = "read" },
  { name = "site", key = "${KEYS.ingest}", role = "ingest" },
]
cors_origins = [${origins}]
`);
  const log = createWriteStream(join(ARTIFACTS, `server-${name}.log`));
  const url = `http://127.0.0.1:${port}`;
  const launch = async () => {
    const process_ = spawn(BINARY, ["serve", "--dev-clock", "--bind", `127.0.0.1:${port}`, "--data-dir", join(dir, "data"), "--config", config],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info" } });
    process_.stdout.pipe(log, { end: false });
    process_.stderr.pipe(log, { end: false });
    await waitReady(url, process_, 30000);
    return process_;
  };
  let child = await launch();
  const kill = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  };

  /** Calls the API with a key of `role`; rejects on a non-2xx answer. */
  const call = async (method, path, body, role = "admin") => {
    const response = await fetch(url + path, {
      method,
      headers: { Authorization: `Bearer ${KEYS[role]}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  /** Stops the node (SIGTERM), runs `whileDown`, then starts it again on the same port and data. */
  const restart = async (whileDown = async () => {}) => {
    await kill();
    await whileDown();
    child = await launch();
  };
  const stop = async () => {
    await kill();
    log.end();
    rmSync(dir, { recursive: true, force: true });
  };
  return { url, port, call, restart, stop };
}

/** Serves the page `html()` at `/` on 127.0.0.1:`port`: another origin for CORS tests. */
export async function startOrigin(port, html) {
  const server = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(html());
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { origin: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => server.close(r)) };
}

/** Launches headless chromium with a fresh profile; returns the persistent context. */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "uss-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(15000);
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as target/e2e/NAME.png. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}
