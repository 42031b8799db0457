/** POST /api/usage/import (admin): NDJSON backfill, streamed line by line. */
import { createInterface } from "node:readline"
import type { Readable } from "node:stream"
import { Type } from "typebox"
import { OmnimeterError } from "../../core/errors.js"
import { importUsage } from "../../meter/usage-import.js"
import { authenticate, requireAdmin } from "../auth.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const NDJSON_TYPES = ["application/x-ndjson", "application/jsonl", "application/ndjson"]

export const usageImportRoutes: RouteModule = (app, container) => {
  const auth = authenticate(container.keys)
  // The body reaches the handler as a stream: a million lines are never held in memory at once.
  app.register(async (scoped) => {
    scoped.addContentTypeParser(NDJSON_TYPES, (_request, payload, done) => done(null, payload))
    scoped.post(
      "/api/usage/import",
      {
        preHandler: auth,
        schema: {
          tags: ["usage"],
          summary: "Import historical turns (admin), one JSON object per line",
          description:
            "Content-Type: application/x-ndjson. Each line: `subscription_id` or `entity_id` + `entity_type`; `channel`, `created_at` (ISO 8601), `raw_tokens`; optional `chatbot_id`, `session_id`, `user_identifier`, `operation_type`, `idempotency_key`. Billed with the channel's configured multiplier and written as settled. Bad lines are listed with their number and reason and never block the good ones; a repeated idempotency key is skipped.",
          security: bearerSecurity,
          consumes: NDJSON_TYPES,
          response: {
            200: Type.Object({
              imported: Type.Integer(),
              duplicates: Type.Integer(),
              rejected_count: Type.Integer(),
              rejected: Type.Array(Type.Object({ line: Type.Integer(), reason: Type.String() })),
            }),
            ...errorResponses(400, 401, 403, 413, 415, 500),
          },
        },
      },
      async (request) => {
        requireAdmin(request)
        const stream = request.body as Readable | undefined
        if (!stream || typeof (stream as Readable).pipe !== "function") {
          throw new OmnimeterError("unsupported_media_type", "Send the turns as application/x-ndjson.")
        }
        const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })
        const report = await importUsage(container.database, container.clock, lines)
        return {
          imported: report.imported,
          duplicates: report.duplicates,
          rejected_count: report.rejectedCount,
          rejected: report.rejected,
        }
      },
    )
  })
}
