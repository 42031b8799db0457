/** POST /api/tokens/consume and POST /api/tokens/settle: the metering calls, over HTTP. */
import { performance } from "node:perf_hooks"
import type { FastifyReply } from "fastify"
import { Type } from "typebox"
import { camelCaseKeys } from "../../core/casing.js"
import { ValidationError } from "../../core/errors.js"
import { isText, TEXT_RULE } from "../../core/formats.js"
import type { Decision } from "../../meter/decisions.js"
import { authenticate, callerScope } from "../auth.js"
import { errorResponses, STATUS_BY_CODE } from "../errors.js"
import { decisionBody, settleBody } from "../mappers.js"
import { ConsumeBody, SettleBody } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const Denied = (description: string, headers: Record<string, unknown> = RATE_LIMIT_HEADERS) =>
  Type.Ref("DeniedDecision", { description, headers })

/** Documented on every consume answer that reached the rate limiter (see rateLimitHeaders). */
const RATE_LIMIT_HEADERS = {
  "RateLimit-Limit": { type: "integer" },
  "RateLimit-Remaining": { type: "integer" },
  "RateLimit-Reset": { type: "integer" },
}

function idempotencyKey(body: string | undefined, header: string | string[] | undefined): string | undefined {
  const fromHeader = Array.isArray(header) ? header[0] : header
  if (fromHeader !== undefined && (fromHeader.length === 0 || fromHeader.length > 255)) {
    throw new ValidationError("Idempotency-Key", "must be 1 to 255 characters")
  }
  if (fromHeader !== undefined && !isText(fromHeader)) throw new ValidationError("Idempotency-Key", TEXT_RULE)
  if (body !== undefined && fromHeader !== undefined && body !== fromHeader) {
    throw new ValidationError("idempotency_key", "differs from the Idempotency-Key header")
  }
  return body ?? fromHeader
}

/** RateLimit-* headers (IETF draft) whenever the decision reached the rate limiter. */
function rateLimitHeaders(reply: FastifyReply, decision: Decision): void {
  if (decision.rateLimit) {
    reply.header("RateLimit-Limit", String(decision.rateLimit.limit))
    reply.header("RateLimit-Remaining", String(Math.max(0, decision.rateLimit.remaining)))
    reply.header("RateLimit-Reset", String(Math.max(0, Math.ceil(decision.rateLimit.resetMs / 1000))))
  }
  if (!decision.allowed && decision.retryAfterMs !== undefined) {
    reply.header("Retry-After", String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))))
  }
}

export const tokenRoutes: RouteModule = (app, { meter, keys, metrics, config }) => {
  const auth = authenticate(keys)

  app.post(
    "/api/tokens/consume",
    {
      onRequest: auth,
      // The one JSON call allowed a large body: it may carry the user's message.
      bodyLimit: config.bodyLimitBytes,
      schema: {
        operationId: "consumeTokens",
        tags: ["metering"],
        summary: "Decide whether a chat turn may run, and charge it",
        description:
          "Checks, in order: subscription active, channel in plan, channel enabled, message length, an estimate larger than the channel's tokens per minute (413 turn_too_large: it can never pass, so no Retry-After), the channel's rate limit together with any shared capacity (the subscription's, the deployment's) at the share the channel's priority may fill (429 capacity_shed with retry_after_ms and shed_priority; 413 turn_too_large when the estimate exceeds that share), and quota for ceil(estimated_tokens * multiplier), less the subscription's quota reserve for channels below its reserve priority (402 quota_exceeded with reserved: true). An allowed turn is committed to the ledger before the answer. Denials answer 402/403/404/413/429 with a DeniedDecision: `allowed: false`, the `reason` and its facts, and the error envelope's `error` member (code = reason). A 413 for a body over the server's limit is the plain envelope (payload_too_large).",
        security: bearerSecurity,
        headers: Type.Object({
          "idempotency-key": Type.Optional(
            Type.String({
              description:
                "Makes retries safe: a repeated key answers the first decision (replayed: true) and charges nothing. 1-255 characters; the body's idempotency_key, when both are sent, must equal it.",
            }),
          ),
        }),
        body: ConsumeBody,
        response: {
          200: Type.Ref("AllowedDecision", {
            description: "The turn may run: it is charged its estimate and in the ledger.",
            headers: RATE_LIMIT_HEADERS,
          }),
          402: Denied("Denied: quota_exceeded (the period's quota cannot cover the estimate)."),
          403: Denied("Denied: subscription_inactive, channel_not_in_plan or channel_disabled.", {}),
          404: Denied(
            "Denied: subscription_not_found (no subscription for this entity visible to the key).",
            {},
          ),
          413: Type.Union([Type.Ref("DeniedDecision"), Type.Ref("ErrorEnvelope")], {
            description:
              "Denied: message_too_long or turn_too_large (a DeniedDecision); or a body over the server's limit (the envelope, payload_too_large).",
          }),
          429: Denied("Denied: rate_limited; retry after Retry-After seconds."),
          ...errorResponses(400, 401, 415, 500, 503),
        },
      },
    },
    async (request, reply) => {
      const body = request.body
      const key = idempotencyKey(body.idempotency_key, request.headers["idempotency-key"])
      const started = performance.now()
      const decision = await meter.validateAndConsumeTokens(
        { ...camelCaseKeys(body), ...(key !== undefined ? { idempotencyKey: key } : {}) },
        callerScope(request),
      )
      metrics.observeDecision(decision, (performance.now() - started) / 1000)
      rateLimitHeaders(reply, decision)
      reply.status(
        (decision.allowed ? 200 : STATUS_BY_CODE[decision.reason]) as 200 | 402 | 403 | 404 | 413 | 429,
      )
      return decisionBody(decision, String(request.id))
    },
  )

  app.post(
    "/api/tokens/settle",
    {
      onRequest: auth,
      schema: {
        operationId: "settleTokens",
        tags: ["metering"],
        summary: "Replace a turn's estimate with the tokens it really used",
        description:
          "Refunds or charges the difference atomically. Settling twice answers 409 usage_already_settled; an unknown usage_id answers 404 usage_not_found. Both change nothing.",
        security: bearerSecurity,
        body: SettleBody,
        response: {
          200: Type.Ref("SettleResult", { description: "Settled: the difference is refunded or charged." }),
          ...errorResponses(400, 401, 404, 409, 500, 503),
        },
      },
    },
    async (request) => {
      const { usage_id: usageId, ...settle } = request.body
      const result = await meter.settle(usageId, camelCaseKeys(settle), callerScope(request))
      return settleBody(result)
    },
  )
}
