// login.js knows the ways a tenant signs in: a password form, a "Sign in with …" link to the
// tenant's identity provider, or both, as GET /auth/tenants lists them. It also reads the
// ?login_error=<code> a refused provider login lands with, and checks the provider logout URL
// the BFF returns on sign-out.

const LOGIN_ERRORS = {
  idp_unavailable: 'Your organisation’s sign-in service cannot be reached. Please try again shortly.',
  idp_denied: 'Sign-in was cancelled or refused by your organisation’s sign-in service.',
  login_expired: 'The sign-in took too long or was started elsewhere. Please start again.',
  state_mismatch: 'This sign-in was not started in this browser. Please start again.',
  issuer_mismatch: 'The answer came from a different sign-in service than the one asked. Please start again.',
  callback_replayed: 'This sign-in link was already used. Please start again.',
  account_disabled: 'Your account is disabled. Please contact your administrator.',
  account_conflict: 'Another account already uses your email address here. Please contact your administrator.',
  email_missing: 'Your sign-in service did not share your email address, which this site needs.',
  email_not_allowed: 'Your email address is not allowed to sign in here.',
  oidc_not_configured: 'Single sign-on is not set up for this organisation.',
  store_unavailable: 'The service is temporarily unavailable. Please try again shortly.',
};

/** loginErrorMessage turns the code in ?login_error= into a sentence. */
export function loginErrorMessage(code) {
  if (Object.hasOwn(LOGIN_ERRORS, code)) return LOGIN_ERRORS[code];
  // Only a plain code is echoed: the query string is attacker-controllable text.
  const suffix = /^[a-z0-9_-]{1,64}$/i.test(code) ? ` (${code})` : '';
  return `Sign-in was refused${suffix}. Please try again.`;
}

/**
 * readLoginError looks for ?login_error= in a query string: null when absent, else
 * {message, search} where search is the query string without it (for history.replaceState).
 */
export function readLoginError(search) {
  const params = new URLSearchParams(search);
  const code = params.get('login_error');
  if (code === null) return null;
  params.delete('login_error');
  const rest = params.toString();
  return { message: loginErrorMessage(code), search: rest === '' ? '' : `?${rest}` };
}

/**
 * loginMethods reads a tenant of /auth/tenants: {password, oidc: {label, href} | null}. A
 * tenant that says nothing about login has the password form only. href is the start URL on
 * the BFF at origin ('' = this origin), asking to come back to returnTo.
 */
export function loginMethods(tenant, { origin = '', returnTo = '/' } = {}) {
  const login = tenant?.login ?? {};
  const password = login.password !== false;
  const start = login.oidc?.start_url;
  if (typeof start !== 'string' || !start.startsWith('/auth/oidc/start')) return { password, oidc: null };
  const url = new URL(start, 'http://bff.invalid');
  url.searchParams.set('return_to', returnTo.startsWith('/') && !returnTo.startsWith('//') ? returnTo : '/');
  const label = String(login.oidc.display_name || 'your organisation');
  return { password, oidc: { label: `Sign in with ${label}`, href: origin + url.pathname + url.search } };
}

/** endSessionUrl returns the provider logout URL of a POST /auth/logout answer, or null. */
export function endSessionUrl(body) {
  let url;
  try {
    url = new URL(body?.end_session_url);
  } catch {
    return null;
  }
  return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
}
