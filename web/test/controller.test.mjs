import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ApiError } from '../api.js';
import { loginFields } from '../connect.js';
import { createController, NO_BASIQ_USER, SESSION_ENDED, SIGNED_OUT } from '../controller.js';

// The controller runs here with no DOM at all: a view that records what it is told, a BFF
// answering from a table, a keeper the test drives, and the Basiq flows replaced.

const ACME = { id: 'acme', name: 'Acme Lending' };
const BETA = { id: 'beta', name: 'Beta Credit', login: { password: false, oidc: { display_name: 'Beta SSO', start_url: '/auth/oidc/start?tenant=beta' } } };
const me3 = { user: { id: 7, email: 'ann@acme.test', tenant: 'acme', tenant_name: 'Acme Lending', basiq_user_id: 'bu-1' }, basiq: { version: '3.0', api_url: 'https://au-api.basiq.io' } };
const me2 = (basiqUserId) => ({
  user: { id: 8, email: 'bo@beta.test', tenant: 'beta', basiq_user_id: basiqUserId },
  basiq: { version: '2.0', api_url: 'https://au-api.basiq.io' },
});

// recordingView records every call as [method, ...args]; reads answer from `inputs`.
function recordingView(inputs = {}) {
  const calls = [];
  const reads = {
    selectedTenant: () => inputs.tenant ?? '',
    loginForm: () => ({ email: ' ann@acme.test ', password: 'pw', tenant: inputs.tenant ?? '', ...inputs.login }),
    institution: () => inputs.institution ?? '',
    mfaCode: () => inputs.mfaCode ?? '',
    takeBankLogin: () => ({ institution: 'AU00000', loginId: 'gavinBelson', password: 'hooli2016', securityCode: '', secondaryLoginId: '' }),
  };
  const view = new Proxy(
    {},
    {
      get(_, name) {
        return (...args) => {
          calls.push([name, ...args]);
          return reads[name]?.(...args);
        };
      },
    },
  );
  return {
    view,
    calls,
    inputs,
    called: (name) => calls.filter((c) => c[0] === name).map((c) => c.slice(1)),
    last: (name) => calls.filter((c) => c[0] === name).at(-1)?.slice(1),
  };
}

// fakeBff answers each "METHOD path" from a list of answers (a value, an Error to throw, or a
// function of the body), one per call; the last one repeats.
function fakeBff(routes) {
  const requests = [];
  const answer = (method, path, body) => {
    requests.push({ method, path, body });
    const list = routes[`${method} ${path}`];
    if (!list) return Promise.reject(new ApiError(404, 'not_found', `no route ${method} ${path}`));
    const next = list.length > 1 ? list.shift() : list[0];
    const value = typeof next === 'function' ? next(body) : next;
    return value instanceof Error ? Promise.reject(value) : Promise.resolve(value);
  };
  return { requests, get: (path) => answer('GET', path), post: (path, body) => answer('POST', path, body) };
}

// fakeKeeper is what createKeeper returns; the test calls its options' callbacks.
function keeperFactory() {
  const made = [];
  const create = (options) => {
    const keeper = {
      options,
      refreshed: 0,
      stopped: false,
      signedOut: false,
      dueChecks: 0,
      state: { hasToken: false, expiresAt: 0 },
      refresh() {
        keeper.refreshed++;
        return Promise.resolve('token');
      },
      refreshIfDue() {
        keeper.dueChecks++;
      },
      snapshot: () => keeper.state,
      stop() {
        keeper.stopped = true;
      },
      signOut() {
        keeper.signedOut = true;
      },
    };
    made.push(keeper);
    return keeper;
  };
  return { made, create };
}

function setup({ routes = {}, search = '', inputs, basiq = {} } = {}) {
  const v = recordingView(inputs);
  const bff = fakeBff({ 'GET /auth/tenants': [{ tenants: [ACME] }], ...routes });
  const keepers = keeperFactory();
  const page = {
    search,
    pathname: '/app',
    replaced: [],
    assigned: [],
    replaceSearch(s) {
      page.replaced.push(s);
    },
    assign(url) {
      page.assigned.push(url);
    },
  };
  const sleeps = [];
  const timers = { set: 0, cleared: [] };
  const controller = createController({
    bff,
    view: v.view,
    page,
    origin: '',
    createKeeper: keepers.create,
    basiq: {
      fetchInstitutions: async () => [{ id: 'AU00000', name: 'Hooli' }],
      followJobs: async () => ({ state: 'success', message: 'Connected.' }),
      createConnection: async () => 'job-1',
      pollJob: async () => ({ state: 'success' }),
      startConsent: async () => {},
      ...basiq,
    },
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    now: () => 1_000_000,
    setInterval: () => ++timers.set,
    clearInterval: (id) => timers.cleared.push(id),
  });
  return { controller, v, bff, keepers, page, sleeps, timers };
}

