// The one way the app speaks to its node: the node's JSON API, same origin, bearer token
// from sessionStorage only (never localStorage, a cookie or a URL: it moves money).

const TOKEN_KEY = "m2mpay.api-token";

/** An answer in the node's one error shape: {"error": {"code", "message", "field"}}. */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** No token, or the node refused it (401): the app sends the person to the login page. */
export class AuthError extends ApiError {
  constructor(message, code = "unauthorized") {
    super(401, code, message);
    this.name = "AuthError";
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const authListeners = new Set();
/** `fn()` when the token is missing or refused; returns the unsubscribe. */
export function onAuthLost(fn) {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}
function authLost() {
  token.clear();
  for (const fn of authListeners) fn();
}

// BigInt amounts leave as integer strings, the API's form; never as floats.
const toJson = (body) =>
  JSON.stringify(body, (_, value) => (typeof value === "bigint" ? value.toString() : value));

/**
 * `api(path, {method, body, bearer})`: the answer's JSON, or a thrown ApiError/AuthError.
 * Writes refuse to leave without a token. `bearer` overrides the stored token (login's check).
 */
export async function api(path, { method = "GET", body, bearer, signal } = {}) {
  const credential = bearer ?? token.get();
  const headers = { Accept: "application/json" };
  if (credential) headers.Authorization = `Bearer ${credential}`;
  if (method !== "GET" && !credential) {
    authLost();
    throw new AuthError("log in with the node's API token first", "no_token");
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(path, location.origin), {
      method,
      headers,
      body: body === undefined ? undefined : toJson(body),
      credentials: "omit",
      cache: "no-store",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "unreachable", "the node did not answer");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const shaped = data?.error ?? {};
  const message = shaped.message ?? `the node answered ${response.status}`;
  if (response.status === 401) {
    if (bearer === undefined) authLost();
    throw new AuthError(message, shaped.code);
  }
  throw new ApiError(response.status, shaped.code ?? `http_${response.status}`, message, shaped.field);
}

let info = null;
/** `/v1/info` (public), asked once a page load: who the node is, its token's decimals. */
export function nodeInfo() {
  info ??= api("/v1/info").catch((error) => {
    info = null;
    throw error;
  });
  return info;
}

/** The decimals of `asset` on this node: the native coin's 18, the deployment token's. */
export function decimalsOf(nodeInfoValue, asset) {
  const native = "0x0000000000000000000000000000000000000000";
  if (asset.toLowerCase() === native) return 18;
  if (asset.toLowerCase() === nodeInfoValue.contracts.token.toLowerCase()) {
    return nodeInfoValue.contracts.token_decimals;
  }
  return 0;
}

/** "1,234.5" for the integer string "1234500…" with `decimals`; BigInt throughout. */
export function formatAmount(raw, decimals) {
  const value = BigInt(raw);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** The integer string for a decimal amount typed by a person ("1.5" → "1500…"); throws. */
export function parseAmount(text, decimals) {
  const found = /^\s*(\d+)(?:\.(\d*))?\s*$/.exec(text.replaceAll(",", ""));
  if (!found) throw new RangeError("a number such as 1.5");
  const fraction = found[2] ?? "";
  if (fraction.length > decimals) throw new RangeError(`at most ${decimals} decimals`);
  return (BigInt(found[1] + fraction.padEnd(decimals, "0"))).toString();
}
