/**
 * The one error envelope: `{ "error": { "code", "message", "request_id" } }`, from the closed set of codes
 * in core/errors.ts, with one code-to-status map and one error handler for every route.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify"
import { type Static, Type } from "typebox"
import { ERROR_CODES, type ErrorCode, OmnimeterError } from "../core/errors.js"
import { formatMessage } from "../core/formats.js"
import { OneOf } from "../meter/inputs.js"
import { ImportInterruptedError, type ImportReport } from "../meter/usage-import.js"

export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  validation_error: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  subscription_not_found: 404,
  subscription_inactive: 403,
  channel_disabled: 403,
  message_too_long: 413,
  turn_too_large: 413,
  quota_exceeded: 402,
  capacity_shed: 429,
  usage_not_found: 404,
  usage_already_settled: 409,
  channel_not_in_plan: 403,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  request_timeout: 408,
  request_header_fields_too_large: 431,
  rate_limited: 429,
  service_unavailable: 503,
  data_dir_locked: 503,
  internal_error: 500,
})

const ImportReportFields = {
  imported: Type.Integer({ description: "Lines written to the ledger (exactly what was committed)." }),
  duplicates: Type.Integer({ description: "Valid lines skipped because their idempotency key was charged." }),
  rejected_count: Type.Integer(),
  rejected: Type.Array(Type.Object({ line: Type.Integer(), reason: Type.String() }), {
    description: "The first 1,000 rejected lines, by line number (1-based).",
  }),
}

/** What an import kept: its answer, and part of the error envelope of an import that stopped part-way. */
export const ImportReportSchema = Type.Object(ImportReportFields)

export const ErrorEnvelope = Type.Object(
  {
    error: Type.Object({
      code: OneOf(ERROR_CODES, "Machine-readable error code."),
      message: Type.String({ description: "What went wrong, for a person." }),
      request_id: Type.String({ description: "The X-Request-Id of the request, also in every log line." }),
      field: Type.Optional(
        Type.String({ description: "The offending field or parameter, when one is to blame." }),
      ),
    }),
    import: Type.Optional(
      Type.Object(
        {
          ...ImportReportFields,
          resume_from_line: Type.Integer({
            description:
              "The first line not covered by this report and not written: send the lines from here on again.",
          }),
        },
        { description: "Only from POST /api/usage/import when it stopped part-way: what was kept." },
      ),
    ),
  },
  { $id: "ErrorEnvelope", description: "Every error, from every endpoint." },
)
export type ErrorEnvelope = Static<typeof ErrorEnvelope>

/** The error responses a route documents, by status. */
export function errorResponses(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((status) => [status, Type.Ref("ErrorEnvelope")]))
}

export function envelope(code: ErrorCode, message: string, requestId: string, field?: string): ErrorEnvelope {
  return { error: { code, message, request_id: requestId, ...(field ? { field } : {}) } }
}

function importPart(report: ImportReport, resumeFromLine: number): NonNullable<ErrorEnvelope["import"]> {
  return {
    imported: report.imported,
    duplicates: report.duplicates,
    rejected_count: report.rejectedCount,
    rejected: report.rejected,
    resume_from_line: resumeFromLine,
  }
}

/** Fastify's own failures (body parsing, validation, limits) in our vocabulary. */
function fromFastify(error: FastifyError): { code: ErrorCode; message: string; field?: string } {
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0]
    const where = error.validationContext ?? "body"
    const path = (first?.instancePath ?? "").replace(/^\//, "").replaceAll("/", ".")
    const params = (first?.params ?? {}) as {
      additionalProperties?: string[]
      requiredProperties?: string[]
      format?: unknown
    }
    const named = params.additionalProperties?.[0] ?? params.requiredProperties?.[0]
    const field = named ? (path ? `${path}.${named}` : named) : path || where
    const message =
      first?.keyword === "additionalProperties"
        ? "is not a known field"
        : first?.keyword === "required"
          ? "is required"
          : ((first?.keyword === "format" ? formatMessage(params.format) : undefined) ??
            first?.message ??
            "is invalid")
    return { code: "validation_error", message: `${field}: ${message}`, field }
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { code: "payload_too_large", message: "The request body is larger than this server accepts." }
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return { code: "unsupported_media_type", message: "Send the body as application/json." }

    case "FST_ERR_BAD_URL":
      return {
        code: "validation_error",
        message: "The URL is not valid percent-encoded UTF-8.",
        field: "path",
      }
    case "FST_ERR_MAX_PARAM_LENGTH":
      return { code: "validation_error", message: "A path parameter is longer than any id.", field: "path" }
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return { code: "validation_error", message: "The JSON body is empty." }
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return { code: "validation_error", message: "The Content-Length header does not match the body." }
  }
  if (error.statusCode === 400)
    return { code: "validation_error", message: `The request is malformed: ${error.message}` }
  if (error.statusCode === 413) return { code: "payload_too_large", message: error.message }
  if (error.statusCode === 415) return { code: "unsupported_media_type", message: error.message }
  return {
    code: "internal_error",
    message: "Something went wrong on our side; the request id helps us find it.",
  }
}

/** Names the media type the route reads (its OpenAPI `consumes`, e.g. NDJSON for the import), else JSON. */
function mediaTypeMessage(request: FastifyRequest): string {
  const consumes = (request.routeOptions.schema as { consumes?: unknown } | undefined)?.consumes
  const types = Array.isArray(consumes) && consumes.length > 0 ? consumes.map(String) : ["application/json"]
  return `Send the body as ${types.join(" or ")}.`
}

/** The error handler for every route. */
export function handleError(
  error: FastifyError | OmnimeterError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  let code: ErrorCode
  let message: string
  let field: string | undefined
  if (error instanceof OmnimeterError) {
    code = error.code
    message = error.message
    const detail = error.details?.field
    field = typeof detail === "string" ? detail : undefined
  } else {
    ;({ code, message, field } = fromFastify(error))
    if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") message = mediaTypeMessage(request)
  }
  const status = STATUS_BY_CODE[code]
  if (status >= 500) request.log.error({ err: error }, "request failed")
  else request.log.info({ code, field }, message)
  // A rate limit and an unavailable dependency both say when to come back.
  if (
    (code === "rate_limited" || code === "service_unavailable") &&
    error instanceof OmnimeterError &&
    typeof error.details?.retryAfterSeconds === "number"
  ) {
    reply.header("Retry-After", String(error.details.retryAfterSeconds))
  }
  // A body still arriving is not read any further: closing the connection after the answer stops the
  // server from reading (and the client from sending) the rest of it.
  if (request.raw.complete === false) reply.header("Connection", "close")
  const body = envelope(code, message, String(request.id), field)
  reply
    .status(status)
    .send(
      error instanceof ImportInterruptedError
        ? { ...body, import: importPart(error.report, error.resumeFromLine) }
        : body,
    )
}
