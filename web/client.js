// client.js is the package entry: the BFF API client, the token keeper (per tab, or shared by
// every tab of the origin) and withToken. It has no dependencies and needs no build step.
//
//   import { createClient, createSharedTokenKeeper, withToken } from '@basiq-bff/client';

import { createBff } from './api.js';

export {
  ApiError,
  bffOrigin,
  createBff,
  describeError,
  errorFromResponse,
  networkError,
  retryAfterSeconds,
} from './api.js';
export {
  backoffMs,
  createTokenKeeper,
  isRetryable,
  isTokenExpired,
  refreshDelayMs,
  StoppedError,
  tokenRefused,
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  EXPIRY_MARGIN_MS,
  MIN_REFRESH_MS,
  REFRESH_FRACTION,
  REFRESH_JITTER,
} from './token.js';
export { createSharedTokenKeeper, LEADER_ANSWER_MS } from './tabs.js';

/**
 * createClient returns the BFF's API as named calls. origin is the BFF's origin ('' or
 * omitted: the page's own, or <meta name="bff-origin">); a cross-origin BFF is called with
 * credentials: 'include'. Every call resolves to the parsed JSON body (null for 204) and
 * rejects with an ApiError {status, code, message, retryAfter}; status 0 means unreachable.
 */
export function createClient(options = {}) {
  const bff = createBff(options);
  return {
    /** GET /auth/tenants: {tenants: [{id, name}], demo?, demo_login?} */
    tenants: () => bff.get('/auth/tenants'),
    /** GET /auth/me: {user: {id, email, tenant, tenant_name, basiq_user_id}, basiq: {...}}; 401 when signed out */
    me: () => bff.get('/auth/me'),
    /** POST /auth/login; tenant may be left out when the BFF has only one */
    login: ({ tenant, email, password }) =>
      bff.post('/auth/login', tenant ? { tenant, email, password } : { email, password }),
    /** POST /auth/logout */
    logout: () => bff.post('/auth/logout'),
    /** POST /connect/consent (API 3.0): {url} of the Basiq Consent UI */
    consent: (request = {}) => bff.post('/connect/consent', request),
    /** GET /client-token: {access_token, token_type, expires_in}; give it to a keeper as fetchToken */
    clientToken: () => bff.get('/client-token'),
  };
}

/**
 * withToken runs call(token) with the keeper's token and resolves to its Response. When Basiq
 * says the token itself was refused (403 access-denied "Token has expired", or 401
 * invalid-authorization-token) the keeper gets a new token (once, shared with every other
 * caller) and call runs one more time; whatever that answers is returned. Any other 401/403
 * is returned as is: call runs once, so bank credentials are never posted twice.
 */
export function withToken(keeper, call) {
  return keeper.withToken(call);
}
