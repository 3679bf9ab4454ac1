import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import {
  connectErrorMessage,
  connectionBody,
  consentUrl,
  createConnection,
  fetchInstitutions,
  followJobs,
  jobProgress,
  loginFields,
  mfaChallenge,
  pollJob,
  readReturn,
  startConsent,
} from '../connect.js';
import { createTokenKeeper } from '../token.js';

describe('readReturn', () => {
  const cases = [
    { name: 'nothing to read', search: '?tab=1', want: null },
    { name: 'empty', search: '', want: null },
    { name: 'one job', search: '?jobIds=j-1', want: { jobIds: ['j-1'], search: '' } },
    { name: 'several jobs, other params kept', search: '?a=1&jobIds=j-1%2Cj-2', want: { jobIds: ['j-1', 'j-2'], search: '?a=1' } },
    { name: 'repeated job kept once', search: '?jobIds=j-1,j-1', want: { jobIds: ['j-1'], search: '' } },
    { name: 'no jobs: closed', search: '?jobIds=', want: { jobIds: [], search: '' } },
    { name: 'markup as a job id', search: '?jobIds=%3Cimg%3E', want: { ok: false, search: '' } },
    { name: 'eleven jobs', search: '?jobIds=a,b,c,d,e,f,g,h,i,j,k', want: { ok: false, search: '' } },
    { name: 'error keeps other params', search: '?a=1&connect_error=invalid_state', want: { ok: false, search: '?a=1' } },
    { name: 'error wins over jobs', search: '?jobIds=j-1&connect_error=x', want: { ok: false, search: '' } },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const got = readReturn(tc.search);
      if (tc.want === null) return assert.equal(got, null);
      assert.equal(got.search, tc.want.search);
      if (tc.want.jobIds) return assert.deepEqual(got.jobIds, tc.want.jobIds);
      assert.equal(got.ok, false);
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
    await startConsent(bff, {}, (url) => { went = url; });
    await startConsent(bff, { action: 'connect', institutionId: 'AU00000', connectionId: '' }, () => {});
    assert.deepEqual(posted, [['/connect/consent', {}], ['/connect/consent', { action: 'connect', institutionId: 'AU00000' }]]);
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
  it('sends a given secondary login id', () => {
    const body = connectionBody({ institution: 'AU00002', loginId: 'a', password: 'b', secondaryLoginId: 'cust-9' });
    assert.equal(body.secondaryLoginId, 'cust-9');
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
      job: { steps: [{ title: 'verify-credentials', status: 'failed', result: { code: 'some-new-code', title: 'Cannot login', detail: 'Wrong password.' } }] },
      state: 'failed',
      message: 'Wrong password.',
    },
    {
      name: 'failed with a known code, in our words',
      job: { steps: [{ title: 'verify-credentials', status: 'failed', result: { code: 'invalid-credentials', detail: 'Cannot login to target institution.' } }] },
      state: 'failed',
      message: 'The bank did not accept the login details. Check them and try again.',
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

  it('retries once with a new token after Basiq says it expired', async (t) => {
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
      { status: 400, code: 'parameter-not-valid', message: 'Basiq refused the request: Institution is not valid. (parameter-not-valid, HTTP 400)' },
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
    await assert.rejects(pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0 }), { status: 404, message: 'Basiq refused the request: Job not found. (resource-not-found, HTTP 404)' });
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

describe('followJobs', () => {
  let keeper;
  beforeEach(() => { keeper = keeperFor(['tok-1', 'tok-2']); });
  afterEach(() => keeper.stop());
  const done = { status: 200, body: { steps: [{ title: 'verify-credentials', status: 'success' }] } };
  const failed = { status: 200, body: { steps: [{ title: 'verify-credentials', status: 'failed', result: { code: 'invalid-credentials' } }] } };

  it('no jobs: nothing connected, no request', async (t) => {
    const requests = fakeBasiq(t, []);
    const got = await followJobs({ apiUrl: 'https://b', jobIds: [], keeper, interval: 0 });
    assert.equal(got.state, 'none');
    assert.match(got.message, /Nothing was connected/);
    assert.equal(requests.length, 0);
  });

  it('connected only when every job succeeded', async (t) => {
    fakeBasiq(t, [done, done]);
    const got = await followJobs({ apiUrl: 'https://b', jobIds: ['a', 'b'], keeper, interval: 0 });
    assert.equal(got.state, 'success');
    assert.equal(got.message, 'All 2 banks are connected.');
  });

  it('one failed job fails the return, in words', async (t) => {
    fakeBasiq(t, [done, failed]);
    const seen = [];
    const got = await followJobs({ apiUrl: 'https://b', jobIds: ['a', 'b'], keeper, interval: 0, onProgress: (i, p) => seen.push(`${i}:${p.state}`) });
    assert.equal(got.state, 'failed');
    assert.equal(got.message, '1 of 2 connected. The connection failed: The bank did not accept the login details. Check them and try again.');
    assert.deepEqual(seen.sort(), ['0:success', '1:failed']);
  });

  it('a job that cannot be read counts as failed', async (t) => {
    fakeBasiq(t, [{ status: 401, body: { type: 'list', data: [{ code: 'unauthorized-access', title: 'Unauthorized' }] } }]);
    const got = await followJobs({ apiUrl: 'https://b', jobIds: ['a'], keeper, interval: 0 });
    assert.equal(got.state, 'failed');
    assert.match(got.message, /unauthorized-access, HTTP 401/);
  });
});

describe('institutions', () => {
  let keeper;
  beforeEach(() => { keeper = keeperFor(['tok-1']); });
  afterEach(() => keeper.stop());

  it('reads the list with the token, keeps good entries, sorts by name', async (t) => {
    const requests = fakeBasiq(t, [{ status: 200, body: { type: 'list', data: [
      { id: 'AU00002', name: 'Zed Business', loginIdCaption: 'User ID', passwordCaption: 'Password', secondaryLoginIdCaption: 'Customer number' },
      { id: '<bad>', name: 'Broken' },
      { id: 'AU00000', name: 'Hooli', loginIdCaption: 'Login ID', passwordCaption: 'Password' },
    ] } }]);
    const got = await fetchInstitutions({ apiUrl: 'https://b/', keeper });
    assert.equal(requests[0].url, 'https://b/institutions');
    assert.equal(requests[0].init.headers.Authorization, 'Bearer tok-1');
    assert.deepEqual(got.map((i) => i.id), ['AU00000', 'AU00002']);
    assert.equal(got[1].secondaryLoginIdCaption, 'Customer number');
    assert.equal(got[0].secondaryLoginIdCaption, '');
  });

  const cases = [
    { name: 'unknown bank: defaults', inst: null, want: { loginId: 'Bank login ID', password: 'Bank password', securityCode: '', secondaryLoginId: '' } },
    { name: 'the bank names its fields', inst: { loginIdCaption: 'User ID', passwordCaption: 'PIN', securityCodeCaption: 'Token', secondaryLoginIdCaption: 'Customer number' },
      want: { loginId: 'User ID', password: 'PIN', securityCode: 'Token', secondaryLoginId: 'Customer number' } },
  ];
  for (const tc of cases) it(`loginFields: ${tc.name}`, () => assert.deepEqual(loginFields(tc.inst), tc.want));
});

describe('MFA', () => {
  let keeper;
  beforeEach(() => { keeper = keeperFor(['tok-1', 'tok-2']); });
  afterEach(() => keeper.stop());
  const waiting = { status: 200, body: { steps: [{ title: 'verify-credentials', status: 'in-progress', result: { type: 'mfa-challenge', label: 'Enter the code.' } }] } };
  const done = { status: 200, body: { steps: [{ title: 'verify-credentials', status: 'success' }] } };

  it('finds the challenge and its prompt', () => {
    assert.deepEqual(mfaChallenge(waiting.body.steps), { prompt: 'Enter the code.' });
    assert.equal(mfaChallenge(done.body.steps), null);
    assert.deepEqual(mfaChallenge([{ title: 'mfa-challenge', status: 'in-progress' }]), { prompt: 'Enter the code your bank sent you.' });
  });

  it('asks once, posts the answer once to Basiq, then follows the job', async (t) => {
    const requests = fakeBasiq(t, [waiting, { status: 202, body: { type: 'job', id: 'j' } }, waiting, done]);
    const asked = [];
    const got = await pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0, onMfa: async (c) => { asked.push(c.prompt); return '123456'; } });
    assert.equal(got.state, 'success');
    assert.deepEqual(asked, ['Enter the code.']);
    const posts = requests.filter((r) => r.init.method === 'POST');
    assert.equal(posts.length, 1);
    assert.equal(posts[0].url, 'https://b/jobs/j/mfa');
    assert.deepEqual(JSON.parse(posts[0].init.body), { 'mfa-response': ['123456'] });
  });

  it('without a way to ask, says so instead of polling for ten minutes', async (t) => {
    fakeBasiq(t, [waiting]);
    await assert.rejects(pollJob({ apiUrl: 'https://b', jobId: 'j', keeper, interval: 0 }), { code: 'mfa_required' });
  });
});
