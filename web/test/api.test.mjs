import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ApiError, bffOrigin, createBff, describeError, retryAfterSeconds } from '../api.js';

describe('retryAfterSeconds', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cases = [
    { name: 'absent', value: null, want: null },
    { name: 'empty', value: '', want: null },
    { name: 'delta seconds', value: '12', want: 12 },
    { name: 'padded', value: ' 3 ', want: 3 },
    { name: 'HTTP date', value: 'Thu, 01 Jan 2026 00:00:30 GMT', want: 30 },
    { name: 'date in the past', value: 'Wed, 31 Dec 2025 00:00:00 GMT', want: 0 },
    { name: 'garbage', value: 'soon', want: null },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(retryAfterSeconds(tc.value, now), tc.want));
  }
});

describe('describeError', () => {
  const cases = [
    {
      name: 'BFF envelope',
      body: { error: { code: 'invalid_credentials', message: 'Email or password is wrong.' } },
      want: { code: 'invalid_credentials', message: 'Email or password is wrong.' },
    },
    {
      name: 'Basiq envelope, detail first',
      body: { type: 'list', data: [{ type: 'error', code: 'access-denied', title: 'Access denied.', detail: 'Token has expired' }] },
      want: { code: 'access-denied', message: 'Token has expired' },
    },
    {
      name: 'Basiq envelope, title only',
      body: { type: 'list', data: [{ type: 'error', code: 'invalid-authorization-token', title: 'Invalid authorization token.' }] },
      want: { code: 'invalid-authorization-token', message: 'Invalid authorization token.' },
    },
    { name: 'no body', body: null, want: { code: 'http_error', message: 'The request failed (HTTP 502).' } },
    { name: 'unknown shape', body: { oops: true }, want: { code: 'http_error', message: 'The request failed (HTTP 502).' } },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.deepEqual(describeError(tc.body, 502), tc.want));
  }
});

describe('bffOrigin', () => {
  const docWith = (content) => ({
    querySelector: () => (content === undefined ? null : { getAttribute: () => content }),
  });
  const cases = [
    { name: 'no meta', content: undefined, want: '' },
    { name: 'empty meta', content: '', want: '' },
    { name: 'origin with trailing slash', content: 'https://bff.example.com/', want: 'https://bff.example.com' },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(bffOrigin(docWith(tc.content)), tc.want));
  }
});

// recorder is a fetch that records each request and answers with the next scripted Response.
function recorder(...answers) {
  const requests = [];
  const fetchImpl = async (url, init) => {
    requests.push({ url, init });
    const answer = answers.shift();
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { requests, fetchImpl };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });

describe('createBff', () => {
  it('sends the CSRF header and the same-origin cookie, and parses JSON', async () => {
    const { requests, fetchImpl } = recorder(json(200, { tenants: [] }));
    const got = await createBff({ origin: '', fetchImpl }).get('/auth/tenants');
    assert.deepEqual(got, { tenants: [] });
    const { url, init } = requests[0];
    assert.equal(url, '/auth/tenants');
    assert.equal(init.method, 'GET');
    assert.equal(init.headers['X-CSRF'], '1');
    assert.equal(init.credentials, 'same-origin');
    assert.equal(init.cache, 'no-store');
    assert.equal(init.body, undefined);
    assert.equal(init.headers['Content-Type'], undefined);
  });

  it('posts JSON with credentials included for another origin', async () => {
    const { requests, fetchImpl } = recorder(json(200, { user: { id: 'u1' } }));
    const bff = createBff({ origin: 'https://bff.example.com', fetchImpl });
    await bff.post('/auth/login', { email: 'a@example.com', password: 'pw' });
    const { url, init } = requests[0];
    assert.equal(url, 'https://bff.example.com/auth/login');
    assert.equal(init.credentials, 'include');
    assert.equal(init.headers['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(init.body), { email: 'a@example.com', password: 'pw' });
  });

  it('resolves 204 to null', async () => {
    const { fetchImpl } = recorder(new Response(null, { status: 204 }));
    assert.equal(await createBff({ origin: '', fetchImpl }).post('/auth/logout'), null);
  });

  const failures = [
    {
      name: 'rate limited login',
      answer: json(429, { error: { code: 'too_many_attempts', message: 'Too many attempts.' } }, { 'Retry-After': '42' }),
      want: { status: 429, code: 'too_many_attempts', message: 'Too many attempts.', retryAfter: 42 },
    },
    {
      name: 'store down',
      answer: json(503, { error: { code: 'store_unavailable', message: 'Try again soon.' } }, { 'Retry-After': '1' }),
      want: { status: 503, code: 'store_unavailable', message: 'Try again soon.', retryAfter: 1 },
    },
    {
      name: 'HTML error page',
      answer: new Response('<h1>Bad gateway</h1>', { status: 502, headers: { 'Content-Type': 'text/html' } }),
      want: { status: 502, code: 'http_error', retryAfter: null },
    },
    {
      name: 'network down',
      answer: new TypeError('Failed to fetch'),
      want: { status: 0, code: 'network_error' },
    },
  ];
  for (const tc of failures) {
    it(`rejects with ApiError: ${tc.name}`, async () => {
      const { fetchImpl } = recorder(tc.answer);
      await assert.rejects(createBff({ origin: '', fetchImpl }).get('/client-token'), (err) => {
        assert.ok(err instanceof ApiError);
        for (const [k, v] of Object.entries(tc.want)) assert.equal(err[k], v, k);
        assert.ok(err.message.length > 0);
        return true;
      });
    });
  }
});