// settle lets promise chains the controller started without awaiting run to their end.
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('boot', () => {
  const cases = [
    {
      name: 'signed out: the login form, with the tenant\'s ways in',
      routes: { 'GET /auth/me': [new ApiError(401, 'unauthenticated', 'Please sign in.')] },
      check: ({ v, keepers }) => {
        assert.deepEqual(v.last('showLogin'), ['Please sign in.']);
        assert.deepEqual(v.last('setTenants'), [[{ id: 'acme', name: 'Acme Lending' }]]);
        assert.deepEqual(v.last('setLoginMethods'), [{ password: true, oidc: null }]);
        assert.equal(keepers.made.length, 0);
      },
    },
    {
      name: 'a tenant with a provider only',
      routes: { 'GET /auth/tenants': [{ tenants: [BETA, ACME] }], 'GET /auth/me': [new ApiError(401, 'unauthenticated', 'x')] },
      inputs: { tenant: 'beta' },
      check: ({ v }) => {
        assert.deepEqual(v.last('setLoginMethods'), [
          { password: false, oidc: { label: 'Sign in with Beta SSO', href: '/auth/oidc/start?tenant=beta&return_to=%2Fapp' } },
        ]);
      },
    },
    {
      name: 'demo mode shows the demo account',
      routes: {
        'GET /auth/tenants': [{ tenants: [ACME], demo: true, demo_login: { email: 'demo@acme.test', password: 'demo-password' } }],
        'GET /auth/me': [new ApiError(401, 'unauthenticated', 'x')],
      },
      check: ({ v }) => assert.deepEqual(v.last('setDemo'), [true, 'Demo account: demo@acme.test / demo-password']),
    },
    {
      name: 'no tenant list: the login form all the same',
      routes: { 'GET /auth/tenants': [new ApiError(0, 'network_error', 'down')], 'GET /auth/me': [new ApiError(401, 'unauthenticated', 'x')] },
      check: ({ v }) => {
        assert.equal(v.called('setTenants').length, 0);
        assert.deepEqual(v.last('showLogin'), ['Please sign in.']);
      },
    },
    {
      name: 'an outage is retried, never shown as signed out',
      routes: { 'GET /auth/me': [new ApiError(503, 'store_unavailable', 'Briefly unavailable.', 7), me3] },
      check: ({ v, sleeps }) => {
        assert.equal(v.called('showLogin').length, 0);
        assert.deepEqual(sleeps, [7000]);
        assert.deepEqual(v.called('setStatus')[0], ['Briefly unavailable. Retrying in 7s.']);
        assert.deepEqual(v.last('showSignedIn'), [{ email: 'ann@acme.test', tenant: 'Acme Lending', version: '3.0' }, false]);
      },
    },
    {
      name: 'a refused provider login is shown and taken out of the address',
      search: '?x=1&login_error=idp_denied',
      routes: { 'GET /auth/me': [new ApiError(401, 'unauthenticated', 'x')] },
      check: ({ v, page }) => {
        assert.match(v.called('setLoginError')[0][0], /cancelled or refused/);
        assert.deepEqual(page.replaced, ['?x=1']);
      },
    },
    {
      name: 'a Consent UI error is shown with a way to try again',
      search: '?connect_error=invalid_state',
      routes: { 'GET /auth/me': [me3] },
      check: ({ v, page }) => {
        assert.deepEqual(page.replaced, ['']);
        assert.match(v.last('setResult')[0], /expired or was already used/);
        assert.equal(v.last('setResult')[1], 'error');
        assert.deepEqual(v.last('showConnectRetry'), [true]);
      },
    },
    {
      name: 'an unknown Basiq version cannot connect',
      routes: { 'GET /auth/me': [{ ...me3, basiq: { version: '1.0' } }] },
      check: ({ v }) => {
        const [mode] = v.last('setConnectMode');
        assert.equal(mode.consent, false);
        assert.equal(mode.form, false);
        assert.match(mode.unavailable, /version 1\.0/);
      },
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const env = setup(tc);
      await env.controller.boot();
      await settle();
      tc.check(env);
    });
  }

  it('follows the jobs the Consent UI sent back, step by step', async () => {
    const env = setup({
      search: '?jobIds=j-1,j-2',
      routes: { 'GET /auth/me': [me3] },
      basiq: {
        followJobs: async ({ jobIds, onProgress }) => {
          assert.deepEqual(jobIds, ['j-1', 'j-2']);
          onProgress(1, { steps: [{ title: 'verify-credentials', status: 'success' }] });
          return { state: 'success', message: 'Both banks are connected.' };
        },
      },
    });
    await env.controller.boot();
    await settle();
    assert.deepEqual(env.v.last('setSteps'), [[{ title: 'Bank 2: verify-credentials', status: 'success' }]]);
    assert.deepEqual(env.v.last('setResult'), ['Both banks are connected.', 'ok']);
    assert.deepEqual(env.v.last('showConnectAnother'), [true]);
  });
});

