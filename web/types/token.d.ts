export const REFRESH_FRACTION: number;
export const REFRESH_JITTER: number;
export const MIN_REFRESH_MS: number;
export const EXPIRY_MARGIN_MS: number;
export const BACKOFF_BASE_MS: number;
export const BACKOFF_CAP_MS: number;

/** StoppedError rejects work cut short by stop() (logout); callers ignore it. */
export class StoppedError extends Error {
  constructor();
}

export function refreshDelayMs(expiresIn: number, random?: () => number): number;
export function backoffMs(attempt: number, retryAfterSeconds?: number | null, random?: () => number): number;
export function isRetryable(err: unknown): boolean;
/** Basiq refused the token itself: 403 access-denied "Token has expired", or 401 invalid-authorization-token. */
export function isTokenExpired(status: number, body: unknown): boolean;
/** Whether a Basiq response refused the token itself (reads the body without consuming it). */
export function tokenRefused(res: StatusResponse): Promise<boolean>;

/** TokenResponse is GET /client-token's body. */
export interface TokenResponse {
  access_token: string;
  token_type?: string;
  expires_in: number;
}

export type KeeperPhase = 'idle' | 'refreshing' | 'ready' | 'retrying' | 'failed' | 'stopped';

/** KeeperState is what the page may show: expiry times, never the token. */
export interface KeeperState {
  phase: KeeperPhase;
  hasToken: boolean;
  /** ms since the epoch */
  expiresAt: number;
  refreshedAt: number;
  retryAt: number;
  error: unknown;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface KeeperOptions {
  /** Resolves to GET /client-token's body; rejects with an error carrying status/retryAfter. */
  fetchToken: () => Promise<TokenResponse>;
  onChange?: (state: KeeperState) => void;
  /** The BFF answered 401: the session is gone; the keeper is stopped by then. */
  onUnauthenticated?: (err: unknown) => void;
  now?: () => number;
  random?: () => number;
  timers?: Timers;
}

/** A response with a status, such as fetch's Response. */
export interface StatusResponse {
  status: number;
}

export interface TokenKeeper {
  /** Fetch a new token (one in flight at a time, shared by all callers). */
  refresh(): Promise<string>;
  /** A token with some life left, fetched if needed. */
  current(): Promise<string>;
  /** Run call(token); when Basiq refused the token itself, get a new one and run call once more. */
  withToken<R extends StatusResponse>(call: (token: string) => Promise<R>): Promise<R>;
  /** Catch up after throttled timers (hidden tab, sleeping laptop). */
  refreshIfDue(): void;
  /** Forget the token, cancel timers; later answers are ignored. */
  stop(): void;
  snapshot(): KeeperState;
}

export function createTokenKeeper(options: KeeperOptions): TokenKeeper;
