/** ApiError is a failed HTTP exchange; status is 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(status: number, code: string, message: string, retryAfter?: number | null);
  /** HTTP status; 0 = no answer (network error). */
  status: number;
  /** The BFF's error code (e.g. `unauthenticated`, `rate_limited`), Basiq's, or `http_error`. */
  code: string;
  /** Seconds from Retry-After, or null. */
  retryAfter: number | null;
}

/** networkError is what a fetch that never got an answer becomes. */
export function networkError(who?: string): ApiError;

/** bffOrigin reads `<meta name="bff-origin">`; '' means the page's own origin. */
export function bffOrigin(doc?: Pick<Document, 'querySelector'> | null): string;

/** retryAfterSeconds parses a Retry-After header (delta seconds or an HTTP date). */
export function retryAfterSeconds(value: string | null | undefined, now?: number): number | null;

/** describeError reads the BFF or Basiq error envelope, falling back to the status. */
export function describeError(body: unknown, status: number): { code: string; message: string };

/** errorFromResponse builds the ApiError for a non-2xx Response. */
export function errorFromResponse(res: Response): Promise<ApiError>;

export interface BffOptions {
  /** The BFF's origin; '' (default from `<meta name="bff-origin">`) = same origin. */
  origin?: string;
  /** fetch to use (tests, instrumentation). */
  fetchImpl?: typeof fetch;
}

/** Bff sends X-CSRF: 1 and the cookie; resolves to the JSON body (null for 204). */
export interface Bff {
  get<T = unknown>(path: string): Promise<T>;
  post<T = unknown>(path: string, body?: unknown): Promise<T>;
}

export function createBff(options?: BffOptions): Bff;
