// tabs.js shares one client token between the tabs of one origin.
//
// One tab, the leader, holds the lock `${name}:leader` (Web Locks) and runs the real token
// keeper (token.js): it alone calls the BFF, and it broadcasts every new token on a
// BroadcastChannel. The other tabs follow: they keep the leader's token in memory and ask the
// leader when they need one (a new tab says hello and gets the current token without a BFF
// call; a token Basiq refused is sent back so the leader refreshes once for everyone). When the
// leader tab closes, the lock passes to a follower, which takes over with the token it already
// has. signOut() tells every tab to stop. The token goes through the channel only: never
// localStorage, sessionStorage, cookies or the DOM.
//
// Without BroadcastChannel or navigator.locks this is createTokenKeeper: one keeper per tab.

import { ApiError } from './api.js';
import { createTokenKeeper, EXPIRY_MARGIN_MS, StoppedError, tokenRefused } from './token.js';

/** How long a follower waits for the leader's answer before fetching a token itself. */
export const LEADER_ANSWER_MS = 3_000;

const realTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

/** publicError is what of an error crosses the channel: no stack, no cause. */
function publicError(err) {
  if (err == null) return null;
  return {
    status: err.status ?? 0,
    code: String(err.code ?? 'error'),
    message: String(err.message ?? ''),
    retryAfter: err.retryAfter ?? null,
  };
}

function toApiError(e) {
  return e == null ? null : new ApiError(e.status, e.code, e.message, e.retryAfter);
}

/**
 * createSharedTokenKeeper returns a keeper with the interface of createTokenKeeper (refresh,
 * current, withToken, refreshIfDue, stop, snapshot) plus signOut() and role(), shared by every
 * tab of this origin that uses the same name and scope.
 *
 * scope separates sessions (pass the tenant and user id): tabs showing another user never share
 * a token. onSignedOut() runs when another tab signed out; onUnauthenticated(err) when the BFF
 * said the session is gone (in any tab). The keeper is stopped before either runs.
 * @param {import('./types/tabs.js').SharedKeeperOptions} options
 */
