// connect.js runs the two ways of connecting a bank:
// - API 3.0: ask the BFF for a Consent UI URL and go there; the person comes back to
//   /?jobIds=<id>,<id> (none: they closed it) or /?connect_error=<code>, and the page follows
//   each job with the client token to tell the true outcome.
// - API 2.0/2.1: the browser posts the bank login straight to Basiq with the client token (the BFF
//   never sees it), then polls the job Basiq returns.

import { ApiError, errorFromResponse, networkError } from './api.js';

export const POLL_INTERVAL_MS = 1_500;
/** Consecutive failed polls (network, 429, 5xx) tolerated before giving up on a job. */
export const MAX_POLL_FAILURES = 5;
/** About ten minutes of polling; a job still running then is left to finish on its own. */
export const MAX_POLLS = 400;

/** The most job ids a return may carry; the BFF passes on no more either. */
export const MAX_JOB_IDS = 10;
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

const CONNECT_ERRORS = {
  invalid_state: 'The connection link has expired or was already used. Please start again.',
  invalid_jobs: 'Basiq sent back something this page could not read. Please check your connections and try again.',
  store_unavailable: 'The service was briefly unavailable when you came back. Please try again.',
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
 * there are none, else {search, ...} where search is the query string without them (for
 * history.replaceState) and the rest is one of:
 * - {ok: false, message}: ?connect_error=<code>;
 * - {jobIds: []}: the person came back without connecting anything (closed the Consent UI);
 * - {jobIds: [..]}: the jobs to follow.
 */
export function readReturn(search) {
  const params = new URLSearchParams(search);
  const jobs = params.get('jobIds');
  const failed = params.get('connect_error');
  if (jobs === null && failed === null) return null;
  params.delete('jobIds');
  params.delete('connect_error');
  const rest = params.toString();
  const out = { search: rest === '' ? '' : `?${rest}` };
  if (failed !== null) return { ...out, ok: false, message: connectErrorMessage(failed) };
  const ids = jobs.split(',').filter((id) => id !== '');
  if (ids.length > MAX_JOB_IDS || !ids.every((id) => JOB_ID.test(id))) {
    return { ...out, ok: false, message: connectErrorMessage('invalid_jobs') };
  }
  return { ...out, jobIds: [...new Set(ids)] };
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

/**
 * startConsent asks the BFF for the Consent UI URL and navigates there. options may name an
 * action (connect, manage, extend, update, reauthorise) and its institutionId or connectionId;
 * without an action the BFF picks the flow from the person's consents.
 */
export async function startConsent(bff, options = {}, assign = (url) => globalThis.location.assign(url)) {
  const body = {};
  for (const key of ['action', 'institutionId', 'connectionId']) {
    if (options[key]) body[key] = options[key];
  }
  assign(consentUrl(await bff.post('/connect/consent', body)));
}

/**
 * connectionBody is Basiq's create-connection body; an empty security code or secondary login
 * id is left out.
 */
export function connectionBody({ institution, loginId, password, securityCode, secondaryLoginId }) {
  const body = { loginId, password };
  if (securityCode) body.securityCode = securityCode;
  if (secondaryLoginId) body.secondaryLoginId = secondaryLoginId;
  body.institution = { id: institution };
  return body;
}

const CAPTIONS = ['loginIdCaption', 'passwordCaption', 'securityCodeCaption', 'secondaryLoginIdCaption'];

/**
 * readInstitutions keeps the usable entries of a GET /institutions answer: {id, name, and the
 * caption of each login field the bank asks for ('' when it does not ask)}, sorted by name.
 */
export function readInstitutions(body) {
  const list = Array.isArray(body?.data) ? body.data : [];
  const out = [];
  for (const item of list) {
    if (typeof item?.id !== 'string' || !JOB_ID.test(item.id)) continue;
    const inst = { id: item.id, name: typeof item.name === 'string' && item.name !== '' ? item.name : item.id };
    for (const key of CAPTIONS) inst[key] = typeof item[key] === 'string' ? item[key] : '';
    out.push(inst);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** loginFields says which login fields a bank asks for, and their labels. */
export function loginFields(inst) {
  return {
    loginId: inst?.loginIdCaption || 'Bank login ID',
    password: inst?.passwordCaption || 'Bank password',
    securityCode: inst?.securityCodeCaption || '',
    secondaryLoginId: inst?.secondaryLoginIdCaption || '',
  };
}

/** fetchInstitutions reads Basiq's bank list with the client token. */
export async function fetchInstitutions({ apiUrl, keeper, signal }) {
  const res = await basiqFetch(keeper, `${trimSlash(apiUrl)}/institutions`, { signal });
  if (!res.ok) throw await basiqError(res);
  try {
    return readInstitutions(await res.json());
  } catch {
    throw new ApiError(res.status, 'bad_response', 'Basiq sent a bank list this page could not read.');
  }
}

/**
 * mfaChallenge finds a step waiting on the bank's one-time code or question: an in-progress
 * step whose result is an mfa-challenge. It returns {prompt} or null.
 */
export function mfaChallenge(steps) {
  for (const step of steps ?? []) {
    if (step?.status !== 'in-progress') continue;
    if (step.result?.type === 'mfa-challenge' || step.title === 'mfa-challenge') {
      const r = step.result ?? {};
      const prompt = [r.label, r.question, r.detail, r.title].find((v) => typeof v === 'string' && v !== '');
      return { prompt: prompt ?? 'Enter the code your bank sent you.' };
    }
  }
  return null;
}

/** submitMfa posts the answer to the bank's challenge straight to Basiq, once. */
export async function submitMfa({ apiUrl, jobId, answer, keeper, signal }) {
  const url = `${trimSlash(apiUrl)}/jobs/${encodeURIComponent(jobId)}/mfa`;
  const res = await basiqFetch(keeper, url, { method: 'POST', body: JSON.stringify({ 'mfa-response': [answer] }), signal });
  if (!res.ok) throw await basiqError(res);
}

// Basiq's job step error codes in words a person can act on (Basiq's job and connection error
// documentation); anything else falls back to Basiq's own detail.
const STEP_FAILURES = {
  'invalid-credentials': 'The bank did not accept the login details. Check them and try again.',
  'account-locked': 'The bank has locked this account. Unlock it with your bank, then try again.',
  'user-action-required': 'Your bank needs you to do something in its own app or website first, then try again.',
  'institution-not-available': 'The bank is not available right now. Please try again later.',
  maintenance: 'The bank is down for maintenance. Please try again later.',
  'connector-error': 'Basiq could not talk to the bank. Please try again later.',
  'consent-revoked': 'The consent was withdrawn, so nothing was connected.',
  'mfa-failed': 'The bank did not accept the one-time code. Please try again.',
};

/** stepFailureMessage explains a failed step, preferring our words for known codes. */
export function stepFailureMessage(step) {
  const code = step?.result?.code;
  if (typeof code === 'string' && Object.hasOwn(STEP_FAILURES, code)) return STEP_FAILURES[code];
  const why = step?.result?.detail || step?.result?.title;
  return why ? String(why) : `The step "${step?.title ?? 'unknown'}" failed.`;
}

/**
 * jobProgress summarises a Basiq job: state is 'failed' as soon as one step failed (message says
 * why, code is Basiq's), 'success' when every step succeeded, else 'running'.
 */
export function jobProgress(job) {
  const steps = Array.isArray(job?.steps) ? job.steps : [];
  const failed = steps.find((step) => step?.status === 'failed');
  if (failed) {
    const code = typeof failed.result?.code === 'string' ? failed.result.code : null;
    return { state: 'failed', steps, message: stepFailureMessage(failed), code };
  }
  const mfa = mfaChallenge(steps);
  if (mfa) return { state: 'running', steps, mfa };
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

// basiqFetch calls Basiq with the client token, refreshing it once only when Basiq says it
// expired (token.js isTokenExpired). No cookies go to Basiq: it has no business with the BFF
// session.
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
  if (!res.ok) throw await basiqError(res);
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
 * retried; anything else rejects with an ApiError. When the bank asks for a one-time code,
 * onMfa(challenge) resolves to the person's answer, which is posted to Basiq once.
 */
export async function pollJob({
  apiUrl,
  jobId,
  keeper,
  signal,
  onProgress = () => {},
  onMfa = null,
  interval = POLL_INTERVAL_MS,
}) {
  let answered = false;
  const url = `${trimSlash(apiUrl)}/jobs/${encodeURIComponent(jobId)}`;
  let failures = 0;
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (poll > 0) await delay(interval, signal);
    let job;
    try {
      const res = await basiqFetch(keeper, url, { signal });
      if (!res.ok) throw await basiqError(res);
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
    if (progress.mfa && !answered) {
      if (onMfa === null) throw new ApiError(0, 'mfa_required', 'Your bank asked for a one-time code this page cannot collect.');
      const answer = await onMfa(progress.mfa);
      answered = true;
      await submitMfa({ apiUrl, jobId, answer, keeper, signal });
    }
  }
  throw new ApiError(0, 'job_timeout', 'The bank is taking a long time. Check your connections again later.');
}

/**
 * basiqError is errorFromResponse for Basiq's answers: the message names Basiq's code and the
 * HTTP status, so a refusal (no Connections feature, the sandbox connection limit, another
 * user's resource) is shown as Basiq stated it.
 */
export async function basiqError(res) {
  const err = await errorFromResponse(res);
  const code = err.code && err.code !== 'http_error' ? `${err.code}, ` : '';
  err.message = `Basiq refused the request: ${err.message} (${code}HTTP ${err.status})`;
  return err;
}

/**
 * followJobs polls every job of a Consent UI return at once. onProgress(index, progress) is
 * called as each job moves. It resolves to {state, message, outcomes}: 'success' only when
 * every job succeeded; 'failed' with the first failure's reason otherwise; 'none' when there
 * were no jobs (nothing was connected). A job that cannot be followed counts as failed.
 */
export async function followJobs({ apiUrl, jobIds, keeper, signal, onProgress = () => {}, interval = POLL_INTERVAL_MS }) {
  if (jobIds.length === 0) return { state: 'none', message: 'Nothing was connected: the Basiq window was closed before a bank was added.', outcomes: [] };
  const outcomes = await Promise.all(
    jobIds.map((jobId, index) =>
      pollJob({ apiUrl, jobId, keeper, signal, interval, onProgress: (p) => onProgress(index, p) }).catch((err) => {
        if (signal?.aborted) throw err;
        return { state: 'failed', steps: [], message: err instanceof ApiError ? err.message : 'The connection could not be followed.' };
      }),
    ),
  );
  const failed = outcomes.find((o) => o.state !== 'success');
  if (!failed) {
    const banks = outcomes.length === 1 ? 'Your bank is connected.' : `All ${outcomes.length} banks are connected.`;
    return { state: 'success', message: banks, outcomes };
  }
  const prefix = outcomes.length > 1 ? `${outcomes.filter((o) => o.state === 'success').length} of ${outcomes.length} connected. ` : '';
  return { state: 'failed', message: `${prefix}The connection failed: ${failed.message}`, outcomes };
}
