import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import {
  connectErrorMessage,
  connectionBody,
  consentUrl,
  createConnection,
  jobProgress,
  pollJob,
  readReturn,
  startConsent,
} from '../connect.js';
import { createTokenKeeper } from '../token.js';

describe('readReturn', () => {
  const cases = [
    { name: 'nothing to read', search: '?tab=1', want: null },
    { name: 'empty', search: '', want: null },
    { name: 'connected', search: '?connected=1', want: { ok: true, search: '' } },
    { name: 'error keeps other params', search: '?a=1&connect_error=invalid_state', want: { ok: false, search: '?a=1' } },
    { name: 'error wins over success', search: '?connected=1&connect_error=x', want: { ok: false, search: '' } },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const got = readReturn(tc.search);
      if (tc.want === null) return assert.equal(got, null);
      assert.equal(got.ok, tc.want.ok);
      assert.equal(got.search, tc.want.search);
      assert.ok(got.message.length > 0);
    });
  }
});

describe('connectErrorMessage', () => {
  it('explains a known code', () => assert.match(connectErrorMessage('invalid_state'), /expired or was already used/));
  it('names an unknown plain code', () => assert.match(connectErrorMessage('bank_down'), /\(bank_down\)/));
  it('does not echo arbitrary text', () => {
    const msg = connectErrorMessage('<img src=x onerror=alert(1)>');
    assert.doesNotMatch(msg, /img|alert/);
  });
});

describe('consentUrl', () => {
  const cases = [
    { name: 'https', body: { url: 'https://consent.basiq.io/home?token=t&state=s' }, ok: true },
    { name: 'http for a local emulator', body: { url: 'http://127.0.0.1:9999/home?token=t' }, ok: true },
    { name: 'javascript scheme', body: { url: 'javascript:alert(1)' }, ok: false },
    { name: 'relative', body: { url: '/home' }, ok: false },
    { name: 'missing', body: {}, ok: false },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      if (tc.ok) assert.equal(consentUrl(tc.body), new URL(tc.body.url).href);
      else assert.throws(() => consentUrl(tc.body), { code: 'bad_response' });
    });
  }

  it('startConsent posts to the BFF and navigates', async () => {
    const posted = [];
    const bff = { post: async (path, body) => { posted.push([path, body]); return { url: 'https://consent.basiq.io/home?token=t' }; } };
    let went = null;
    await startConsent(bff, (url) => { went = url; });
    assert.deepEqual(posted, [['/connect/consent', {}]]);
    assert.equal(went, 'https://consent.basiq.io/home?token=t');
  });
});

describe('connectionBody', () => {
  it('leaves out an empty security code', () => {
    assert.deepEqual(connectionBody({ institution: 'AU00000', loginId: 'gavinBelson', password: 'hooli2016', securityCode: '' }), {
      loginId: 'gavinBelson',
      password: 'hooli2016',
      institution: { id: 'AU00000' },
    });
  });
  it('sends a given security code', () => {
    const body = connectionBody({ institution: 'AU00000', loginId: 'a', password: 'b', securityCode: '1234' });
    assert.equal(body.securityCode, '1234');
  });
});

describe('jobProgress', () => {
  const cases = [
    { name: 'no steps yet', job: { steps: [] }, state: 'running' },
    { name: 'malformed', job: null, state: 'running' },
    {
      name: 'in progress',
      job: { steps: [{ title: 'verify-credentials', status: 'success' }, { title: 'retrieve-accounts', status: 'in-progress' }] },
      state: 'running',
    },
    {
      name: 'all succeeded',
      job: { steps: [{ title: 'verify-credentials', status: 'success' }, { title: 'retrieve-accounts', status: 'success' }] },
      state: 'success',
    },
    {
      name: 'failed with detail',
      job: { steps: [{ title: 'verify-credentials', status: 'failed', result: { code: 'invalid-credentials', title: 'Cannot login', detail: 'Wrong password.' } }] },
      state: 'failed',
      message: 'Wrong password.',
    },
    {
      name: 'failed without result',
      job: { steps: [{ title: 'retrieve-accounts', status: 'failed' }] },
      state: 'failed',
      message: 'The step "retrieve-accounts" failed.',
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const got = jobProgress(tc.job);
      assert.equal(got.state, tc.state);
      if (tc.message) assert.equal(got.message, tc.message);
    });
  }
});

// A scripted Basiq: each fetch gets the next answer; requests are recorded.
function fakeBasiq(t, answers) {
  const requests = [];
  const original = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    requests.push({ url, init });
    const next = answers.shift();
    if (next === undefined) throw new Error('unexpected request');
    if (next instanceof Error) throw next;
    return new Response(JSON.stringify(next.body), { status: next.status, headers: { 'Content-Type': 'application/json' } });
  };
  t.after(() => { globalThis.fetch = original; });
  return requests;
}

