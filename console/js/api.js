// Every call to the admin API goes through here: it adds the bearer token and turns error answers
// (OpenAI-shaped: {"error":{"message","type","param","code"}}) into ApiError.

// sessionStorage: the token lives as long as this tab, is not sent by the browser on its own (no cookie),
// and is gone when the tab closes.
const TOKEN_KEY = 'lagoon.adminToken';
// Relative to the page (/console/), so the console also works under a path prefix.
const BASE = '../admin/v1/';

export class ApiError extends Error {
  constructor(status, message, { param = null, retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.param = param;
    this.retryAfter = retryAfter;
  }
}

let unauthorizedHandler = () => {};

export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

// Percent-encoded throughout (a space is %20): URLSearchParams would write "+", which the admin API, reading
// RFC 3986 query strings, takes as a plus sign.
export function query(params) {
  const parts = [];
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v != null && v !== '') parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

async function errorOf(response) {
  const text = await response.text().catch(() => '');
  let message = '';
  let param = null;
  try {
    const body = JSON.parse(text);
    message = body?.error?.message ?? '';
    param = body?.error?.param ?? null;
  } catch {
    message = text.trim().slice(0, 300);
  }
  return new ApiError(response.status, message || `The server answered HTTP ${response.status}.`, {
    param,
    retryAfter: response.headers.get('Retry-After'),
  });
}

// Resolves to the Response of a 2xx answer; rejects with ApiError otherwise (status 0: no answer at all).
export async function request(path, { method = 'GET', body, token = getToken() } = {}) {
  const headers = { Authorization: `Bearer ${token ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError(0, `Could not reach Lagoon (${err.message}).`);
  }
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401 && token === getToken()) unauthorizedHandler(error);
  throw error;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function sendJson(method, path, body) {
  return (await request(path, { method, body })).json();
}
