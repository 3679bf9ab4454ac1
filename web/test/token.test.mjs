import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  BACKOFF_CAP_MS,
  MIN_REFRESH_MS,
  StoppedError,
  backoffMs,
  createTokenKeeper,
  isRetryable,
  refreshDelayMs,
} from '../token.js';

const flush = () => new Promise((resolve) => setImmediate(resolve));

// fakeClock: time only moves when a test says so.
function fakeClock(start = 1_000_000) {
  let t = start;
  let seq = 0;
  const pending = new Map();
  return {
    now: () => t,
    pending,
    timers: {
      setTimeout(fn, ms) {
        seq += 1;
        pending.set(seq, { at: t + ms, fn });
        return seq;
      },
      clearTimeout(id) {
        pending.delete(id);
      },
    },
    // advance runs every timer due within ms, in order, letting promises settle after each.
    async advance(ms) {
      const end = t + ms;
      for (;;) {
        let next = null;
        for (const [id, timer] of pending) {
          if (timer.at <= end && (next === null || timer.at < next.at)) next = { id, ...timer };
        }
        if (next === null) break;
        pending.delete(next.id);
        t = next.at;
        next.fn();
        await flush();
      }
      t = end;
      await flush();
    },
  };
}

const apiError = (status, retryAfter = null) =>
  Object.assign(new Error(`HTTP ${status}`), { status, retryAfter });

// tokenSource answers fetchToken calls from a script and counts them.
function tokenSource(script) {
  const source = {
    calls: 0,
    fetchToken: async () => {
      const step = script[Math.min(source.calls, script.length - 1)];
      source.calls += 1;
      if (step instanceof Error) throw step;
      return typeof step === 'function' ? step() : step;
    },
  };
  return source;
}

const token = (n, expiresIn = 3600) => ({ access_token: `tok-${n}`, token_type: 'Bearer', expires_in: expiresIn });

function keeperWith(script, extra = {}) {
  const clock = fakeClock();
  const source = tokenSource(script);
  const states = [];
  const keeper = createTokenKeeper({
    fetchToken: source.fetchToken,
    onChange: (s) => states.push(s),
    now: clock.now,
    random: () => 0.5,
    timers: clock.timers,
    ...extra,
  });
  return { clock, source, states, keeper };
}

describe('refreshDelayMs', () => {
  const cases = [
    { name: 'lowest jitter is 72% of the life', expiresIn: 3600, random: 0, want: 2_592_000 },
    { name: 'middle is 80% of the life', expiresIn: 3600, random: 0.5, want: 2_880_000 },
    { name: 'highest jitter is 88% of the life', expiresIn: 3600, random: 1, want: 3_168_000 },
    { name: 'a nearly dead token still waits the floor', expiresIn: 1, random: 0.5, want: MIN_REFRESH_MS },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(refreshDelayMs(tc.expiresIn, () => tc.random), tc.want));
  }
});

describe('backoffMs', () => {
  const cases = [
    { name: 'first retry, no jitter', attempt: 0, random: 0, want: 500 },
    { name: 'first retry, full jitter', attempt: 0, random: 1, want: 1000 },
    { name: 'doubles per attempt', attempt: 3, random: 1, want: 8000 },
    { name: 'capped', attempt: 20, random: 1, want: BACKOFF_CAP_MS },
    { name: 'Retry-After is a floor', attempt: 0, random: 0, retryAfter: 7, want: 7000 },
    { name: 'Retry-After is capped too', attempt: 0, random: 0, retryAfter: 600, want: BACKOFF_CAP_MS },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(backoffMs(tc.attempt, tc.retryAfter ?? null, () => tc.random), tc.want));
  }
});

describe('isRetryable', () => {
  const cases = [
    { status: 0, want: true },
    { status: 429, want: true },
    { status: 502, want: true },
    { status: 503, want: true },
    { status: 400, want: false },
    { status: 401, want: false },
    { status: 403, want: false },
    { status: undefined, want: false },
  ];
  for (const tc of cases) {
    it(`status ${tc.status}`, () => assert.equal(isRetryable({ status: tc.status }), tc.want));
  }
});

