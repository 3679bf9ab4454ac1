// api.js talks to the BFF and turns every failure into an ApiError with a human message.

/** ApiError is a failed HTTP exchange; status is 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** networkError is what a fetch that never got an answer becomes. */
export function networkError(who = 'The server') {
  return new ApiError(0, 'network_error', `${who} could not be reached. Check your connection and try again.`);
}

/**
 * bffOrigin reads <meta name="bff-origin">; empty means the SPA is served by the BFF itself.
 * A trailing slash is dropped so paths can be appended.
 * @param {Pick<Document, 'querySelector'> | null} [doc]
 */
export function bffOrigin(doc = globalThis.document) {
  const meta = doc?.querySelector?.('meta[name="bff-origin"]');
  return (meta?.getAttribute('content') ?? '').trim().replace(/\/+$/, '');
}

/** retryAfterSeconds parses a Retry-After header (delta seconds or an HTTP date). */
export function retryAfterSeconds(value, now = Date.now()) {
  const text = (value ?? '').trim();
  if (text === '') return null;
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * describeError reads the BFF envelope {"error":{"code","message"}} or Basiq's
 * {"data":[{"code","title","detail"}]}, falling back to a sentence about the status.
 */
export function describeError(body, status) {
  const fallback = { code: 'http_error', message: `The request failed (HTTP ${status}).` };
  const bff = body?.error;
  if (bff && typeof bff.message === 'string' && bff.message !== '') {
    return { code: String(bff.code ?? fallback.code), message: bff.message };
  }
  const item = Array.isArray(body?.data) ? body.data[0] : null;
  const text = item?.detail || item?.title;
  if (typeof text === 'string' && text !== '') {
    return { code: String(item.code ?? fallback.code), message: text };
  }
  return fallback;
}

/** errorFromResponse builds the ApiError for a non-2xx Response. */
export async function errorFromResponse(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's HTML page, an empty body): the status alone has to do.
  }
  const { code, message } = describeError(body, res.status);
  return new ApiError(res.status, code, message, retryAfterSeconds(res.headers.get('Retry-After')));
}

/**
 * createBff returns {get, post} for the BFF at origin ('' = same origin). Every request carries
 * X-CSRF: 1 (the BFF requires it on /auth/*, /client-token and /connect/*, and it is harmless
 * elsewhere) and the session cookie; answers are never cached. Resolves to the parsed JSON body
 * (null for 204), rejects with ApiError.
 */
export function createBff({ origin = bffOrigin(), fetchImpl = (...args) => fetch(...args) } = {}) {
  const credentials = origin === '' ? 'same-origin' : 'include';

  async function request(method, path, body) {
    const headers = { Accept: 'application/json', 'X-CSRF': '1' };
    const init = { method, headers, credentials, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetchImpl(origin + path, init);
    } catch {
      throw networkError();
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return null;
    try {
      return await res.json();
    } catch {
      throw new ApiError(res.status, 'bad_response', 'The server sent an answer this page could not read.');
    }
  }

  return {
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body),
  };
}
