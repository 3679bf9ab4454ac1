// app.js is the entry point: it chooses between the login form and the signed-in view, and wires
// the token keeper and the connection flows to the page.

import { ApiError, backoffMs, bffOrigin, createBff, createSharedTokenKeeper, StoppedError } from './client.js';
import {
  createConnection,
  delay,
  fetchInstitutions,
  followJobs,
  loginFields,
  pollJob,
  readReturn,
  startConsent,
} from './connect.js';
import { endSessionUrl, loginMethods, readLoginError } from './login.js';
import { byId, formatClock, formatCountdown, renderSteps, setMessage, setText, show } from './ui.js';

const SESSION_ENDED = 'Your session has ended. Please sign in again.';
const NO_BASIQ_USER =
  'Your account has no Basiq user yet, so a bank cannot be connected. Please contact support.';
const CONNECTABLE = new Set(['2.0', '2.1', '3.0']);

const bff = createBff();

// The signed-in state, null while signed out: {user, basiq, keeper, abort, ticker, userChecked}.
// endSession tears all of it down.
let session = null;
// [{id, name}] once /auth/tenants answered.
let tenants = null;
// The Consent UI return, handled once the signed-in view is up: {ok:false, message} for an
// error, {jobIds} for jobs to follow (none: nothing was connected).
let notice = null;

function describe(err) {
  return err instanceof ApiError ? err.message : 'Something went wrong. Please try again.';
}

function isCancel(err) {
  return err instanceof StoppedError || err?.name === 'AbortError';
}

async function boot() {
  byId('login-form').addEventListener('submit', onLogin);
  byId('logout').addEventListener('click', onLogout);
  byId('connect-consent').addEventListener('click', () => onConsent({}));
  byId('connect-retry').addEventListener('click', () => onConsent({}));
  byId('connect-another').addEventListener('click', () => onConsent({ action: 'connect' }));
  byId('manage-consent').addEventListener('click', () => onConsent({ action: 'manage' }));
  byId('connect-form').addEventListener('submit', onConnect);
  byId('institution').addEventListener('input', () => applyInstitution(session));
  byId('mfa-form').addEventListener('submit', onMfa);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') session?.keeper.refreshIfDue();
  });
  // Back from the Consent UI through the back/forward cache: timers were frozen meanwhile.
  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return;
    setConsentButtons(false);
    session?.keeper.refreshIfDue();
  });

  byId('tenant').addEventListener('change', renderLoginMethods);
  const refused = readLoginError(location.search);
  if (refused !== null) {
    setMessage('login-error', refused.message, 'error');
    history.replaceState(history.state, '', `${location.pathname}${refused.search}${location.hash}`);
  }
  const back = readReturn(location.search);
  if (back !== null) {
    notice = back;
    history.replaceState(history.state, '', `${location.pathname}${back.search}${location.hash}`);
  }
  await loadTenants(); // also says whether this is demo mode
  await loadSession(false);
}

// loadSession asks who is signed in. Only a 401 means the login form: a BFF or session store
// that is briefly down is retried, so an outage never looks like being signed out.
async function loadSession(focus) {
  for (let attempt = 0; ; attempt++) {
    let me;
    try {
      me = await bff.get('/auth/me');
    } catch (err) {
      if (err?.status === 401) {
        await showLogin('Please sign in.');
        return;
      }
      const wait = backoffMs(attempt, err?.retryAfter);
      setText('status', `${describe(err)} Retrying in ${Math.ceil(wait / 1000)}s.`);
      await delay(wait);
      continue;
    }
    enterApp(me, focus);
    return;
  }
}

async function loadTenants() {
  if (tenants !== null) return;
  try {
    const body = await bff.get('/auth/tenants');
    tenants = Array.isArray(body?.tenants) ? body.tenants : [];
    show('demo-banner', body?.demo === true);
    showDemoLogin(body?.demo === true ? body.demo_login : null);
  } catch {
    // Without the list the tenant is left out of the login, and the BFF uses its only tenant.
    return;
  }
  const options = tenants.map((t) => new Option(String(t.name || t.id), String(t.id)));
  byId('tenant').replaceChildren(...options);
  show('tenant-field', tenants.length > 1);
  renderLoginMethods();
}

// renderLoginMethods shows the chosen tenant's ways in: the password form, a "Sign in with …"
// link to its identity provider, or both.
function renderLoginMethods() {
  const chosen = tenants?.find((t) => String(t.id) === byId('tenant').value) ?? tenants?.[0];
  const methods = loginMethods(chosen, { origin: bffOrigin(), returnTo: location.pathname });
  show('password-fields', methods.password);
  byId('email').required = methods.password;
  byId('password').required = methods.password;
  show('oidc-block', methods.oidc !== null);
  if (methods.oidc !== null) {
    const link = byId('oidc-start');
    link.href = methods.oidc.href;
    link.textContent = methods.oidc.label;
  }
}