export function createSharedTokenKeeper({
  fetchToken,
  onChange = () => {},
  onUnauthenticated = () => {},
  onSignedOut = () => {},
  name = 'basiq-bff-token',
  scope = '',
  BroadcastChannel: Channel = globalThis.BroadcastChannel,
  locks = globalThis.navigator?.locks,
  now = Date.now,
  random = Math.random,
  timers = realTimers,
  answerTimeoutMs = LEADER_ANSWER_MS,
}) {
  if (typeof Channel !== 'function' || typeof locks?.request !== 'function') {
    const keeper = createTokenKeeper({ fetchToken, onChange, onUnauthenticated, now, random, timers });
    /** @type {() => 'alone'} */
    const role = () => 'alone';
    return { ...keeper, signOut: keeper.stop, role };
  }

  const channelName = `${name}:${scope}`;
  const channel = new Channel(channelName);
  const abortLock = new AbortController();
  let releaseLock = () => {};

  // The follower's view; the leader's keeper has its own.
  let token = null;
  let expiresAt = 0;
  let refreshedAt = 0;
  /** @type {import('./types/token.js').KeeperPhase} */
  let phase = 'idle';
  let retryAt = 0;
  let error = null;
  let stopped = false;
  /** @type {ReturnType<typeof createTokenKeeper> | null} */
  let leader = null;
  // Callers waiting for a token: {refused, resolve, reject}.
  let waiters = [];
  let answerTimer = null;
  let ownFetch = null;

  function snapshot() {
    if (leader !== null) return leader.snapshot();
    return { phase, hasToken: token !== null, expiresAt, refreshedAt, retryAt, error };
  }

  function emit(next, extra = {}) {
    phase = next;
    retryAt = extra.retryAt ?? 0;
    error = extra.error ?? null;
    onChange(snapshot());
  }

  function post(message) {
    if (!stopped) channel.postMessage(message);
  }

  function usable() {
    return token !== null && now() < expiresAt - EXPIRY_MARGIN_MS;
  }

  // take holds a token and hands it to the callers waiting for one. A caller that reported t
  // as refused keeps waiting, unless t is the answer to such a report (replaced: Basiq's
  // token was replaced, possibly by the same one from the BFF's cache) or a fresh fetch.
  function take(t, exp, at, replaced = null) {
    token = t;
    expiresAt = exp;
    refreshedAt = at;
    timers.clearTimeout(answerTimer);
    answerTimer = null;
    const done = (w) => leader !== null || w.refused !== t || replaced === t;
    const ready = waiters.filter(done);
    waiters = waiters.filter((w) => !done(w));
    for (const w of ready) w.resolve(t);
    if (waiters.length > 0) waitForLeader(); // for the answer to their report
  }

  // ask posts a request to the leader and resolves with its answer. A leader that does not
  // answer (a frozen tab) is not waited for forever: the follower then fetches on its own.
  function ask(refused = null) {
    if (stopped) return Promise.reject(new StoppedError());
    const p = new Promise((resolve, reject) => waiters.push({ refused, resolve, reject }));
    post({ type: 'want', refused });
    if (answerTimer === null) waitForLeader();
    return p;
  }

  function fail(err) {
    const failed = waiters;
    waiters = [];
    for (const w of failed) w.reject(err);
  }

  // fetchAlone is the fallback when no leader answers: this tab fetches for its own waiters.
  async function fetchAlone() {
    if (stopped || leader !== null || ownFetch !== null || waiters.length === 0) return;
    emit('refreshing');
    ownFetch = true;
    try {
      const body = await fetchToken();
      if (stopped || leader !== null) return;
      if (!(typeof body?.access_token === 'string' && body.access_token !== '' && body.expires_in > 0)) {
        throw new Error('The token answer was malformed.');
      }
      const t = now();
      take(body.access_token, t + body.expires_in * 1000, t, body.access_token);
      emit('ready');
    } catch (err) {
      if (stopped) return;
      if (err?.status === 401) {
        post({ type: 'unauthenticated' });
        end();
        onUnauthenticated(err);
        return;
      }
      fail(err);
      emit('failed', { error: err });
    } finally {
      ownFetch = null;
    }
  }

  // waitForLeader (re)starts the wait for the leader's answer.
  function waitForLeader() {
    timers.clearTimeout(answerTimer);
    answerTimer = timers.setTimeout(() => {
      answerTimer = null;
      fetchAlone();
    }, answerTimeoutMs);
  }

  function becomeLeader() {
    // A token from the previous leader is the first answer: taking over costs no BFF call.
    let seed = usable() ? { access_token: token, expires_in: (expiresAt - now()) / 1000 } : null;
    const keeper = createTokenKeeper({
      fetchToken: () => {
        if (seed !== null) {
          const s = seed;
          seed = null;
          return Promise.resolve(s);
        }
        return fetchToken();
      },
      onChange: (state) => {
        if (leader !== keeper) return;
        const err = publicError(state.error);
        post({ type: 'state', phase: state.phase, retryAt: state.retryAt, error: err });
        if (state.phase === 'ready') {
          keeper.current().then((t) => {
            take(t, state.expiresAt, state.refreshedAt);
            post({ type: 'token', token: t, expiresAt: state.expiresAt, refreshedAt: state.refreshedAt });
          }, () => {});
        } else if (state.phase === 'failed') {
          fail(state.error);
        }
        onChange(state);
      },
      onUnauthenticated: (err) => {
        post({ type: 'unauthenticated' });
        end();
        onUnauthenticated(err);
      },
      now,
      random,
      timers,
    });
    leader = keeper;
    timers.clearTimeout(answerTimer);
    answerTimer = null;
    keeper.refresh().catch(() => {});
  }

  // answer is the leader's side of the channel. Its state goes out first: a follower that
  // hears from a working leader keeps waiting for it instead of fetching on its own.
  function answer(msg) {
    if (msg.type !== 'hello' && msg.type !== 'want') return;
    const keeper = leader;
    const s = keeper.snapshot();
    post({ type: 'state', phase: s.phase, retryAt: s.retryAt, error: publicError(s.error) });
    keeper
      .current()
      // A token Basiq refused is replaced once, however many tabs report it: the refresh is
      // shared, and a later report finds the newer token.
      .then((t) => (msg.type === 'want' && msg.refused != null && t === msg.refused ? keeper.refresh() : t))
      .then((t) => {
        if (leader !== keeper) return;
        const snap = keeper.snapshot();
        const replaced = msg.type === 'want' ? (msg.refused ?? null) : null;
        post({ type: 'token', token: t, expiresAt: snap.expiresAt, refreshedAt: snap.refreshedAt, replaced });
      })
      .catch(() => {}); // failures reach followers as state messages
  }

  channel.onmessage = (event) => {
    const msg = event.data;
    if (stopped || msg == null || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'logout':
        end();
        onSignedOut();
        return;
      case 'unauthenticated':
        end();
        onUnauthenticated(new ApiError(401, 'unauthenticated', 'Your session has ended.'));
        return;
      default:
    }
    if (leader !== null) {
      answer(msg);
      return;
    }
    if (msg.type === 'token' && typeof msg.token === 'string') {
      take(msg.token, msg.expiresAt, msg.refreshedAt, msg.replaced ?? null);
      emit('ready');
    } else if (msg.type === 'state') {
      if (msg.phase === 'failed') fail(toApiError(msg.error));
      if (waiters.length > 0) waitForLeader(); // the leader is alive and working on it
      if (msg.phase === 'ready' || msg.phase === 'stopped' || (msg.phase === 'refreshing' && token !== null)) return;
      emit(msg.phase, { retryAt: msg.retryAt, error: toApiError(msg.error) });
    }
  };

  locks
    .request(`${channelName}:leader`, { signal: abortLock.signal }, () => {
      if (stopped) return undefined;
      becomeLeader();
      // Held until this tab stops (or closes: the browser releases it then).
      return new Promise((resolve) => {
        releaseLock = resolve;
      });
    })
    .catch(() => {}); // aborted by stop() before it was granted

  post({ type: 'hello' });

  function end() {
    if (stopped) return;
    stopped = true;
    const l = leader;
    leader = null;
    token = null;
    expiresAt = 0;
    refreshedAt = 0;
    timers.clearTimeout(answerTimer);
    answerTimer = null;
    const pending = waiters;
    waiters = [];
    for (const w of pending) w.reject(new StoppedError());
    abortLock.abort();
    releaseLock();
    channel.close();
    if (l !== null) l.stop();
    phase = 'stopped';
    onChange(snapshot());
  }

  /** refresh gets a token: the leader fetches one; a follower asks the leader for its token. */
  function refresh() {
    if (stopped) return Promise.reject(new StoppedError());
    if (leader !== null) return leader.refresh();
    return usable() ? Promise.resolve(token) : ask();
  }

  function current() {
    if (stopped) return Promise.reject(new StoppedError());
    if (leader !== null) return leader.current();
    return usable() ? Promise.resolve(token) : ask();
  }

  async function withToken(call) {
    if (leader !== null) return leader.withToken(call);
    const first = await current();
    const res = await call(first);
    if (!(await tokenRefused(res))) return res;
    if (leader !== null) return leader.withToken(call);
    const second = token !== first && usable() ? token : await ask(first);
    return call(second);
  }

  function refreshIfDue() {
    if (stopped) return;
    if (leader !== null) {
      leader.refreshIfDue();
    } else if (!usable()) {
      ask().catch(() => {});
    }
  }

  return {
    refresh,
    current,
    withToken,
    refreshIfDue,
    snapshot,
    /** stop ends this tab's part (the token is forgotten); other tabs go on. */
    stop: end,
    /** signOut stops the keeper in every tab of this origin and scope. */
    signOut() {
      if (stopped) return;
      post({ type: 'logout' });
      end();
    },
    /**
     * role says 'leader' or 'follower' (or 'alone' without the browser APIs).
     * @returns {'leader' | 'follower' | 'stopped'}
     */
    role: () => (stopped ? 'stopped' : leader !== null ? 'leader' : 'follower'),
  };
}
