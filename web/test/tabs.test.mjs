import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { createSharedTokenKeeper } from '../tabs.js';

// expired401 is Basiq's answer to a token it no longer accepts: only this (or 403
// access-denied "Token has expired") makes a keeper fetch a new token and retry.
const expired401 = () => ({
  status: 401,
  json: async () => ({ type: 'list', data: [{ type: 'error', code: 'invalid-authorization-token', title: 'Invalid authorization token.' }] }),
});
import { StoppedError } from '../token.js';

// until polls cond: BroadcastChannel delivers messages asynchronously.
async function until(cond, what) {
  const deadline = Date.now() + 2_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// fakeLocks is navigator.locks for one exclusive lock per name: requests queue in order, and
// an aborted request that was not granted yet is dropped.
function fakeLocks() {
  const queues = new Map();
  return {
    request(name, options, callback) {
      return new Promise((resolve, reject) => {
        const queue = queues.get(name) ?? [];
        queues.set(name, queue);
        const entry = {
          async run() {
            try {
              resolve(await callback());
            } catch (err) {
              reject(err);
            } finally {
              queue.shift();
              queue[0]?.run();
            }
          },
        };
        options?.signal?.addEventListener('abort', () => {
          const i = queue.indexOf(entry);
          if (i > 0) {
            queue.splice(i, 1);
            reject(new DOMException('aborted', 'AbortError'));
          }
        });
        queue.push(entry);
        if (queue.length === 1) entry.run();
      });
    },
  };
}

// bff counts /client-token calls and hands out numbered tokens.
function fakeBff({ expiresIn = 3600 } = {}) {
  const bff = { calls: 0, fail: null };
  bff.fetchToken = async () => {
    bff.calls += 1;
    if (bff.fail) throw bff.fail;
    return { access_token: `token-${bff.calls}`, token_type: 'Bearer', expires_in: expiresIn };
  };
  return bff;
}

describe('createSharedTokenKeeper', () => {
  let keepers = [];
  let seq = 0;
  afterEach(() => {
    for (const k of keepers) k.stop();
    keepers = [];
  });
  // tab opens a keeper as one browser tab would; every test gets its own channel.
  function tabsOf(bff, locks, extra = {}) {
    seq += 1;
    const name = `test-${process.pid}-${seq}`;
    return (events = {}) => {
      const k = createSharedTokenKeeper({ fetchToken: bff.fetchToken, locks, name, scope: 'acme:1', ...extra, ...events });
      keepers.push(k);
      return k;
    };
  }

  it('falls back to one keeper per tab without the browser APIs', async () => {
    const bff = fakeBff();
    const k = createSharedTokenKeeper({ fetchToken: bff.fetchToken, locks: undefined });
    keepers.push(k);
    assert.equal(k.role(), 'alone');
    assert.equal(await k.current(), 'token-1');
    assert.equal(bff.calls, 1);
  });

  it('gives new tabs the leader token with no BFF call', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    const first = tab();
    assert.equal(await first.refresh(), 'token-1');
    assert.equal(first.role(), 'leader');
    const states = [];
    const others = [tab({ onChange: (s) => states.push(s) }), tab(), tab()];
    for (const other of others) {
      assert.equal(await other.refresh(), 'token-1');
      assert.equal(other.role(), 'follower');
    }
    assert.equal(bff.calls, 1);
    const ready = states.find((s) => s.phase === 'ready');
    assert.ok(ready?.hasToken && ready.expiresAt > Date.now(), 'the follower reports the token it holds');
    assert.equal(JSON.stringify(states).includes('token-1'), false, 'snapshots never carry the token');
  });

  it('broadcasts the leader refresh to every tab', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    const leader = tab();
    await leader.refresh();
    let readies = 0;
    const follower = tab({ onChange: (s) => (readies += s.phase === 'ready' ? 1 : 0) });
    assert.equal(await follower.current(), 'token-1');
    await until(() => readies >= 2, 'the answers to hello and want');
    const before = readies;
    await leader.refresh();
    await until(() => readies > before, 'the second token');
    assert.equal(await follower.current(), 'token-2');
    assert.equal(bff.calls, 2);
  });

  it('replaces a token Basiq refused once for all tabs', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    const leader = tab();
    await leader.refresh();
    const a = tab();
    const b = tab();
    await a.current();
    await b.current();
    const seen = [];
    const call = async (token) => {
      seen.push(token);
      return token === 'token-1' ? expired401() : { status: 200 };
    };
    const [ra, rb] = await Promise.all([a.withToken(call), b.withToken(call)]);
    assert.equal(ra.status, 200);
    assert.equal(rb.status, 200);
    assert.equal(bff.calls, 2, 'one refresh for both refusals');
    assert.deepEqual(seen.sort(), ['token-1', 'token-1', 'token-2', 'token-2']);
  });

  it('retries once even when the BFF hands back the same token', async () => {
    const bff = fakeBff();
    const same = { ...bff, fetchToken: async () => ((bff.calls += 1), { access_token: 'cached', expires_in: 3600 }) };
    const tab = tabsOf(same, fakeLocks(), { answerTimeoutMs: 10_000 });
    const leader = tab();
    await leader.refresh();
    const follower = tab();
    await follower.current();
    let attempts = 0;
    const res = await follower.withToken(async () => ({ ...expired401(), attempt: ++attempts }));
    assert.equal(res.attempt, 2, 'the call runs twice, then its answer is returned');
    assert.equal(bff.calls, 2, 'one refresh for the refusal');
  });

  it('does not retry a refusal that is not about the token', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    const leader = tab();
    await leader.refresh();
    const follower = tab();
    await follower.current();
    let attempts = 0;
    const forbidden = async () => ({
      status: 403,
      attempt: ++attempts,
      json: async () => ({ type: 'list', data: [{ type: 'error', code: 'forbidden-access' }] }),
    });
    assert.equal((await follower.withToken(forbidden)).attempt, 1, 'a follower runs the call once');
    assert.equal((await leader.withToken(forbidden)).attempt, 2, 'so does the leader');
    assert.equal(bff.calls, 1, 'no new token for it');
  });

  it('hands leadership over with the token it has', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    const leader = tab();
    await leader.refresh();
    const next = tab();
    assert.equal(await next.current(), 'token-1');
    leader.stop();
    await until(() => next.role() === 'leader', 'the follower to lead');
    assert.equal(await next.current(), 'token-1');
    assert.equal(bff.calls, 0 + 1, 'taking over costs no BFF call');
  });

  it('signs every tab out from any tab', async () => {
    const bff = fakeBff();
    const tab = tabsOf(bff, fakeLocks());
    let signedOut = 0;
    const leader = tab({ onSignedOut: () => signedOut++ });
    await leader.refresh();
    const a = tab({ onSignedOut: () => signedOut++ });
    const b = tab({ onSignedOut: () => signedOut++ });
    await a.current();
    await b.current();
    b.signOut();
    await until(() => signedOut === 2, 'the other tabs to stop');
    assert.equal(leader.role(), 'stopped');
    assert.equal(a.role(), 'stopped');
    assert.equal(leader.snapshot().hasToken, false);
    await assert.rejects(a.current(), StoppedError);
  });

  it('ends every tab when the BFF says the session is gone', async () => {
    const bff = fakeBff({ expiresIn: 1 }); // expires within the margin: every use refetches
    const tab = tabsOf(bff, fakeLocks());
    const ended = [];
    const leader = tab({ onUnauthenticated: (err) => ended.push(['leader', err.status]) });
    await leader.refresh();
    const follower = tab({ onUnauthenticated: (err) => ended.push(['follower', err.status]) });
    await until(() => follower.role() === 'follower', 'the follower');
    bff.fail = Object.assign(new Error('gone'), { status: 401 });
    await assert.rejects(follower.current());
    await until(() => ended.length === 2, 'both tabs to end');
    assert.deepEqual(ended.sort(), [['follower', 401], ['leader', 401]]);
  });

  it('fetches on its own when no leader answers', async () => {
    const bff = fakeBff();
    // A lock that is never granted: the leader is somewhere, frozen.
    const stuck = { request: () => new Promise(() => {}) };
    const tab = tabsOf(bff, stuck, { answerTimeoutMs: 50 });
    const lonely = tab();
    assert.equal(await lonely.current(), 'token-1');
    assert.equal(bff.calls, 1);
  });

  it('keeps tabs of another user apart', async () => {
    const bff = fakeBff();
    const locks = fakeLocks();
    const name = `test-${process.pid}-scoped`;
    const alice = createSharedTokenKeeper({ fetchToken: bff.fetchToken, locks, name, scope: 'acme:1' });
    const bob = createSharedTokenKeeper({ fetchToken: bff.fetchToken, locks, name, scope: 'acme:2' });
    keepers.push(alice, bob);
    assert.equal(await alice.current(), 'token-1');
    assert.equal(await bob.current(), 'token-2');
    assert.equal(alice.role(), 'leader');
    assert.equal(bob.role(), 'leader');
  });
});