describe('login', () => {
  it('a refusal is shown on the form, with the wait of a 429', async () => {
    const env = setup({
      routes: { 'POST /auth/login': [new ApiError(429, 'rate_limited', 'Too many attempts.', 30)] },
    });
    await env.controller.login();
    assert.deepEqual(env.v.called('setLoginBusy'), [[true], [false]]);
    assert.deepEqual(env.v.last('setLoginError'), ['Too many attempts. Try again in 30 seconds.']);
    assert.equal(env.v.called('focusPassword').length, 1);
    assert.equal(env.v.called('clearPassword').length, 0);
  });

  it('success forgets the password and opens the signed-in view with focus', async () => {
    const env = setup({ inputs: { tenant: 'acme' }, routes: { 'POST /auth/login': [{ ok: true }], 'GET /auth/me': [me3] } });
    await env.controller.login();
    const post = env.bff.requests.find((r) => r.path === '/auth/login');
    assert.deepEqual(post.body, { email: 'ann@acme.test', password: 'pw', tenant: 'acme' });
    assert.equal(env.v.called('clearPassword').length, 1);
    assert.deepEqual(env.v.last('showSignedIn')[1], true);
    assert.equal(env.keepers.made.length, 1);
    assert.equal(env.keepers.made[0].options.scope, 'acme:7');
    assert.equal(env.keepers.made[0].refreshed, 1);
  });
});

describe('the token', () => {
  const cases = [
    { name: 'first fetch', state: { phase: 'refreshing', hasToken: false }, status: 'Getting a Basiq token…' },
    { name: 'ready', state: { phase: 'ready', refreshedAt: 0 }, status: /^Basiq token ready \(refreshed at .+\)\.$/ },
    {
      name: 'retrying',
      state: { phase: 'retrying', retryAt: 1_004_200, error: new ApiError(503, 'upstream_unavailable', 'Basiq is down.') },
      status: 'Basiq is unavailable, retrying in 5s. Basiq is down.',
    },
    { name: 'failed', state: { phase: 'failed', error: new Error('boom') }, status: 'Could not get a Basiq token: Something went wrong. Please try again.' },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const env = setup({ routes: { 'GET /auth/me': [me3] } });
      await env.controller.boot();
      const keeper = env.keepers.made[0];
      keeper.state = { hasToken: true, expiresAt: 1_000_000 + 61_500 };
      keeper.options.onChange(tc.state);
      if (tc.status instanceof RegExp) assert.match(env.v.last('setStatus')[0], tc.status);
      else assert.deepEqual(env.v.last('setStatus'), [tc.status]);
      assert.deepEqual(env.v.last('setTokenExpiry'), ['01:02']);
    });
  }

  it('a keeper replaced by a later sign-in no longer draws', async () => {
    const env = setup({ routes: { 'GET /auth/me': [me3], 'POST /auth/login': [{ ok: true }] } });
    await env.controller.boot();
    const old = env.keepers.made[0];
    await env.controller.login();
    assert.equal(env.keepers.made.length, 2);
    assert.equal(old.stopped, true);
    const before = env.v.calls.length;
    old.options.onChange({ phase: 'failed', error: new Error('late') });
    assert.equal(env.v.calls.length, before);
  });

  it('a 401 for the token ends the session everywhere on the page', async () => {
    const env = setup({ routes: { 'GET /auth/me': [me3] } });
    await env.controller.boot();
    const keeper = env.keepers.made[0];
    keeper.options.onUnauthenticated();
    await settle();
    assert.equal(keeper.stopped, true);
    assert.deepEqual(env.timers.cleared, [1]);
    assert.equal(env.v.called('resetApp').length, 1);
    assert.deepEqual(env.v.last('showLogin'), [SESSION_ENDED]);
    // Nothing of the session is drawn after it ended.
    const before = env.v.calls.length;
    keeper.options.onChange({ phase: 'ready', refreshedAt: 0 });
    assert.equal(env.v.calls.length, before);
  });

  it('a visible tab and a page restored from the cache catch up on a missed refresh', async () => {
    const env = setup({ routes: { 'GET /auth/me': [me3] } });
    env.controller.visible(); // signed out: nothing to do
    await env.controller.boot();
    env.controller.visible();
    env.controller.restored();
    assert.equal(env.keepers.made[0].dueChecks, 2);
    assert.deepEqual(env.v.last('setConsentBusy'), [false]);
  });
});

