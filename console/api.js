// The API client: the key kept in localStorage, fetch with `Authorization: Bearer`,
// and the API's JSON errors turned into ApiError. Nothing here swallows an error.

const KEY_STORAGE = "uss.apiKey";

/** Returns the API key the user gave, or "" (an open node needs none). */
export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

/** Stores the API key ("" forgets it). */
export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** An answer of the API that is not a success, with its `{"error": {...}}` fields. */
export class ApiError extends Error {
  constructor(status, error, path) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_" + status;
    this.field = error.field;
    this.index = error.index;
    this.line = error.line;
    this.column = error.column;
    this.path = path;
  }

  /** Returns one line for a person: status, code, message, and what to do about a key. */
  describe() {
    const where = this.line ? ` (line ${this.line}, column ${this.column})` : "";
    const field = this.field ? ` [${this.field}]` : "";
    let text = `${this.status || "network"} ${this.code}: ${this.message}${field}${where}`;
    if (this.status === 401) text += " — enter an API key at the top of the page.";
    if (this.status === 403) text += " — this key's role may not do that.";
    return text;
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { code: "http_" + response.status, message: text.slice(0, 300) } };
  }
}

/**
 * Calls the API. Resolves with `{status, data, redirected, url}` for a 2xx answer
 * (redirects, such as a merged user's 301, are followed and flagged); rejects with an
 * ApiError otherwise, including when the server cannot be reached.
 */
export async function api(method, path, body, { signal } = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { code: "unreachable", message: `cannot reach the server (${e.message})` }, path);
  }
  const data = await readBody(response);
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || {}, path);
  }
  return { status: response.status, data, redirected: response.redirected, url: response.url };
}

/** Shortcut for `api("GET", path)` returning only the body. */
export async function get(path, options) {
  return (await api("GET", path, undefined, options)).data;
}
