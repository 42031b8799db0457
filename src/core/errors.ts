/**
 * Errors for the unexpected and for misuse. Expected outcomes (a denied turn) are values, never these.
 * Every error carries a code from one closed set, which also holds every denial reason, so that the HTTP
 * error envelope speaks one vocabulary; the HTTP layer maps codes to statuses in one place.
 */

export const ERROR_CODES = [
  "validation_error",
  "unauthorized",
  "forbidden",
  "not_found",
  "subscription_not_found",
  "subscription_inactive",
  "channel_disabled",
  "message_too_long",
  "turn_too_large",
  "quota_exceeded",
  "capacity_shed",
  "usage_not_found",
  "usage_already_settled",
  "channel_not_in_plan",
  "conflict",
  "payload_too_large",
  "unsupported_media_type",
  "request_timeout",
  "request_header_fields_too_large",
  "rate_limited",
  "service_unavailable",
  "data_dir_locked",
  "internal_error",
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** An error with a machine-readable code, a human message, and optional facts for the caller. */
export class OmnimeterError extends Error {
  override readonly name: string = "OmnimeterError"
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message)
  }
}

/** Input that does not satisfy the contract; `field` names the offending field. */
export class ValidationError extends OmnimeterError {
  override readonly name = "ValidationError"
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("validation_error", field ? `${field}: ${message}` : message, { field })
  }
}

/**
 * The database cannot be reached right now: the connection was lost (restart, failover, an administrator's
 * `pg_terminate_backend`), refused, or the server is starting or shutting down. Retryable: the same call
 * may succeed once the database is back, which the service notices by itself. Over HTTP it is
 * `503 service_unavailable` with `Retry-After`.
 *
 * `outcome` says what is known of a write the call made: `not_written` (nothing of it reached the
 * database, or it was rolled back), or `unknown` (the answer was lost and the service could not yet look
 * up whether it committed). A turn is never answered "allowed" without its ledger row; an `unknown` one
 * may have been charged, so a retry should carry an idempotency key.
 *
 * @example
 * try {
 *   await meter.validateAndConsumeTokens(turn)
 * } catch (error) {
 *   if (error instanceof DatabaseUnavailableError) await sleep(error.retryAfterSeconds * 1000) // then retry
 * }
 */
export class DatabaseUnavailableError extends OmnimeterError {
  override readonly name = "DatabaseUnavailableError"
  readonly retryable = true
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
    readonly outcome: "not_written" | "unknown" = "not_written",
    options?: { cause?: unknown },
  ) {
    super("service_unavailable", message, { retryAfterSeconds, outcome })
    if (options && "cause" in options) Object.defineProperty(this, "cause", { value: options.cause })
  }
}