// showDemoLogin puts the demo account on the login form: it exists only in demo mode.
function showDemoLogin(login) {
  const ok = typeof login?.email === 'string' && typeof login?.password === 'string';
  if (ok) setText('demo-login', `Demo account: ${login.email} / ${login.password}`);
  show('demo-login', ok);
}

async function showLogin(message) {
  show('app-view', false);
  await loadTenants();
  if (session !== null) return; // signed in meanwhile (another path won the race)
  show('login-view', true);
  setText('status', message);
  (byId('password-fields').hidden ? byId('oidc-start') : byId('email')).focus();
}

async function onLogin(event) {
  event.preventDefault();
  const submit = byId('login-submit');
  const password = byId('password');
  setMessage('login-error', '', 'error');
  const body = { email: byId('email').value.trim(), password: password.value };
  const tenant = byId('tenant').value;
  if (tenant) body.tenant = tenant;
  submit.disabled = true;
  try {
    await bff.post('/auth/login', body);
  } catch (err) {
    let text = describe(err);
    if (err?.status === 429 && err.retryAfter != null) {
      text += ` Try again in ${err.retryAfter} seconds.`;
    }
    setMessage('login-error', text, 'error');
    password.focus();
    return;
  } finally {
    submit.disabled = false;
  }
  password.value = '';
  await loadSession(true);
}

function enterApp(me, focus) {
  endSession();
  const user = me?.user ?? {};
  const basiq = me?.basiq ?? {};
  // One token for every tab of this user: the tabs elect a leader that alone calls the BFF.
  const keeper = createSharedTokenKeeper({
    scope: `${user.tenant}:${user.id}`,
    onSignedOut: () => signedOut('You are signed out.'),
    fetchToken: () => bff.get('/client-token'),
    onChange: (state) => {
      if (session?.keeper !== keeper) return;
      renderToken(state);
      if (state.phase === 'ready' && !session.userChecked) recheckUser(session);
    },
    onUnauthenticated: () => signedOut(SESSION_ENDED),
  });
  session = {
    user,
    basiq,
    keeper,
    abort: new AbortController(),
    ticker: setInterval(tick, 1000),
    // The BFF creates the person's Basiq user with their first token, so a /auth/me answered
    // before that has no basiq_user_id yet: it is asked again once, after the first token.
    userChecked: Boolean(user.basiq_user_id),
  };

  setText('user-email', String(user.email ?? ''));
  setText('user-tenant', String(user.tenant_name || user.tenant || ''));
  setText('basiq-version', String(basiq.version ?? 'unknown'));
  show('login-view', false);
  show('app-view', true);
  if (focus) byId('session-heading').focus();

  // Outcomes reach the page through onChange/onUnauthenticated; the catch only marks it handled.
  keeper.refresh().catch(() => {});
  renderConnect();
  if (basiq.version === '2.0' || basiq.version === '2.1') loadInstitutions(session);
}

// loadInstitutions fetches Basiq's bank list once per signed-in session (kept in memory with
// the session, never in storage) and offers it in the institution field.
async function loadInstitutions(current) {
  let list;
  try {
    list = await fetchInstitutions({ apiUrl: current.basiq.api_url, keeper: current.keeper, signal: current.abort.signal });
  } catch (err) {
    if (session !== current || isCancel(err)) return;
    setText('institution-hint', `The bank list could not be loaded (${describe(err)}); enter the institution id.`);
    return;
  }
  if (session !== current) return;
  current.institutions = list;
  byId('institution-list').replaceChildren(...list.map((inst) => new Option(inst.name, inst.id)));
  applyInstitution(current);
}

// applyInstitution shows the login fields the chosen bank asks for, with its own labels.
function applyInstitution(current) {
  if (current === null) return;
  const id = byId('institution').value.trim();
  const inst = (current.institutions ?? []).find((i) => i.id === id) ?? null;
  const fields = loginFields(inst);
  setText('login-id-label', fields.loginId);
  setText('bank-password-label', fields.password);
  setText('security-code-label', fields.securityCode || 'Security code (optional)');
  byId('security-code').required = fields.securityCode !== '';
  setText('secondary-login-label', fields.secondaryLoginId || 'Secondary login ID');
  show('secondary-login-field', fields.secondaryLoginId !== '');
  byId('secondary-login-id').required = fields.secondaryLoginId !== '';
  if (current.institutions) {
    setText('institution-hint', inst ? `${inst.name} (${inst.id})` : 'Type to search the list of banks.');
  }
}

