/**
 * The OpenAPI document's frame (info, license, servers, security scheme, shared headers) and the one pass
 * that documents what the app itself does to every operation, whichever route file declared it: the
 * X-Request-Id header on every response, Retry-After on 429 and 503, and the statuses Node and Fastify answer
 * before a handler runs (400 and 431 for any request, 413 and 415 for any body, 503 while the key store's
 * database is away). Routes declare what is theirs: operationId, summary, their own statuses and headers.
 */
import type { FastifyDynamicSwaggerOptions } from "@fastify/swagger"

type Json = Record<string, unknown>
type OpenApiFrame = NonNullable<FastifyDynamicSwaggerOptions["openapi"]>

const ENVELOPE = { $ref: "#/components/schemas/ErrorEnvelope" }

/** The `openapi` option of @fastify/swagger: everything but the paths. */
export const OPENAPI_FRAME: OpenApiFrame = {
  openapi: "3.1.0",
  info: {
    title: "omnimeter",
    version: "0.1.0",
    description:
      'Meter, limit and explain LLM token usage per channel. Every error answers with the envelope `{ "error": { "code", "message", "request_id" } }`; every response carries X-Request-Id. A denied turn is a decision, not an error: `POST /api/tokens/consume` answers it with `allowed: false`, its `reason`, and the envelope\'s `error` member.',
    license: { name: "MIT", identifier: "MIT" },
  },
  servers: [{ url: "/", description: "The omnimeter instance serving this document" }],
  components: {
    securitySchemes: {
      bearerAuth: {
        type: "http",
        scheme: "bearer",
        description:
          "The admin key (OMNIMETER_ADMIN_KEY) or a subscription's key (POST /api/subscriptions/{id}/keys).",
      },
    },
    headers: {
      "X-Request-Id": {
        description:
          "The request's id: the caller's X-Request-Id when well-formed (1-128 of [A-Za-z0-9_.:-]), else a new UUID. Also the envelope's request_id and in every log line.",
        schema: { type: "string" },
      },
      "Retry-After": {
        description: "Seconds to wait before a retry can succeed.",
        schema: { type: "integer", minimum: 1 },
      },
      "RateLimit-Limit": {
        description: "The channel's requests per minute (IETF RateLimit header fields draft).",
        schema: { type: "integer" },
      },
      "RateLimit-Remaining": {
        description: "Requests left in the channel's current window.",
        schema: { type: "integer", minimum: 0 },
      },
      "RateLimit-Reset": {
        description: "Seconds until the oldest counted request leaves the window.",
        schema: { type: "integer", minimum: 0 },
      },
    },
  },
}

/** What each error status means, whichever route answers it: the response's description. */
export const ERROR_STATUS_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: "The request is invalid: `error.field` names the offending field or parameter (validation_error).",
  401: "No API key, or an unknown or revoked one (unauthorized).",
  402: "The subscription's quota for the period cannot cover the turn (quota_exceeded).",
  403: "The key may not do this (forbidden), or the plan or status forbids it.",
  404: "Not found, or not visible to this key: another tenant's subscription answers the same 404.",
  408: "The request did not arrive within OMNIMETER_REQUEST_TIMEOUT_MS (request_timeout).",
  409: "The request conflicts with the current state (conflict, usage_already_settled).",
  413: "The body is larger than this server accepts (payload_too_large).",
  415: "The body's Content-Type is not one this operation reads (unsupported_media_type).",
  429: "Too many requests: wait Retry-After seconds (rate_limited).",
  431: "The request's headers and URL are larger than 16 kB together (request_header_fields_too_large).",
  500: "Something went wrong on our side; the request id helps find it (internal_error).",
  503: "A dependency (the database) is unavailable: retry after Retry-After seconds (service_unavailable).",
}

function envelopeResponse(status: number): Json {
  return {
    description: ERROR_STATUS_DESCRIPTIONS[status] ?? "An error, in the envelope.",
    content: { "application/json": { schema: ENVELOPE } },
  }
}

const SHARED_HEADERS = OPENAPI_FRAME.components?.headers ?? {}

function headerRef(name: string): Json {
  return { $ref: `#/components/headers/${name}` }
}

/** Adds what the app does for every operation; see the module comment. Mutates and returns `document`. */
export function finishDocument<T>(document: T): T {
  const paths = ((document as Json).paths ?? {}) as Record<string, Record<string, Json>>
  for (const item of Object.values(paths)) {
    for (const operation of Object.values(item)) {
      const responses = (operation.responses ?? {}) as Record<string, Json>
      const authenticated = Array.isArray(operation.security) && operation.security.length > 0
      // Node's HTTP parser and the router answer these for any request, before a route is chosen.
      const added = [400, 431]
      if (operation.requestBody) added.push(413, 415)
      // Authentication reads the key store: with the database away, any authenticated call answers 503.
      if (authenticated) added.push(503)
      for (const status of added) responses[status] ??= envelopeResponse(status)
      // A public operation says so explicitly: no security requirement is not an oversight.
      operation.security ??= []
      for (const [status, response] of Object.entries(responses)) {
        if (response.description === "Default Response") {
          response.description =
            ERROR_STATUS_DESCRIPTIONS[Number(status)] ?? String(operation.summary ?? "Success")
        }
        const headers = { ...((response.headers ?? {}) as Json) }
        for (const name of Object.keys(headers)) if (name in SHARED_HEADERS) headers[name] = headerRef(name)
        headers["X-Request-Id"] = headerRef("X-Request-Id")
        if (status === "429" || status === "503") headers["Retry-After"] = headerRef("Retry-After")
        response.headers = headers
      }
      operation.responses = Object.fromEntries(
        Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)),
      )
    }
  }
  return document
}
