// The error catalogue: every code the tunnel answers with, its HTTP status and its sentence.
// Codes are public API (clients, dashboards and send-test key on them): never rename or reuse one.

export const ERRORS = {
  bad_request: { status: 400, message: 'The request is not valid HTTP.' },
  empty_body: { status: 400, message: 'The request body is empty; expected a Sentry envelope.' },
  invalid_envelope_header: {
    status: 400,
    message: 'The first line of the body is not a JSON object; expected a Sentry envelope header.',
  },
  header_too_large: { status: 400, message: 'The envelope header line is longer than limits.maxHeaderLineBytes.' },
  missing_dsn: { status: 400, message: 'The envelope header has no "dsn"; the SDK must be configured with a DSN.' },
  invalid_dsn: { status: 400, message: 'The "dsn" in the envelope header is not a valid Sentry DSN.' },
  malformed_envelope: { status: 400, message: 'The envelope is malformed.' },
  invalid_body_encoding: { status: 400, message: 'The compressed request body is corrupt or truncated.' },
  request_aborted: { status: 400, message: 'The client closed the request before the body was complete.' },
  dsn_not_allowed: { status: 403, message: 'The envelope DSN is not one of the projects this tunnel forwards to.' },
  dsn_mismatch: { status: 403, message: 'The envelope DSN does not belong to the project named in the URL.' },
  origin_not_allowed: { status: 403, message: 'The Origin of this request is not allowed by cors.origins.' },
  not_found: { status: 404, message: 'Nothing is served at this path.' },
  unknown_project: { status: 404, message: 'No project of that name is configured.' },
  method_not_allowed: { status: 405, message: 'Method not allowed; the tunnel accepts POST (and OPTIONS for CORS).' },
  request_timeout: { status: 408, message: 'The request did not arrive in time.' },
  envelope_too_large: { status: 413, message: 'The envelope is larger than this tunnel accepts.' },
  unsupported_encoding: {
    status: 415,
    message: 'Unsupported Content-Encoding; use identity, gzip, deflate or br.',
  },
  rate_limited: { status: 429, message: 'Too many envelopes; wait for the time in Retry-After before sending again.' },
  internal_error: { status: 500, message: 'The tunnel failed unexpectedly; the error was logged.' },
  body_already_read: {
    status: 500,
    message: 'The request body was read before the tunnel saw it (a body parser runs first); mount the tunnel before any body parser.',
  },
  upstream_unavailable: { status: 502, message: 'Sentry could not be reached (connection refused, reset or DNS failure).' },
  upstream_redirect: { status: 502, message: 'Sentry answered with a redirect, which the tunnel never follows.' },
  shutting_down: { status: 503, message: 'The tunnel is shutting down.' },
  spool_full: { status: 503, message: 'Sentry could not be reached and the spool is full (spool.maxBytes).' },
  spool_write_failed: { status: 503, message: 'Sentry could not be reached and the envelope could not be written to the spool.' },
  overloaded: { status: 503, message: 'The tunnel has too many requests waiting for Sentry; retry after the time in Retry-After.' },
  upstream_timeout: { status: 504, message: 'Sentry did not answer within upstream.timeoutMs.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error the tunnel answers with: a stable code, the HTTP status and a sentence, plus the cause. */
export class TunnelError extends Error {
  override readonly name = 'TunnelError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers (Allow, Retry-After) that belong to this answer. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, options: { cause?: unknown; message?: string; headers?: Record<string, string> } = {}) {
    // A refusal is an answer, not a bug: its stack says nothing (a cause keeps its own), and capturing
    // one was the largest cost of answering a flood of refusals.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(options.message ?? ERRORS[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = options.headers;
  }

  #body: string | undefined;

  /** The JSON body of this answer, made once (shared refusals answer many requests). */
  get body(): string {
    this.#body ??= JSON.stringify({ error: this.message, code: this.code });
    return this.#body;
  }
}

export function isTunnelError(value: unknown): value is TunnelError {
  return value instanceof TunnelError;
}

/** The JSON body of every response the tunnel writes itself. */
export function errorBody(error: TunnelError): string {
  return error.body;
}

const plainRefusals = new Map<ErrorCode, TunnelError>();

/**
 * The one TunnelError of `code` with its catalogue sentence and nothing else (no cause, no headers):
 * the same instance every time, so a flood of such refusals allocates no error and no body.
 */
export function refusal(code: ErrorCode): TunnelError {
  let error = plainRefusals.get(code);
  if (error === undefined) {
    error = new TunnelError(code);
    plainRefusals.set(code, error);
  }
  return error;
}
