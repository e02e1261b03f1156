// The Console's one way to the API: the dashboard JWT (never an org key), the envelope unwrapped,
// and a 401 answered by asking the user to sign in again (a dialog over the page) and then retrying
// the same request, so nothing typed on the page is lost.
const TOKEN_KEY = 'verriflo.console.session';

let config = null;
let reloginHandler = null; // () => Promise<void>, resolves once signed in again
let pendingRelogin = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The API answered ${status}.`);
    this.status = status;
    this.code = body && body.error;
    this.body = body;
  }
}

export async function loadConfig() {
  if (!config) {
    const reply = await fetch('./config.json', { cache: 'no-cache' });
    if (!reply.ok) throw new Error('The Console has no config.json: publish it with console/publish.py.');
    config = await reply.json();
    config.apiUrl = String(config.apiUrl || '').replace(/\/$/, '');
  }
  return config;
}

export function getSession() {
  // read on every call: the tab's storage is the one place the session lives
  try { return JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null'); } catch { return null; }
}

function saveSession(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function onRelogin(handler) { reloginHandler = handler; }

export async function login(email, password) {
  const data = await request('POST', '/v1/auth/login', { email, password }, { anonymous: true });
  saveSession({ token: data.token, email, expiresAt: Date.now() + data.expiresIn * 1000 });
  return data;
}

export async function logout() {
  try {
    await request('POST', '/v1/auth/logout', undefined, { noRelogin: true });
  } catch (err) {
    // an API without the logout route (404) or an expired session (401): the session ends here anyway
    if (!(err instanceof ApiError)) throw err;
  } finally {
    saveSession(null);
  }
}

export function forgetSession() { saveSession(null); }

async function relogin() {
  if (!reloginHandler) throw new ApiError(401, { message: 'Your session has ended: sign in again.' });
  // several requests failing at once share one dialog
  pendingRelogin = pendingRelogin || reloginHandler().finally(() => { pendingRelogin = null; });
  return pendingRelogin;
}

/** One API call; resolves to the envelope's `data`, rejects with ApiError carrying its `message`. */
export async function request(method, path, body, opts = {}) {
  const reply = await send(method, path, body, opts);
  const text = await reply.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (!reply.ok || (parsed && parsed.success === false)) throw new ApiError(reply.status, parsed);
  return parsed ? parsed.data : null;
}

/** The raw Response of an authenticated call (for streams); a 401 still re-asks and retries. */
export async function send(method, path, body, opts = {}) {
  const { apiUrl } = await loadConfig();
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const current = getSession();
  if (!opts.anonymous && current) headers.Authorization = `Bearer ${current.token}`;
  let reply;
  try {
    reply = await fetch(apiUrl + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { message: 'The API cannot be reached: check your connection and try again.' });
  }
  if (reply.status === 401 && !opts.anonymous && !opts.noRelogin && !opts.retried) {
    await relogin();
    return send(method, path, body, { ...opts, retried: true });
  }
  return reply;
}

/** Reads an NDJSON answer line by line as it arrives, calling onEvent for each object. */
export async function readNdjson(reply, onEvent) {
  if (!reply.ok) {
    let parsed = null;
    try { parsed = await reply.json(); } catch { parsed = null; }
    throw new ApiError(reply.status, parsed);
  }
  const reader = reply.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
    let cut;
    while ((cut = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, cut).trim();
      buffered = buffered.slice(cut + 1);
      if (line) onEvent(JSON.parse(line));
    }
    if (done) break;
  }
  if (buffered.trim()) onEvent(JSON.parse(buffered));
}

/** PUT bytes to a presigned URL with upload progress (fetch has none); resolves to the ETag. */
export function putWithProgress(url, blob, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [k, v] of Object.entries(headers || {})) {
      // the browser sets these itself (and refuses them from scripts); the signature still holds
      if (!['content-length', 'host'].includes(k.toLowerCase())) xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve((xhr.getResponseHeader('ETag') || '').trim());
      else reject(new ApiError(xhr.status, { message: `The upload was refused (${xhr.status}).` }));
    };
    xhr.onerror = () => reject(new ApiError(0, { message: 'The upload failed: check your connection.' }));
    xhr.send(blob);
  });
}

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
