// token.js keeps the Basiq CLIENT_ACCESS token for this page.
//
// Rules: the token lives only in the closure of createTokenKeeper (never in localStorage,
// sessionStorage, cookies or the DOM); it is refreshed at ~80% of its life with ±10% jitter and
// on demand when Basiq says the token expired (isTokenExpired); there is never more than one
// refresh in flight; and once
// stopped (logout) a keeper forgets the token, cancels its timers and ignores late answers.

/** Fraction of expires_in after which a scheduled refresh runs. */
export const REFRESH_FRACTION = 0.8;
/** ± jitter on the refresh delay, so tabs opened together do not refresh together. */
export const REFRESH_JITTER = 0.1;
/** Floor for the refresh delay: a token with almost no life left must not cause a hot loop. */
export const MIN_REFRESH_MS = 5_000;
/** A token this close to expiry is not handed to a Basiq call: it could expire on the way. */
export const EXPIRY_MARGIN_MS = 5_000;
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 30_000;

/** StoppedError rejects work that was cut short by stop() (logout); callers ignore it. */
export class StoppedError extends Error {
  constructor() {
    super('The token keeper was stopped.');
    this.name = 'StoppedError';
  }
}

/** refreshDelayMs is how long to wait before refreshing a token that lives expiresIn seconds. */
export function refreshDelayMs(expiresIn, random = Math.random) {
  const jitter = 1 + REFRESH_JITTER * (2 * random() - 1);
  return Math.max(MIN_REFRESH_MS, Math.round(expiresIn * 1000 * REFRESH_FRACTION * jitter));
}

/**
 * backoffMs is the wait before retry number attempt (0-based): exponential with "equal jitter"
 * (half fixed, half random, so it never collapses to zero), at least the server's Retry-After,
 * and never more than BACKOFF_CAP_MS.
 * @param {number} attempt
 * @param {number | null} [retryAfterSeconds]
 * @param {() => number} [random]
 */
export function backoffMs(attempt, retryAfterSeconds = null, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const jittered = ceiling / 2 + (random() * ceiling) / 2;
  const floor = retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : 0;
  return Math.round(Math.min(BACKOFF_CAP_MS, Math.max(floor, jittered)));
}

/** isRetryable says whether a failed token fetch may succeed later without the user doing anything. */
export function isRetryable(err) {
  const status = err?.status;
  return status === 0 || status === 429 || status >= 500;
}

/**
 * isTokenExpired says whether Basiq refused a call because of the token itself, the only case
 * where a new token can help: 403 access-denied "Token has expired", or 401
 * invalid-authorization-token. Any other 401/403 (another user's resource, a feature the
 * account lacks, the sandbox connection limit) would be refused again: it is not retried.
 */
export function isTokenExpired(status, body) {
  const item = Array.isArray(body?.data) ? body.data[0] : null;
  const code = item?.code;
  if (status === 401) return code === 'invalid-authorization-token';
  if (status === 403 && code === 'access-denied') {
    return /expired/i.test(`${item.detail ?? ''} ${item.title ?? ''}`);
  }
  return false;
}

/** bodyOf reads a Response's JSON without consuming it; null when there is none. */
async function bodyOf(res) {
  try {
    return await (typeof res.clone === 'function' ? res.clone() : res).json();
  } catch {
    return null;
  }
}

/**
 * tokenRefused says whether a Basiq response refused the token itself (isTokenExpired), reading
 * its body without consuming it: only then does a new token help.
 */
export async function tokenRefused(res) {
  if (res.status !== 401 && res.status !== 403) return false;
  return isTokenExpired(res.status, await bodyOf(res));
}

const realTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * createTokenKeeper returns the page's single holder of the client token.
 *
 * fetchToken() resolves to {access_token, expires_in} or rejects with an error carrying
 * status/retryAfter (an ApiError). onChange(state) receives a snapshot without the token.
 * onUnauthenticated(err) runs once when the BFF says the session is gone (401); the keeper is
 * stopped by then.
 * @param {import('./types/token.js').KeeperOptions} options
 */