describe('createTokenKeeper', () => {
  it('shares one in-flight refresh between concurrent callers', async () => {
    const { keeper, source } = keeperWith([token(1)]);
    const got = await Promise.all([keeper.current(), keeper.current(), keeper.refresh()]);
    assert.deepEqual(got, ['tok-1', 'tok-1', 'tok-1']);
    assert.equal(source.calls, 1);
    assert.equal(await keeper.current(), 'tok-1');
    assert.equal(source.calls, 1, 'a live token is reused');
  });

  it('refreshes on a timer at 80% of the life', async () => {
    const { keeper, source, clock } = keeperWith([token(1), token(2)]);
    await keeper.refresh();
    await clock.advance(2_880_000 - 1);
    assert.equal(source.calls, 1);
    await clock.advance(1);
    assert.equal(source.calls, 2);
    assert.equal(await keeper.current(), 'tok-2');
    const snap = keeper.snapshot();
    assert.equal(snap.refreshedAt, clock.now());
    assert.equal(snap.expiresAt, clock.now() + 3_600_000);
  });

  it('fetches again when the held token is about to expire', async () => {
    const { keeper, source, clock } = keeperWith([token(1, 3600), token(2)]);
    await keeper.refresh();
    clock.pending.clear(); // the scheduled refresh is not what this test is about
    await clock.advance(3_600_000 - 1000);
    assert.equal(await keeper.current(), 'tok-2');
    assert.equal(source.calls, 2);
  });

  it('retries an unavailable BFF with backoff and says when', async () => {
    const { keeper, source, clock, states } = keeperWith([apiError(503, 2), apiError(429), token(1)]);
    const got = keeper.refresh();
    await flush();
    const retrying = states.at(-1);
    assert.equal(retrying.phase, 'retrying');
    assert.equal(retrying.retryAt, clock.now() + 2000, 'Retry-After 2s beats the 750ms backoff');
    assert.equal(retrying.error.status, 503);
    await clock.advance(2000);
    assert.equal(source.calls, 2);
    await clock.advance(1500); // attempt 1 with random 0.5: 1500ms
    assert.equal(await got, 'tok-1');
    assert.equal(source.calls, 3);
    assert.equal(states.at(-1).phase, 'ready');
  });

  it('hands a 401 to onUnauthenticated and stops', async () => {
    let calls = 0;
    const { keeper } = keeperWith([apiError(401)], { onUnauthenticated: () => { calls += 1; } });
    await assert.rejects(keeper.refresh(), { status: 401 });
    assert.equal(calls, 1);
    assert.equal(keeper.snapshot().phase, 'stopped');
    await assert.rejects(keeper.current(), StoppedError);
  });

  it('gives up on errors that will not go away by themselves', async () => {
    const { keeper, clock, states } = keeperWith([apiError(403)]);
    await assert.rejects(keeper.refresh(), { status: 403 });
    assert.equal(states.at(-1).phase, 'failed');
    assert.equal(clock.pending.size, 0, 'no retry is scheduled');
  });

  it('rejects a malformed token answer', async () => {
    const { keeper, states } = keeperWith([{ access_token: '', expires_in: 3600 }]);
    await assert.rejects(keeper.refresh(), /malformed/);
    assert.equal(states.at(-1).phase, 'failed');
    assert.equal(keeper.snapshot().hasToken, false);
  });

  it('never puts the token in its snapshots', async () => {
    const { keeper, states } = keeperWith([token(1)]);
    await keeper.refresh();
    for (const s of [...states, keeper.snapshot()]) {
      assert.ok(!JSON.stringify(s).includes('tok-1'));
    }
  });

  it('stop cancels a backoff wait and clears every timer', async () => {
    const { keeper, clock } = keeperWith([apiError(503)]);
    const got = keeper.refresh();
    await flush();
    assert.equal(clock.pending.size, 1);
    keeper.stop();
    await assert.rejects(got, StoppedError);
    assert.equal(clock.pending.size, 0);
  });

  it('stop clears the scheduled refresh and forgets the token', async () => {
    const { keeper, clock } = keeperWith([token(1)]);
    await keeper.refresh();
    assert.equal(clock.pending.size, 1);
    keeper.stop();
    assert.equal(clock.pending.size, 0);
    const snap = keeper.snapshot();
    assert.equal(snap.hasToken, false);
    assert.equal(snap.expiresAt, 0);
  });

  it('ignores a token that arrives after stop', async () => {
    let release;
    const late = new Promise((resolve) => { release = resolve; });
    const { keeper, clock } = keeperWith([() => late]);
    const got = keeper.refresh();
    keeper.stop();
    release(token(9));
    await assert.rejects(got, StoppedError);
    assert.equal(keeper.snapshot().hasToken, false);
    assert.equal(clock.pending.size, 0, 'no refresh scheduled for a stopped keeper');
  });

  describe('withToken', () => {
    const basiqError = (code, detail) => ({ type: 'list', data: [{ type: 'error', code, title: 'x', ...(detail ? { detail } : {}) }] });
    const answer = (status, body) => ({ status, json: async () => body });
    const expired403 = () => answer(403, basiqError('access-denied', 'Token has expired'));
    const expired401 = () => answer(401, basiqError('invalid-authorization-token'));
    const cases = [
      { name: '200 is returned as is', first: () => answer(200, {}), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '401 invalid-authorization-token refreshes and retries once', first: expired401, calls: 2, tokens: ['tok-1', 'tok-2'], refreshes: 2 },
      { name: '403 access-denied Token has expired refreshes and retries once', first: expired403, calls: 2, tokens: ['tok-1', 'tok-2'], refreshes: 2 },
      { name: '403 forbidden-access (no Connections feature) is not retried', first: () => answer(403, basiqError('forbidden-access', 'Access to this resource is forbidden.')), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '403 too-many-sandbox-connections is not retried', first: () => answer(403, basiqError('too-many-sandbox-connections')), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '403 access-denied without expiry is not retried', first: () => answer(403, basiqError('access-denied', 'Access denied.')), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '401 unauthorized-access (another user) is not retried', first: () => answer(401, basiqError('unauthorized-access')), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '403 without a readable body is not retried', first: () => ({ status: 403, json: async () => { throw new SyntaxError('x'); } }), calls: 1, tokens: ['tok-1'], refreshes: 1 },
      { name: '404 is not a token problem', first: () => answer(404, basiqError('resource-not-found')), calls: 1, tokens: ['tok-1'], refreshes: 1 },
    ];
    for (const tc of cases) {
      it(tc.name, async () => {
        const { keeper, source } = keeperWith([token(1), token(2)]);
        const seen = [];
        const first = tc.first();
        const res = await keeper.withToken(async (t) => {
          seen.push(t);
          return seen.length === 1 ? first : answer(200, {});
        });
        assert.equal(res.status, tc.calls === 2 ? 200 : first.status);
        assert.deepEqual(seen, tc.tokens);
        assert.equal(source.calls, tc.refreshes);
      });
    }

    it('retries only once', async () => {
      const { keeper } = keeperWith([token(1), token(2), token(3)]);
      let calls = 0;
      const res = await keeper.withToken(async () => {
        calls += 1;
        return expired401();
      });
      assert.equal(res.status, 401);
      assert.equal(calls, 2);
    });

    it('reads the body from a clone, leaving it for the caller', async () => {
      const { keeper } = keeperWith([token(1), token(2)]);
      const res = await keeper.withToken(async () =>
        new Response(JSON.stringify(basiqError('forbidden-access')), { status: 403, headers: { 'Content-Type': 'application/json' } }));
      assert.equal((await res.json()).data[0].code, 'forbidden-access');
    });

    it('two calls refused with the same token cause one refresh', async () => {
      const { keeper, source } = keeperWith([token(1), token(2), token(3)]);
      await keeper.current();
      const call = async (t) => (t === 'tok-1' ? expired401() : { ...answer(200, {}), token: t });
      const [a, b] = await Promise.all([keeper.withToken(call), keeper.withToken(call)]);
      assert.equal(a.token, 'tok-2');
      assert.equal(b.token, 'tok-2');
      assert.equal(source.calls, 2);
      // A call refused with an old token after the refresh finished reuses the new one.
      const c = await keeper.withToken(async (t) => ({ status: 200, token: t }));
      assert.equal(c.token, 'tok-2');
      assert.equal(source.calls, 2);
    });
  });

  it('refreshIfDue catches up when the timer was late', async () => {
    const { keeper, source, clock } = keeperWith([token(1), token(2)]);
    await keeper.refresh();
    clock.pending.clear(); // as if the tab was frozen and the timer never ran
    keeper.refreshIfDue();
    await flush();
    assert.equal(source.calls, 1, 'not due yet');
    await clock.advance(2_880_000);
    keeper.refreshIfDue();
    await flush();
    assert.equal(source.calls, 2);
  });
});