// askMfa shows the bank's one-time code prompt and resolves to the answer; onMfa submits it.
function askMfa(current, challenge) {
  return new Promise((resolve, reject) => {
    current.abort.signal.addEventListener('abort', () => reject(current.abort.signal.reason), { once: true });
    current.mfaAnswer = resolve;
    setText('mfa-prompt', challenge.prompt);
    byId('mfa-code').value = '';
    show('mfa-form', true);
    byId('mfa-submit').disabled = false;
    byId('mfa-code').focus();
    setMessage('connect-result', 'Your bank is asking for a one-time code.');
  });
}

function onMfa(event) {
  event.preventDefault();
  const current = session;
  const answer = byId('mfa-code').value.trim();
  if (current === null || !current.mfaAnswer || answer === '') return;
  const resolve = current.mfaAnswer;
  current.mfaAnswer = null;
  // The code goes to Basiq once; the field keeps no copy.
  byId('mfa-code').value = '';
  byId('mfa-submit').disabled = true;
  show('mfa-form', false);
  setMessage('connect-result', 'Basiq is connecting to your bank…');
  resolve(answer);
}

function renderConnect() {
  const { version } = session.basiq;
  show('consent-block', version === '3.0');
  show('connect-form', version === '2.0' || version === '2.1');
  show('connect-unavailable', !CONNECTABLE.has(version));
  if (!CONNECTABLE.has(version)) {
    setText(
      'connect-unavailable',
      `This organisation uses Basiq API version ${version ?? 'unknown'}, which this page cannot connect with.`,
    );
  } else if (version !== '3.0' && !session.user.basiq_user_id) {
    if (session.userChecked) setMessage('connect-result', NO_BASIQ_USER, 'error');
  } else if (byId('connect-result').textContent === NO_BASIQ_USER) {
    setMessage('connect-result', '');
  }
  if (notice !== null) {
    const back = notice;
    notice = null;
    if (back.jobIds) {
      followReturn(session, back.jobIds);
    } else {
      setMessage('connect-result', back.message, 'error');
      show('connect-retry', version === '3.0');
    }
  }
}

// followReturn follows the jobs the Consent UI sent back and says what really happened: each
// step as it goes, "connected" only when every job succeeded.
async function followReturn(current, jobIds) {
  const steps = byId('job-steps');
  const perJob = jobIds.map(() => []);
  const draw = () => {
    const all = perJob.flatMap((list, i) =>
      list.map((step) => (jobIds.length > 1 ? { ...step, title: `Bank ${i + 1}: ${step?.title ?? 'step'}` } : step)),
    );
    renderSteps(steps, all);
  };
  if (jobIds.length > 0) setMessage('connect-result', 'Checking what Basiq connected…');
  let outcome;
  try {
    outcome = await followJobs({
      apiUrl: current.basiq.api_url,
      jobIds,
      keeper: current.keeper,
      signal: current.abort.signal,
      onProgress: (index, progress) => {
        perJob[index] = progress.steps;
        draw();
      },
    });
  } catch (err) {
    if (session !== current || isCancel(err)) return;
    setMessage('connect-result', describe(err), 'error');
    show('connect-retry', true);
    return;
  }
  if (session !== current) return;
  switch (outcome.state) {
    case 'success':
      setMessage('connect-result', outcome.message, 'ok');
      show('connect-another', true);
      break;
    case 'none':
      setMessage('connect-result', outcome.message, 'info');
      break;
    default:
      setMessage('connect-result', outcome.message, 'error');
      show('connect-retry', true);
  }
}

function setConsentButtons(disabled) {
  for (const id of ['connect-consent', 'connect-another', 'manage-consent', 'connect-retry']) byId(id).disabled = disabled;
}

// recheckUser asks /auth/me again for a Basiq user id the first answer did not have yet, and
// redraws the connect area. It resolves to the error of a failed attempt, else null. A failure
// leaves the user unchecked, so the next token or the connect form asks again instead of telling
// the person to contact support over a blip.
async function recheckUser(current) {
  current.userChecked = true;
  let me;
  try {
    me = await bff.get('/auth/me');
  } catch (err) {
    if (session !== current) return null;
    if (err?.status === 401) {
      signedOut(SESSION_ENDED);
      return null;
    }
    current.userChecked = false;
    return err;
  }
  if (session !== current) return null;
  if (me?.user) current.user = me.user;
  renderConnect();
  return null;
}

function renderToken(state) {
  switch (state.phase) {
    case 'refreshing':
      if (!state.hasToken) setText('status', 'Getting a Basiq token…');
      break;
    case 'ready': {
      const at = formatClock(state.refreshedAt);
      setText('token-refreshed', at);
      setText('status', `Basiq token ready (refreshed at ${at}).`);
      break;
    }
    case 'retrying': {
      const seconds = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
      setText('status', `Basiq is unavailable, retrying in ${seconds}s. ${describe(state.error)}`);
      break;
    }
    case 'failed':
      setText('status', `Could not get a Basiq token: ${describe(state.error)}`);
      break;
    default:
      break;
  }
  tick();
}