describe('the Basiq user of a 2.x person', () => {
  const cases = [
    { name: 'created with the first token', recheck: me2('bu-9'), want: null },
    { name: 'still missing: say so', recheck: me2(''), want: [NO_BASIQ_USER, 'error'] },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const env = setup({ routes: { 'GET /auth/me': [me2(''), tc.recheck] } });
      await env.controller.boot();
      assert.equal(env.v.called('setResult').length, 0); // not said before the first token
      env.keepers.made[0].options.onChange({ phase: 'ready', refreshedAt: 0 });
      await settle();
      const results = env.v.called('setResult');
      if (tc.want === null) assert.equal(results.length, 0);
      else assert.deepEqual(results.at(-1), tc.want);
    });
  }

  it('a failed recheck is asked again by the connect form, not reported as missing', async () => {
    const env = setup({ routes: { 'GET /auth/me': [me2(''), new ApiError(503, 'store_unavailable', 'Briefly unavailable.'), me2('bu-9')] } });
    await env.controller.boot();
    env.keepers.made[0].options.onChange({ phase: 'ready', refreshedAt: 0 });
    await settle();
    assert.equal(env.v.called('setResult').length, 0);
    await env.controller.connect();
    assert.deepEqual(env.v.last('setResult'), ['Connected. Your bank account is linked.', 'ok']);
  });

  it('the bank list fills the institution field and its login fields', async () => {
    const env = setup({ inputs: { institution: 'AU00000' }, routes: { 'GET /auth/me': [me2('bu-9')] } });
    await env.controller.boot();
    await settle();
    assert.deepEqual(env.v.last('setInstitutions'), [[{ id: 'AU00000', name: 'Hooli' }]]);
    assert.deepEqual(env.v.last('setInstitutionHint'), ['Hooli (AU00000)']);
    assert.deepEqual(env.v.last('setBankFields'), [loginFields({ id: 'AU00000', name: 'Hooli' })]);
  });
});