export function createTokenKeeper({
  fetchToken,
  onChange = () => {},
  onUnauthenticated = () => {},
  now = Date.now,
  random = Math.random,
  timers = realTimers,
}) {
  let token = null;
  let expiresAt = 0;
  let refreshedAt = 0;
  let refreshAt = 0;
  /** @type {import('./types/token.js').KeeperPhase} */
  let phase = 'idle'; // idle | refreshing | ready | retrying | failed | stopped
  let retryAt = 0;
  let error = null;
  let inFlight = null;
  let timer = null;
  let cancelSleep = null;
  let stopped = false;

  function snapshot() {
    return { phase, hasToken: token !== null, expiresAt, refreshedAt, retryAt, error };
  }

  function emit(next, extra = {}) {
    phase = next;
    retryAt = extra.retryAt ?? 0;
    error = extra.error ?? null;
    onChange(snapshot());
  }

  function usable() {
    return token !== null && now() < expiresAt - EXPIRY_MARGIN_MS;
  }

  function sleep(ms) {
    return new Promise((resolve, reject) => {
      const id = timers.setTimeout(() => {
        cancelSleep = null;
        resolve();
      }, ms);
      cancelSleep = () => {
        timers.clearTimeout(id);
        reject(new StoppedError());
      };
    });
  }

  function schedule(ms) {
    timers.clearTimeout(timer);
    refreshAt = now() + ms;
    // Failures are reported through onChange; the catch only keeps the rejection handled.
    timer = timers.setTimeout(() => {
      timer = null;
      refresh().catch(() => {});
    }, ms);
  }

  function accept(body) {
    if (typeof body?.access_token !== 'string' || body.access_token === '' || !(body.expires_in > 0)) {
      throw new Error('The token answer was malformed.');
    }
    const t = now();
    token = body.access_token;
    refreshedAt = t;
    expiresAt = t + body.expires_in * 1000;
    schedule(refreshDelayMs(body.expires_in, random));
    emit('ready');
  }

  async function run() {
    emit('refreshing');
    for (let attempt = 0; ; attempt++) {
      let body;
      try {
        body = await fetchToken();
      } catch (err) {
        if (stopped) throw new StoppedError();
        if (err?.status === 401) {
          stop();
          onUnauthenticated(err);
          throw err;
        }
        if (!isRetryable(err)) {
          emit('failed', { error: err });
          throw err;
        }
        const delay = backoffMs(attempt, err.retryAfter, random);
        emit('retrying', { error: err, retryAt: now() + delay });
        await sleep(delay);
        continue;
      }
      if (stopped) throw new StoppedError();
      try {
        accept(body);
      } catch (err) {
        emit('failed', { error: err });
        throw err;
      }
      return token;
    }
  }

  /** refresh fetches a new token, sharing one in-flight request between all callers. */
  function refresh() {
    if (stopped) return Promise.reject(new StoppedError());
    if (inFlight === null) {
      const p = run().finally(() => {
        if (inFlight === p) inFlight = null;
      });
      inFlight = p;
    }
    return inFlight;
  }

  /** current resolves to a token with some life left, fetching one if needed. */
  function current() {
    if (stopped) return Promise.reject(new StoppedError());
    return usable() ? Promise.resolve(token) : refresh();
  }

  /**
   * refreshIfCurrent replaces a token Basiq refused. When another call already replaced it, the
   * newer token is used instead of refreshing a second time.
   */
  function refreshIfCurrent(refused) {
    if (stopped) return Promise.reject(new StoppedError());
    if (token !== refused && usable()) return Promise.resolve(token);
    return refresh();
  }

  /**
   * withToken runs call(token) and resolves to its Response. When Basiq says the token expired
   * (isTokenExpired) it gets a new token and runs call once more; whatever that answers is
   * returned. Every other answer, 401 and 403 included, is returned as is: call runs once.
   */
  async function withToken(call) {
    const first = await current();
    const res = await call(first);
    if (!(await tokenRefused(res))) return res;
    const second = await refreshIfCurrent(first);
    return call(second);
  }

  /** refreshIfDue catches up after timers were throttled (a hidden tab, a sleeping laptop). */
  function refreshIfDue() {
    if (stopped || inFlight !== null) return;
    if (token === null || now() >= refreshAt) refresh().catch(() => {});
  }

  function stop() {
    if (stopped) return;
    stopped = true;
    token = null;
    expiresAt = 0;
    refreshedAt = 0;
    refreshAt = 0;
    inFlight = null;
    timers.clearTimeout(timer);
    timer = null;
    if (cancelSleep) {
      const cancel = cancelSleep;
      cancelSleep = null;
      cancel();
    }
    emit('stopped');
  }

  return { refresh, current, withToken, refreshIfDue, stop, snapshot };
}
