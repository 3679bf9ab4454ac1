// connect.js runs the two ways of connecting a bank:
// - API 3.0: ask the BFF for a Consent UI URL and go there; the person comes back to
//   /?connected=1 or /?connect_error=<code>.
// - API 2.0/2.1: the browser posts the bank login straight to Basiq with the client token (the BFF
//   never sees it), then polls the job Basiq returns.

import { ApiError, errorFromResponse, networkError } from './api.js';

export const POLL_INTERVAL_MS = 1_500;
/** Consecutive failed polls (network, 429, 5xx) tolerated before giving up on a job. */
export const MAX_POLL_FAILURES = 5;
/** About ten minutes of polling; a job still running then is left to finish on its own. */
export const MAX_POLLS = 400;

const CONNECT_ERRORS = {
  invalid_state: 'The connection link has expired or was already used. Please start again.',
  access_denied: 'The bank connection was cancelled.',
  consent_denied: 'The bank connection was cancelled.',
};

/** connectErrorMessage turns the code in ?connect_error= into a sentence. */
export function connectErrorMessage(code) {
  if (Object.hasOwn(CONNECT_ERRORS, code)) return CONNECT_ERRORS[code];
  // Only a plain code is echoed: the query string is attacker-controllable text.
  const suffix = /^[a-z0-9_-]{1,64}$/i.test(code) ? ` (${code})` : '';
  return `The bank connection did not complete${suffix}. Please try again.`;
}

/**
 * readReturn looks for the Consent UI return markers in a query string. It returns null when
 * there are none, else {ok, message, search} where search is the query string without them
 * (for history.replaceState).
 */
export function readReturn(search) {
  const params = new URLSearchParams(search);
  const connected = params.get('connected');
  const failed = params.get('connect_error');
  if (connected === null && failed === null) return null;
  params.delete('connected');
  params.delete('connect_error');
  const rest = params.toString();
  const result =
    failed !== null
      ? { ok: false, message: connectErrorMessage(failed) }
      : { ok: true, message: 'Your bank is connected.' };
  return { ...result, search: rest === '' ? '' : `?${rest}` };
}

/** consentUrl checks the BFF's answer before the page navigates to it. */
export function consentUrl(body) {
  let url;
  try {
    url = new URL(body?.url);
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new ApiError(0, 'bad_response', 'The server sent an unusable consent link.');
  }
  return url.href;
}

/** startConsent asks the BFF for the Consent UI URL and navigates there. */
export async function startConsent(bff, assign = (url) => globalThis.location.assign(url)) {
  assign(consentUrl(await bff.post('/connect/consent', {})));
}

/** connectionBody is Basiq's create-connection body; an empty security code is left out. */
export function connectionBody({ institution, loginId, password, securityCode }) {
  const body = { loginId, password };
  if (securityCode) body.securityCode = securityCode;
  body.institution = { id: institution };
  return body;
}

/**
 * jobProgress summarises a Basiq job: state is 'failed' as soon as one step failed (message says
 * why), 'success' when every step succeeded, else 'running'.
 */
export function jobProgress(job) {
  const steps = Array.isArray(job?.steps) ? job.steps : [];
  const failed = steps.find((step) => step?.status === 'failed');
  if (failed) {
    const why = failed.result?.detail || failed.result?.title;
    const message = why ? String(why) : `The step "${failed.title ?? 'unknown'}" failed.`;
    return { state: 'failed', steps, message };
  }
  if (steps.length > 0 && steps.every((step) => step?.status === 'success')) {
    return { state: 'success', steps };
  }
  return { state: 'running', steps };
}

function trimSlash(url) {
  return String(url).replace(/\/+$/, '');
}

/** delay waits ms, rejecting with the signal's reason if it is aborted first. */
export function delay(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(id);
      reject(signal.reason);
    };
    const id = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// basiqFetch calls Basiq with the client token, refreshing it once on 401/403. No cookies go to
// Basiq: it has no business with the BFF session.
function basiqFetch(keeper, url, { method = 'GET', body, signal } = {}) {
  return keeper.withToken(async (token) => {
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await fetch(url, { method, headers, body, signal, credentials: 'omit', cache: 'no-store' });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw networkError('Basiq');
    }
  });
}

/**
 * createConnection posts the bank login to Basiq and resolves to the job id. It rejects with an
 * ApiError carrying Basiq's own explanation.
 */
export async function createConnection({ apiUrl, userId, fields, keeper, signal }) {
  const url = `${trimSlash(apiUrl)}/users/${encodeURIComponent(userId)}/connections`;
  const body = JSON.stringify(connectionBody(fields));
  const res = await basiqFetch(keeper, url, { method: 'POST', body, signal });
  if (!res.ok) throw await errorFromResponse(res);
  let job = null;
  try {
    job = await res.json();
  } catch {
    // handled below
  }
  if (typeof job?.id !== 'string' || job.id === '') {
    throw new ApiError(res.status, 'bad_response', 'Basiq did not return a job to follow.');
  }
  return job.id;
}

/**
 * pollJob follows a Basiq job every interval ms, calling onProgress with each jobProgress, and
 * resolves to the final one ('success' or 'failed'). Brief trouble (network, 429, 5xx) is
 * retried; anything else rejects with an ApiError.
 */
export async function pollJob({
  apiUrl,
  jobId,
  keeper,
  signal,
  onProgress = () => {},
  interval = POLL_INTERVAL_MS,
}) {
  const url = `${trimSlash(apiUrl)}/jobs/${encodeURIComponent(jobId)}`;
  let failures = 0;
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (poll > 0) await delay(interval, signal);
    let job;
    try {
      const res = await basiqFetch(keeper, url, { signal });
      if (!res.ok) throw await errorFromResponse(res);
      job = await res.json();
    } catch (err) {
      const brief = err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500);
      if (signal?.aborted || !brief || ++failures >= MAX_POLL_FAILURES) throw err;
      continue;
    }
    failures = 0;
    const progress = jobProgress(job);
    onProgress(progress);
    if (progress.state !== 'running') return progress;
  }
  throw new ApiError(0, 'job_timeout', 'The bank is taking a long time. Check your connections again later.');
}
