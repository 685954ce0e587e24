// The public REST API, nothing else. The JWT lives in sessionStorage (gone with the tab) and
// travels in the Authorization header; only the WebSocket carries it in its query string.
// Endpoints are discovered from /openapi.json, so a section whose endpoint this server does
// not have shows as unavailable instead of producing 404s.

export const PREFIX = "/api/v1/messenger";
const TOKEN_KEY = "messenger.jwt";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

let routes = null;

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The JWT's claims, read without verifying (the server verifies; this is for display). */
export function claims(token = getToken()) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      [...atob(part)].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    const value = JSON.parse(json);
    return typeof value === "object" && value && typeof value.sub === "string" ? value : null;
  } catch {
    return null;
  }
}

export async function loadRoutes() {
  if (routes) return routes;
  const response = await fetch("/openapi.json");
  const spec = await response.json();
  routes = new Set();
  for (const [path, methods] of Object.entries(spec.paths || {})) {
    for (const method of Object.keys(methods)) routes.add(`${method.toUpperCase()} ${path}`);
  }
  return routes;
}

/** Does this server have the endpoint? `path` as in the contract, e.g. "/conversations/{id}/read". */
export function has(method, path) {
  if (!routes) return false;
  const wanted = (PREFIX + path).replace(/\{[^}]+\}/g, "{}");
  for (const route of routes) {
    const [m, p] = route.split(" ");
    if (m === method && p.replace(/\{[^}]+\}/g, "{}") === wanted) return true;
  }
  return false;
}

export async function api(method, path, { body, query, auth = true } = {}) {
  let url = PREFIX + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += "?" + qs;
  }
  const headers = {};
  if (auth) headers.Authorization = `Bearer ${getToken()}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("messenger:unauthorized"));
    throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : data);
  }
  return data;
}

export function describeError(error) {
  if (error instanceof ApiError) {
    const detail = Array.isArray(error.detail)
      ? error.detail.map((d) => d.msg || JSON.stringify(d)).join("; ")
      : error.detail;
    return `${error.status}: ${detail}`;
  }
  return String(error && error.message ? error.message : error);
}
