import type { BffOptions } from './api.js';
import type { StatusResponse, TokenKeeper, TokenResponse } from './token.js';

export * from './api.js';
export * from './token.js';
export * from './tabs.js';

export interface User {
  id: number;
  email: string;
  /** The tenant id. */
  tenant: string;
  /** Empty until the first token creates the Basiq user. */
  basiq_user_id: string;
}

/** GET /auth/me */
export interface Me {
  user: User & { tenant_name: string };
  basiq: { api_url: string; consent_url: string; version: '2.0' | '2.1' | '3.0' | string };
}

/** GET /auth/tenants */
export interface Tenants {
  tenants: { id: string; name: string }[];
  demo?: true;
  demo_login?: { email: string; password: string };
}

export interface LoginRequest {
  /** May be left out when the BFF has only one tenant. */
  tenant?: string;
  email: string;
  password: string;
}

/** POST /connect/consent's optional body. */
export interface ConsentRequest {
  action?: 'connect' | 'manage' | 'extend' | 'update' | 'reauthorise';
  institutionId?: string;
  connectionId?: string;
}

export interface Client {
  tenants(): Promise<Tenants>;
  me(): Promise<Me>;
  login(request: LoginRequest): Promise<{ user: User }>;
  logout(): Promise<null>;
  consent(request?: ConsentRequest): Promise<{ url: string }>;
  clientToken(): Promise<TokenResponse>;
}

/** The BFF's API as named calls; rejects with ApiError. */
export function createClient(options?: BffOptions): Client;

/** Run call(token); when Basiq refused the token itself (expired), get a new token (once) and run call again. */
export function withToken<R extends StatusResponse>(
  keeper: Pick<TokenKeeper, 'withToken'>,
  call: (token: string) => Promise<R>,
): Promise<R>;