function keeperFor(tokens) {
  let n = 0;
  return createTokenKeeper({ fetchToken: async () => ({ access_token: tokens[n++], expires_in: 3600 }) });
}

describe('createConnection', () => {
  let keeper;
  beforeEach(() => { keeper = keeperFor(['tok-1', 'tok-2']); });
  afterEach(() => keeper.stop());

  it('posts the bank login to Basiq with the bearer token and no cookies', async (t) => {
    const requests = fakeBasiq(t, [{ status: 202, body: { type: 'job', id: 'job-1' } }]);
    const id = await createConnection({
      apiUrl: 'https://au-api.basiq.io/',
      userId: 'user 1',
      fields: { institution: 'AU00000', loginId: 'gavinBelson', password: 'hooli2016', securityCode: '' },
      keeper,
    });
    assert.equal(id, 'job-1');
    const { url, init } = requests[0];
    assert.equal(url, 'https://au-api.basiq.io/users/user%201/connections');
    assert.equal(init.method, 'POST');
    assert.equal(init.credentials, 'omit');
    assert.equal(init.headers.Authorization, 'Bearer tok-1');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.equal(init.headers.Accept, 'application/json');
    assert.deepEqual(JSON.parse(init.body), { loginId: 'gavinBelson', password: 'hooli2016', institution: { id: 'AU00000' } });
  });

  it('retries once with a new token after a 403', async (t) => {
    const requests = fakeBasiq(t, [
      { status: 403, body: { type: 'list', data: [{ code: 'access-denied', title: 'Access denied.', detail: 'Token has expired' }] } },
      { status: 202, body: { type: 'job', id: 'job-2' } },
    ]);
    const id = await createConnection({ apiUrl: 'https://b', userId: 'u', fields: { institution: 'AU00000', loginId: 'a', password: 'b' }, keeper });
    assert.equal(id, 'job-2');
    assert.deepEqual(requests.map((r) => r.init.headers.Authorization), ['Bearer tok-1', 'Bearer tok-2']);
  });

  it("rejects with Basiq's explanation", async (t) => {
    fakeBasiq(t, [{ status: 400, body: { type: 'list', data: [{ code: 'parameter-not-valid', title: 'Bad', detail: 'Institution is not valid.' }] } }]);
    await assert.rejects(
      createConnection({ apiUrl: 'https://b', userId: 'u', fields: { institution: 'X', loginId: 'a', password: 'b' }, keeper }),
      { status: 400, code: 'parameter-not-valid', message: 'Institution is not valid.' },
    );
  });
});

describe('pollJob', () => {
  let keeper;
  beforeEach(() => { keeper = keeperFor(['tok-1', 'tok-2']); });
  afterEach(() => keeper.stop());

  const step = (title, status, result) => ({ title, status, ...(result ? { result } : {}) });

  it('follows the job to success, riding out a 503', async (t) => {
    const requests = fakeBasiq(t, [
      { status: 200, body: { type: 'job', id: 'j', steps: [step('verify-credentials', 'in-progress'), step('retrieve-accounts', 'pending')] } },
      { status: 503, body: { type: 'list', data: [{ code: 'service-unavailable', title: 'Service unavailable' }] } },
      { status: 200, body: { type: 'job', id: 'j', steps: [step('verify-credentials', 'success'), step('retrieve-accounts', 'success')] } },
    ]);
    const seen = [];
    const got = await pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0, onProgress: (p) => seen.push(p.state) });
    assert.equal(got.state, 'success');
    assert.deepEqual(seen, ['running', 'success']);
    assert.equal(requests.length, 3);
    assert.equal(requests[0].url, 'https://b/jobs/j');
    assert.equal(requests[0].init.headers.Authorization, 'Bearer tok-1');
  });

  it('stops at the first failed step', async (t) => {
    fakeBasiq(t, [
      { status: 200, body: { steps: [step('verify-credentials', 'failed', { detail: 'Wrong password.' }), step('retrieve-accounts', 'pending')] } },
    ]);
    const got = await pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0 });
    assert.equal(got.state, 'failed');
    assert.equal(got.message, 'Wrong password.');
  });

  it('rejects on an answer that will not get better', async (t) => {
    fakeBasiq(t, [{ status: 404, body: { type: 'list', data: [{ code: 'resource-not-found', title: 'Job not found.' }] } }]);
    await assert.rejects(pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0 }), { status: 404, message: 'Job not found.' });
  });

  it('rejects with AbortError when aborted', async (t) => {
    fakeBasiq(t, [{ status: 200, body: { steps: [step('verify-credentials', 'in-progress')] } }]);
    const abort = new AbortController();
    const polling = pollJob({
      apiUrl: 'https://b',
      jobId: 'j',
      keeper,
      interval: 60_000,
      signal: abort.signal,
      onProgress: () => abort.abort(),
    });
    await assert.rejects(polling, { name: 'AbortError' });
  });
});