describe('connect (2.x)', () => {
  it('sends the form, asks for the one-time code, and says when it is connected', async () => {
    let created;
    const env = setup({
      inputs: { mfaCode: ' 123456 ' },
      routes: { 'GET /auth/me': [me2('bu-9')] },
      basiq: {
        createConnection: async (args) => {
          created = args;
          return 'job-1';
        },
        pollJob: async ({ jobId, onProgress, onMfa }) => {
          assert.equal(jobId, 'job-1');
          onProgress({ steps: [{ title: 'verify-credentials', status: 'in-progress' }] });
          assert.equal(await onMfa({ prompt: 'Enter the code we sent' }), '123456');
          return { state: 'success' };
        },
      },
    });
    await env.controller.boot();
    const done = env.controller.connect();
    await settle();
    assert.deepEqual(env.v.last('askMfa'), ['Enter the code we sent']);
    env.controller.mfa();
    await done;
    assert.equal(created.userId, 'bu-9');
    assert.equal(created.fields.password, 'hooli2016');
    assert.equal(env.v.called('takeBankLogin').length, 1);
    assert.equal(env.v.called('closeMfa').length, 1);
    assert.deepEqual(env.v.called('setConnectBusy'), [[true], [false]]);
    assert.deepEqual(env.v.last('setResult'), ['Connected. Your bank account is linked.', 'ok']);
  });

  it('an empty code is not sent', async () => {
    const env = setup({ inputs: { mfaCode: '  ' }, routes: { 'GET /auth/me': [me2('bu-9')] } });
    await env.controller.boot();
    env.controller.mfa();
    assert.equal(env.v.called('closeMfa').length, 0);
  });

  it('a failed job says why', async () => {
    const env = setup({
      routes: { 'GET /auth/me': [me2('bu-9')] },
      basiq: { pollJob: async () => ({ state: 'failed', message: 'The bank refused the login.' }) },
    });
    await env.controller.boot();
    await env.controller.connect();
    assert.deepEqual(env.v.last('setResult'), ['The connection failed: The bank refused the login.', 'error']);
  });
});

describe('consent (3.0)', () => {
  const cases = [
    { name: 'goes to Basiq, buttons stay disabled', err: null, want: { busy: [[true]], result: ['Opening Basiq…', 'info'], login: 0 } },
    {
      name: 'a refusal is shown and the buttons come back',
      err: new ApiError(503, 'upstream_unavailable', 'Basiq is unavailable.'),
      want: { busy: [[true], [false]], result: ['Basiq is unavailable.', 'error'], login: 0 },
    },
    { name: 'a 401 ends the session', err: new ApiError(401, 'unauthenticated', 'x'), want: { busy: [[true], [false]], login: 1 } },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      let asked;
      const env = setup({
        routes: { 'GET /auth/me': [me3] },
        basiq: {
          startConsent: async (bff, options, assign) => {
            asked = { options, assign };
            if (tc.err) throw tc.err;
          },
        },
      });
      await env.controller.boot();
      await env.controller.consent({ action: 'manage' });
      await settle();
      assert.deepEqual(asked.options, { action: 'manage' });
      assert.equal(asked.assign, env.page.assign);
      assert.deepEqual(env.v.called('setConsentBusy'), tc.want.busy);
      if (tc.want.result) assert.deepEqual(env.v.last('setResult'), tc.want.result);
      assert.equal(env.v.called('showLogin').length, tc.want.login);
    });
  }
});

describe('logout', () => {
  const cases = [
    { name: 'signed out', answer: { ok: true }, want: { login: SIGNED_OUT } },
    { name: 'already signed out at the BFF', answer: new ApiError(401, 'unauthenticated', 'x'), want: { login: SIGNED_OUT } },
    { name: 'not confirmed', answer: new ApiError(503, 'store_unavailable', 'Briefly unavailable.'), want: { login: /did not confirm the sign-out: Briefly unavailable\.$/ } },
    { name: 'at the provider too', answer: { end_session_url: 'https://idp.example/logout?x=1' }, want: { assigned: 'https://idp.example/logout?x=1' } },
    { name: 'a provider URL that is not http(s) is not followed', answer: { end_session_url: 'javascript:alert(1)' }, want: { login: SIGNED_OUT } },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const env = setup({ routes: { 'GET /auth/me': [me3], 'POST /auth/logout': [tc.answer] } });
      await env.controller.boot();
      const keeper = env.keepers.made[0];
      await env.controller.logout();
      assert.equal(keeper.signedOut, true);
      assert.equal(keeper.stopped, true);
      assert.equal(env.v.called('resetApp').length, 1);
      if (tc.want.assigned) {
        assert.deepEqual(env.page.assigned, [tc.want.assigned]);
        assert.equal(env.v.called('showLogin').length, 0);
        return;
      }
      assert.deepEqual(env.page.assigned, []);
      const [message] = env.v.last('showLogin');
      if (tc.want.login instanceof RegExp) assert.match(message, tc.want.login);
      else assert.equal(message, tc.want.login);
    });
  }

  it('does nothing when signed out', async () => {
    const env = setup();
    await env.controller.logout();
    assert.equal(env.bff.requests.length, 0);
  });
});

it('runs without a DOM', () => {
  assert.equal(globalThis.document, undefined);
});