function tick() {
  if (session === null) return;
  const { hasToken, expiresAt } = session.keeper.snapshot();
  setText('token-expiry', hasToken ? formatCountdown(expiresAt - Date.now()) : '--:--');
}

// endSession forgets everything the signed-in view held: the token, its timers, running polls.
function endSession() {
  if (session === null) return;
  const ended = session;
  session = null;
  clearInterval(ended.ticker);
  ended.abort.abort();
  ended.keeper.stop();

  show('app-view', false);
  for (const id of ['user-email', 'user-tenant', 'basiq-version', 'connect-unavailable']) setText(id, '');
  setText('token-expiry', '--:--');
  setText('token-refreshed', 'not yet');
  byId('connect-form').reset();
  byId('connect-submit').disabled = false;
  setConsentButtons(false);
  show('connect-another', false);
  show('connect-retry', false);
  byId('job-steps').replaceChildren();
  byId('institution-list').replaceChildren();
  show('mfa-form', false);
  show('secondary-login-field', false);
  setMessage('connect-result', '');
}

function signedOut(message) {
  endSession();
  showLogin(message).catch(() => {});
}

async function onLogout() {
  if (session === null) return;
  // Forget the token and stop the timers first, whatever the server says next; every other
  // tab of this user signs out too.
  session.keeper.signOut();
  endSession();
  let message = 'You are signed out.';
  try {
    // A person who came through their identity provider is signed out there too.
    const providerLogout = endSessionUrl(await bff.post('/auth/logout'));
    if (providerLogout !== null) {
      location.assign(providerLogout);
      return;
    }
  } catch (err) {
    if (err?.status !== 401) {
      message = `This page has forgotten your session, but the server did not confirm the sign-out: ${describe(err)}`;
    }
  }
  await showLogin(message);
}

async function onConsent(options) {
  const current = session;
  if (current === null) return;
  setConsentButtons(true);
  show('connect-retry', false);
  setMessage('connect-result', 'Opening Basiq…');
  try {
    await startConsent(bff, options); // the page is leaving: the buttons stay disabled
  } catch (err) {
    if (session !== current) return;
    setConsentButtons(false);
    if (err?.status === 401) {
      signedOut(SESSION_ENDED);
      return;
    }
    setMessage('connect-result', describe(err), 'error');
  }
}

async function onConnect(event) {
  event.preventDefault();
  const current = session;
  if (current === null) return;
  if (!current.user.basiq_user_id) {
    const err = await recheckUser(current);
    if (session !== current) return;
    if (err !== null) {
      setMessage('connect-result', describe(err), 'error');
      return;
    }
  }
  const { user, basiq, keeper, abort } = current;
  if (!user.basiq_user_id) {
    setMessage('connect-result', NO_BASIQ_USER, 'error');
    return;
  }
  const passwordInput = byId('bank-password');
  const fields = {
    institution: byId('institution').value.trim(),
    loginId: byId('login-id').value.trim(),
    password: passwordInput.value,
    securityCode: byId('security-code').value.trim(),
    secondaryLoginId: byId('secondary-login-field').hidden ? '' : byId('secondary-login-id').value.trim(),
  };
  // The bank password leaves the page with this request; the field keeps no copy.
  passwordInput.value = '';
  const submit = byId('connect-submit');
  const steps = byId('job-steps');
  submit.disabled = true;
  steps.replaceChildren();
  setMessage('connect-result', 'Sending your details to Basiq…');
  try {
    const jobId = await createConnection({
      apiUrl: basiq.api_url,
      userId: user.basiq_user_id,
      fields,
      keeper,
      signal: abort.signal,
    });
    setMessage('connect-result', 'Basiq is connecting to your bank…');
    const outcome = await pollJob({
      apiUrl: basiq.api_url,
      jobId,
      keeper,
      signal: abort.signal,
      onProgress: (progress) => renderSteps(steps, progress.steps),
      onMfa: (challenge) => askMfa(current, challenge),
    });
    if (outcome.state === 'success') {
      setMessage('connect-result', 'Connected. Your bank account is linked.', 'ok');
    } else {
      setMessage('connect-result', `The connection failed: ${outcome.message}`, 'error');
    }
  } catch (err) {
    if (session !== current || isCancel(err)) return;
    setMessage('connect-result', describe(err), 'error');
  } finally {
    if (session === current) submit.disabled = false;
  }
}

boot().catch(() => {
  setText('status', 'This page failed to start. Please reload it.');
});
