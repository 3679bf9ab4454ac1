// view.js is the only module of the page that touches the DOM. It draws what the controller
// decides (text through textContent only, visibility through the hidden attribute), reads the
// forms when the controller asks, and turns the page's events into the controller's actions.
// It decides nothing itself.

import { bffOrigin } from './api.js';
import { byId as byIdIn, renderSteps, setMessage, setText, show } from './ui.js';

/** createView draws on doc (the page's document by default). */
export function createView(doc = globalThis.document) {
  const byId = (id) => byIdIn(id, doc);
  const text = (id, value) => setText(id, value, doc);
  const visible = (id, on) => show(id, on, doc);
  const message = (id, value, kind) => setMessage(id, value, kind, doc);

  function setConsentBusy(disabled) {
    for (const id of ['connect-consent', 'connect-another', 'manage-consent', 'connect-retry']) byId(id).disabled = disabled;
  }

  return {
    /** bind sends the page's events to the controller's actions. */
    bind(controller, win = doc.defaultView) {
      const submit = (action) => (event) => {
        event.preventDefault();
        action();
      };
      byId('login-form').addEventListener('submit', submit(controller.login));
      byId('logout').addEventListener('click', () => controller.logout());
      byId('connect-consent').addEventListener('click', () => controller.consent({}));
      byId('connect-retry').addEventListener('click', () => controller.consent({}));
      byId('connect-another').addEventListener('click', () => controller.consent({ action: 'connect' }));
      byId('manage-consent').addEventListener('click', () => controller.consent({ action: 'manage' }));
      byId('connect-form').addEventListener('submit', submit(controller.connect));
      byId('institution').addEventListener('input', () => controller.institutionChanged());
      byId('mfa-form').addEventListener('submit', submit(controller.mfa));
      byId('tenant').addEventListener('change', () => controller.tenantChanged());
      doc.addEventListener('visibilitychange', () => {
        if (doc.visibilityState === 'visible') controller.visible();
      });
      win?.addEventListener('pageshow', (event) => {
        if (event.persisted) controller.restored();
      });
    },

    /** origin is the BFF's origin the page names in its bff-origin meta tag ('' = this one). */
    origin: () => bffOrigin(doc),

    setStatus: (value) => text('status', value),

    // The login form.
    setLoginError: (value) => message('login-error', value, 'error'),
    setDemo(demo, login) {
      visible('demo-banner', demo);
      if (login !== null) text('demo-login', login);
      visible('demo-login', login !== null);
    },
    setTenants(tenants) {
      const Option = doc.defaultView.Option;
      byId('tenant').replaceChildren(...tenants.map((t) => new Option(t.name, t.id)));
      visible('tenant-field', tenants.length > 1);
    },
    selectedTenant: () => byId('tenant').value,
    setLoginMethods(methods) {
      visible('password-fields', methods.password);
      byId('email').required = methods.password;
      byId('password').required = methods.password;
      visible('oidc-block', methods.oidc !== null);
      if (methods.oidc !== null) {
        const link = byId('oidc-start');
        link.href = methods.oidc.href;
        link.textContent = methods.oidc.label;
      }
    },
    showLogin(status) {
      visible('login-view', true);
      text('status', status);
      (byId('password-fields').hidden ? byId('oidc-start') : byId('email')).focus();
    },
    loginForm: () => ({ email: byId('email').value, password: byId('password').value, tenant: byId('tenant').value }),
    setLoginBusy: (busy) => {
      byId('login-submit').disabled = busy;
    },
    focusPassword: () => byId('password').focus(),
    clearPassword: () => {
      byId('password').value = '';
    },

    // The signed-in view.
    showApp: (on) => visible('app-view', on),
    showSignedIn({ email, tenant, version }, focus) {
      text('user-email', email);
      text('user-tenant', tenant);
      text('basiq-version', version);
      visible('login-view', false);
      visible('app-view', true);
      if (focus) byId('session-heading').focus();
    },
    setTokenExpiry: (value) => text('token-expiry', value),
    setTokenRefreshed: (value) => text('token-refreshed', value),
    resetApp() {
      visible('app-view', false);
      for (const id of ['user-email', 'user-tenant', 'basiq-version', 'connect-unavailable']) text(id, '');
      text('token-expiry', '--:--');
      text('token-refreshed', 'not yet');
      byId('connect-form').reset();
      byId('connect-submit').disabled = false;
      setConsentBusy(false);
      visible('connect-another', false);
      visible('connect-retry', false);
      byId('job-steps').replaceChildren();
      byId('institution-list').replaceChildren();
      visible('mfa-form', false);
      visible('secondary-login-field', false);
      message('connect-result', '', 'info');
    },

    // Connecting a bank.
    setConnectMode({ consent, form, unavailable }) {
      visible('consent-block', consent);
      visible('connect-form', form);
      visible('connect-unavailable', unavailable !== null);
      if (unavailable !== null) text('connect-unavailable', unavailable);
    },
    setResult: (value, kind) => message('connect-result', value, kind),
    setConsentBusy,
    showConnectAnother: (on) => visible('connect-another', on),
    showConnectRetry: (on) => visible('connect-retry', on),
    setSteps: (steps) => renderSteps(byId('job-steps'), steps),
    setInstitutions(list) {
      const Option = doc.defaultView.Option;
      byId('institution-list').replaceChildren(...list.map((inst) => new Option(inst.name, inst.id)));
    },
    setInstitutionHint: (value) => text('institution-hint', value),
    institution: () => byId('institution').value,
    setBankFields(fields) {
      text('login-id-label', fields.loginId);
      text('bank-password-label', fields.password);
      text('security-code-label', fields.securityCode || 'Security code (optional)');
      byId('security-code').required = fields.securityCode !== '';
      text('secondary-login-label', fields.secondaryLoginId || 'Secondary login ID');
      visible('secondary-login-field', fields.secondaryLoginId !== '');
      byId('secondary-login-id').required = fields.secondaryLoginId !== '';
    },
    // takeBankLogin reads the 2.x form and empties the password field: the password leaves the
    // page with the request that follows.
    takeBankLogin() {
      const password = byId('bank-password');
      const fields = {
        institution: byId('institution').value.trim(),
        loginId: byId('login-id').value.trim(),
        password: password.value,
        securityCode: byId('security-code').value.trim(),
        secondaryLoginId: byId('secondary-login-field').hidden ? '' : byId('secondary-login-id').value.trim(),
      };
      password.value = '';
      return fields;
    },
    setConnectBusy: (busy) => {
      byId('connect-submit').disabled = busy;
    },
    askMfa(prompt) {
      text('mfa-prompt', prompt);
      byId('mfa-code').value = '';
      visible('mfa-form', true);
      byId('mfa-submit').disabled = false;
      byId('mfa-code').focus();
    },
    mfaCode: () => byId('mfa-code').value,
    closeMfa() {
      byId('mfa-code').value = '';
      byId('mfa-submit').disabled = true;
      visible('mfa-form', false);
    },
  };
}
