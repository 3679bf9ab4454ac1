// controller.js holds the page's state and decides what it shows: signed out or in, the token's
// state, the connection flows. It never touches the DOM: it reads what the person entered and
// shows its decisions through the view it is given (view.js in the browser, a recording fake in
// the unit tests), and it reaches the BFF, Basiq, the clock and the address bar only through its
// options, so every path runs under node's test runner.

import { ApiError } from './api.js';
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
import { createSharedTokenKeeper } from './tabs.js';
import { backoffMs, StoppedError } from './token.js';
import { formatClock, formatCountdown } from './ui.js';

export const SESSION_ENDED = 'Your session has ended. Please sign in again.';
export const SIGNED_OUT = 'You are signed out.';
export const NO_BASIQ_USER =
  'Your account has no Basiq user yet, so a bank cannot be connected. Please contact support.';
const CONNECTABLE = new Set(['2.0', '2.1', '3.0']);

/** describe is the sentence shown for a failure: the BFF's or Basiq's own, else a generic one. */
export function describe(err) {
  return err instanceof ApiError ? err.message : 'Something went wrong. Please try again.';
}

function isCancel(err) {
  return err instanceof StoppedError || err?.name === 'AbortError';
}

/** The Basiq calls the connection flows make (connect.js); tests replace them. */
const defaultBasiq = { createConnection, fetchInstitutions, followJobs, pollJob, startConsent };

/**
 * createController returns the page's actions. Options:
 * - bff: createBff()'s client (get, post);
 * - view: what the page shows (see view.js for the methods);
 * - page: the address bar: {search, pathname, replaceSearch(search), assign(url)};
 * - origin: the BFF's origin ('' = this one), for the identity provider's start link;
 * - createKeeper: the token keeper factory (default createSharedTokenKeeper);
 * - basiq: the connection flows (default connect.js's);
 * - sleep(ms, signal), now(), setInterval, clearInterval: time, replaceable in tests.
 */
