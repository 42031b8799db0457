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
