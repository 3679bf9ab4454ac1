import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { endSessionUrl, loginErrorMessage, loginMethods, readLoginError } from '../login.js';

describe('readLoginError', () => {
  const cases = [
    { name: 'absent', search: '?tab=1', want: null },
    { name: 'empty', search: '', want: null },
    { name: 'known code', search: '?login_error=idp_unavailable', want: { search: '', has: 'cannot be reached' } },
    { name: 'keeps other params', search: '?a=1&login_error=nonce_mismatch', want: { search: '?a=1', has: '(nonce_mismatch)' } },
    { name: 'markup is not echoed', search: '?login_error=%3Cimg%20src%3Dx%3E', want: { search: '', has: 'refused. Please' } },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const got = readLoginError(tc.search);
      if (tc.want === null) return assert.equal(got, null);
      assert.equal(got.search, tc.want.search);
      assert.ok(got.message.includes(tc.want.has), got.message);
      assert.ok(!got.message.includes('<'));
    });
  }
  it('every code the BFF sends has its own sentence', () => {
    for (const code of ['idp_unavailable', 'idp_denied', 'login_expired', 'state_mismatch', 'callback_replayed',
      'account_disabled', 'account_conflict', 'email_missing', 'email_not_allowed', 'oidc_not_configured']) {
      assert.ok(!loginErrorMessage(code).includes(`(${code})`), code);
    }
  });
});

describe('loginMethods', () => {
  const oidc = { password: true, oidc: { display_name: 'Acme SSO', start_url: '/auth/oidc/start?tenant=acme' } };
  const cases = [
    { name: 'no login block: password only', tenant: { id: 'a' }, opts: {}, want: { password: true, oidc: null } },
    { name: 'both', tenant: { login: oidc }, opts: { returnTo: '/accounts?x=1' },
      want: { password: true, oidc: { label: 'Sign in with Acme SSO', href: '/auth/oidc/start?tenant=acme&return_to=%2Faccounts%3Fx%3D1' } } },
    { name: 'provider only, BFF elsewhere', tenant: { login: { ...oidc, password: false } }, opts: { origin: 'https://bff.example' },
      want: { password: false, oidc: { label: 'Sign in with Acme SSO', href: 'https://bff.example/auth/oidc/start?tenant=acme&return_to=%2F' } } },
    { name: 'offsite return_to becomes /', tenant: { login: oidc }, opts: { returnTo: '//evil.example' },
      want: { password: true, oidc: { label: 'Sign in with Acme SSO', href: '/auth/oidc/start?tenant=acme&return_to=%2F' } } },
    { name: 'a foreign start URL is ignored', tenant: { login: { password: true, oidc: { start_url: 'https://evil.example/' } } }, opts: {},
      want: { password: true, oidc: null } },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.deepEqual(loginMethods(tc.tenant, tc.opts), tc.want));
  }
});

describe('endSessionUrl', () => {
  const cases = [
    { name: 'none (204)', body: null, want: null },
    { name: 'https', body: { end_session_url: 'https://idp.example/logout?client_id=bff' }, want: 'https://idp.example/logout?client_id=bff' },
    { name: 'javascript is refused', body: { end_session_url: 'javascript:alert(1)' }, want: null },
    { name: 'garbage', body: { end_session_url: 'not a url' }, want: null },
  ];
  for (const tc of cases) {
    it(tc.name, () => assert.equal(endSessionUrl(tc.body), tc.want));
  }
});