export function createController({
  bff,
  view,
  page,
  origin = '',
  createKeeper = createSharedTokenKeeper,
  basiq = defaultBasiq,
  sleep = delay,
  now = () => Date.now(),
  setInterval: every = (fn, ms) => globalThis.setInterval(fn, ms),
  clearInterval: stopEvery = (id) => globalThis.clearInterval(id),
}) {
  // The signed-in state, null while signed out: {user, basiq, keeper, abort, ticker,
  // userChecked, institutions, mfaAnswer}. endSession tears all of it down.
  let session = null;
  // [{id, name, login}] once /auth/tenants answered.
  let tenants = null;
  // The Consent UI return, handled once the signed-in view is up: {ok:false, message} for an
  // error, {jobIds} for jobs to follow (none: nothing was connected).
  let notice = null;
  // The connect area's message as last set, to take back NO_BASIQ_USER once it is wrong.
  let result = '';

  function setResult(text, kind = 'info') {
    result = text;
    view.setResult(text, kind);
  }

  /** boot reads what the address bar brought back, then asks who is signed in. */
  async function boot() {
    const refused = readLoginError(page.search);
    if (refused !== null) {
      view.setLoginError(refused.message);
      page.replaceSearch(refused.search);
    }
    const back = readReturn(page.search);
    if (back !== null) {
      notice = back;
      page.replaceSearch(back.search);
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
        view.setStatus(`${describe(err)} Retrying in ${Math.ceil(wait / 1000)}s.`);
        await sleep(wait);
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
      const demo = body?.demo === true;
      const login = demo ? body.demo_login : null;
      const ok = typeof login?.email === 'string' && typeof login?.password === 'string';
      view.setDemo(demo, ok ? `Demo account: ${login.email} / ${login.password}` : null);
    } catch {
      // Without the list the tenant is left out of the login, and the BFF uses its only tenant.
      return;
    }
    view.setTenants(tenants.map((t) => ({ id: String(t.id), name: String(t.name || t.id) })));
    tenantChanged();
  }

  /** tenantChanged shows the chosen tenant's ways in: a password form, a provider link, or both. */
  function tenantChanged() {
    const id = view.selectedTenant();
    const chosen = tenants?.find((t) => String(t.id) === id) ?? tenants?.[0];
    view.setLoginMethods(loginMethods(chosen, { origin, returnTo: page.pathname }));
  }

  async function showLogin(message) {
    view.showApp(false);
    await loadTenants();
    if (session !== null) return; // signed in meanwhile (another path won the race)
    view.showLogin(message);
  }

  /** login posts what the login form holds; a refusal is shown on the form. */
  async function login() {
    const { email, password, tenant } = view.loginForm();
    view.setLoginError('');
    const body = { email: email.trim(), password };
    if (tenant) body.tenant = tenant;
    view.setLoginBusy(true);
    try {
      await bff.post('/auth/login', body);
    } catch (err) {
      let text = describe(err);
      if (err?.status === 429 && err.retryAfter != null) {
        text += ` Try again in ${err.retryAfter} seconds.`;
      }
      view.setLoginError(text);
      view.focusPassword();
      return;
    } finally {
      view.setLoginBusy(false);
    }
    view.clearPassword();
    await loadSession(true);
  }

  function enterApp(me, focus) {
    endSession();
    const user = me?.user ?? {};
    const basiqInfo = me?.basiq ?? {};
    // One token for every tab of this user: the tabs elect a leader that alone calls the BFF.
    const keeper = createKeeper({
      scope: `${user.tenant}:${user.id}`,
      onSignedOut: () => signedOut(SIGNED_OUT),
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
      basiq: basiqInfo,
      keeper,
      abort: new AbortController(),
      ticker: every(tick, 1000),
      // The BFF creates the person's Basiq user with their first token, so a /auth/me answered
      // before that has no basiq_user_id yet: it is asked again once, after the first token.
      userChecked: Boolean(user.basiq_user_id),
      institutions: null,
      mfaAnswer: null,
    };

    view.showSignedIn(
      {
        email: String(user.email ?? ''),
        tenant: String(user.tenant_name || user.tenant || ''),
        version: String(basiqInfo.version ?? 'unknown'),
      },
      focus,
    );

    // Outcomes reach the page through onChange/onUnauthenticated; the catch only marks it handled.
    keeper.refresh().catch(() => {});
    renderConnect();
    if (basiqInfo.version === '2.0' || basiqInfo.version === '2.1') loadInstitutions(session);
  }

  // loadInstitutions fetches Basiq's bank list once per signed-in session (kept in memory with
  // the session, never in storage) and offers it in the institution field.
  async function loadInstitutions(current) {
    let list;
    try {
      list = await basiq.fetchInstitutions({ apiUrl: current.basiq.api_url, keeper: current.keeper, signal: current.abort.signal });
    } catch (err) {
      if (session !== current || isCancel(err)) return;
      view.setInstitutionHint(`The bank list could not be loaded (${describe(err)}); enter the institution id.`);
      return;
    }
    if (session !== current) return;
    current.institutions = list;
    view.setInstitutions(list.map((inst) => ({ id: inst.id, name: inst.name })));
    institutionChanged();
  }

  /** institutionChanged shows the login fields the chosen bank asks for, with its own labels. */
  function institutionChanged() {
    const current = session;
    if (current === null) return;
    const id = view.institution().trim();
    const inst = (current.institutions ?? []).find((i) => i.id === id) ?? null;
    view.setBankFields(loginFields(inst));
    if (current.institutions) {
      view.setInstitutionHint(inst ? `${inst.name} (${inst.id})` : 'Type to search the list of banks.');
    }
  }

  // askMfa shows the bank's one-time code prompt and resolves to the answer; mfa submits it.
  function askMfa(current, challenge) {
    return new Promise((resolve, reject) => {
      current.abort.signal.addEventListener('abort', () => reject(current.abort.signal.reason), { once: true });
      current.mfaAnswer = resolve;
      view.askMfa(challenge.prompt);
      setResult('Your bank is asking for a one-time code.');
    });
  }

  /** mfa answers the bank's one-time code prompt with what the code field holds. */
  function mfa() {
    const current = session;
    const answer = view.mfaCode().trim();
    if (current === null || !current.mfaAnswer || answer === '') return;
    const resolve = current.mfaAnswer;
    current.mfaAnswer = null;
    // The code goes to Basiq once; the field keeps no copy.
    view.closeMfa();
    setResult('Basiq is connecting to your bank…');
    resolve(answer);
  }

  function renderConnect() {
    const { version } = session.basiq;
    const connectable = CONNECTABLE.has(version);
    view.setConnectMode({
      consent: version === '3.0',
      form: version === '2.0' || version === '2.1',
      unavailable: connectable
        ? null
        : `This organisation uses Basiq API version ${version ?? 'unknown'}, which this page cannot connect with.`,
    });
    if (!connectable) {
      // nothing to connect with
    } else if (version !== '3.0' && !session.user.basiq_user_id) {
      if (session.userChecked) setResult(NO_BASIQ_USER, 'error');
    } else if (result === NO_BASIQ_USER) {
      setResult('');
    }
    if (notice !== null) {
      const back = notice;
      notice = null;
      if (back.jobIds) {
        followReturn(session, back.jobIds);
      } else {
        setResult(back.message, 'error');
        view.showConnectRetry(version === '3.0');
      }
    }
  }

  // followReturn follows the jobs the Consent UI sent back and says what really happened: each
  // step as it goes, "connected" only when every job succeeded.
  async function followReturn(current, jobIds) {
    const perJob = jobIds.map(() => []);
    const draw = () => {
      view.setSteps(
        perJob.flatMap((list, i) =>
          list.map((step) => (jobIds.length > 1 ? { ...step, title: `Bank ${i + 1}: ${step?.title ?? 'step'}` } : step)),
        ),
      );
    };
    if (jobIds.length > 0) setResult('Checking what Basiq connected…');
    let outcome;
    try {
      outcome = await basiq.followJobs({
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
      setResult(describe(err), 'error');
      view.showConnectRetry(true);
      return;
    }
    if (session !== current) return;
    switch (outcome.state) {
      case 'success':
        setResult(outcome.message, 'ok');
        view.showConnectAnother(true);
        break;
      case 'none':
        setResult(outcome.message, 'info');
        break;
      default:
        setResult(outcome.message, 'error');
        view.showConnectRetry(true);
    }
  }

  // recheckUser asks /auth/me again for a Basiq user id the first answer did not have yet, and
  // redraws the connect area. It resolves to the error of a failed attempt, else null. A failure
  // leaves the user unchecked, so the next token or the connect form asks again instead of
  // telling the person to contact support over a blip.
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
        if (!state.hasToken) view.setStatus('Getting a Basiq token…');
        break;
      case 'ready': {
        const at = formatClock(state.refreshedAt);
        view.setTokenRefreshed(at);
        view.setStatus(`Basiq token ready (refreshed at ${at}).`);
        break;
      }
      case 'retrying': {
        const seconds = Math.max(1, Math.ceil((state.retryAt - now()) / 1000));
        view.setStatus(`Basiq is unavailable, retrying in ${seconds}s. ${describe(state.error)}`);
        break;
      }
      case 'failed':
        view.setStatus(`Could not get a Basiq token: ${describe(state.error)}`);
        break;
      default:
        break;
    }
    tick();
  }

  /** tick redraws the token's countdown (every second while signed in). */
  function tick() {
    if (session === null) return;
    const { hasToken, expiresAt } = session.keeper.snapshot();
    view.setTokenExpiry(hasToken ? formatCountdown(expiresAt - now()) : '--:--');
  }

  // endSession forgets everything the signed-in view held: the token, its timers, running polls.
  function endSession() {
    if (session === null) return;
    const ended = session;
    session = null;
    stopEvery(ended.ticker);
    ended.abort.abort();
    ended.keeper.stop();
    result = '';
    view.resetApp();
  }

  function signedOut(message) {
    endSession();
    showLogin(message).catch(() => {});
  }

  /** logout signs out here, in every other tab, at the BFF and, if it says so, at the provider. */
  async function logout() {
    if (session === null) return;
    // Forget the token and stop the timers first, whatever the server says next; every other
    // tab of this user signs out too.
    session.keeper.signOut();
    endSession();
    let message = SIGNED_OUT;
    try {
      // A person who came through their identity provider is signed out there too.
      const providerLogout = endSessionUrl(await bff.post('/auth/logout'));
      if (providerLogout !== null) {
        page.assign(providerLogout);
        return;
      }
    } catch (err) {
      if (err?.status !== 401) {
        message = `This page has forgotten your session, but the server did not confirm the sign-out: ${describe(err)}`;
      }
    }
    await showLogin(message);
  }

  /** consent goes to Basiq's Consent UI; options may name an action (connect, manage). */
  async function consent(options = {}) {
    const current = session;
    if (current === null) return;
    view.setConsentBusy(true);
    view.showConnectRetry(false);
    setResult('Opening Basiq…');
    try {
      await basiq.startConsent(bff, options, page.assign); // the page is leaving: the buttons stay disabled
    } catch (err) {
      if (session !== current) return;
      view.setConsentBusy(false);
      if (err?.status === 401) {
        signedOut(SESSION_ENDED);
        return;
      }
      setResult(describe(err), 'error');
    }
  }

  /** connect sends the 2.x connection form to Basiq and follows the job it starts. */
  async function connect() {
    const current = session;
    if (current === null) return;
    if (!current.user.basiq_user_id) {
      const err = await recheckUser(current);
      if (session !== current) return;
      if (err !== null) {
        setResult(describe(err), 'error');
        return;
      }
    }
    const { user, keeper, abort } = current;
    if (!user.basiq_user_id) {
      setResult(NO_BASIQ_USER, 'error');
      return;
    }
    // The bank password leaves the page with this request; the view keeps no copy.
    const fields = view.takeBankLogin();
    view.setConnectBusy(true);
    view.setSteps([]);
    setResult('Sending your details to Basiq…');
    try {
      const jobId = await basiq.createConnection({
        apiUrl: current.basiq.api_url,
        userId: user.basiq_user_id,
        fields,
        keeper,
        signal: abort.signal,
      });
      setResult('Basiq is connecting to your bank…');
      const outcome = await basiq.pollJob({
        apiUrl: current.basiq.api_url,
        jobId,
        keeper,
        signal: abort.signal,
        onProgress: (progress) => view.setSteps(progress.steps),
        onMfa: (challenge) => askMfa(current, challenge),
      });
      if (outcome.state === 'success') {
        setResult('Connected. Your bank account is linked.', 'ok');
      } else {
        setResult(`The connection failed: ${outcome.message}`, 'error');
      }
    } catch (err) {
      if (session !== current || isCancel(err)) return;
      setResult(describe(err), 'error');
    } finally {
      if (session === current) view.setConnectBusy(false);
    }
  }

  /** visible catches up on a token refresh a hidden tab or a sleeping laptop missed. */
  function visible() {
    session?.keeper.refreshIfDue();
  }

  /** restored: back from the Consent UI through the back/forward cache, timers were frozen. */
  function restored() {
    view.setConsentBusy(false);
    session?.keeper.refreshIfDue();
  }

  return { boot, login, logout, consent, connect, mfa, tenantChanged, institutionChanged, visible, restored };
}
