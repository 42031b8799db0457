/** POST /api/usage/import (admin): NDJSON backfill, streamed line by line. */
import { createInterface } from "node:readline"
import { type Readable, Transform } from "node:stream"
import { OmnimeterError } from "../../core/errors.js"
import { importUsage } from "../../meter/usage-import.js"
import { authenticate, requireAdmin } from "../auth.js"
import { errorResponses, ImportReportSchema } from "../errors.js"
import { onRequestTimeout } from "../request-timeout.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const NDJSON_TYPES = ["application/x-ndjson", "application/jsonl", "application/ndjson"]

/**
 * Passes the first `limit` bytes of the body through and ends there; `exceeded` tells whether there was
 * more. Ending (rather than failing) lets every complete line before the limit be imported.
 */
function byteLimit(limit: number): { stream: Transform; exceeded(): boolean } {
  let received = 0
  let exceeded = false
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (exceeded) return callback()
      const room = limit - received
      received += chunk.length
      if (chunk.length <= room) return callback(null, chunk)
      exceeded = true
      this.push(chunk.subarray(0, room))
      this.push(null)
      callback()
    },
  })
  return { stream, exceeded: () => exceeded }
}

/**
 * The body's lines, holding each back until the next arrives: when the body was cut at the limit, the
 * last line may be cut too, so it is not imported, and the import stops with payload_too_large after the
 * complete lines (its report then says where to resume).
 */
async function* completeLines(
  lines: AsyncIterable<string>,
  limit: number,
  exceeded: () => boolean,
): AsyncGenerator<string> {
  let previous: string | undefined
  try {
    for await (const line of lines) {
      if (previous !== undefined) yield previous
      previous = line
    }
  } catch (error) {
    // readline yields a line only once its newline arrived: the line held back is complete.
    if (previous !== undefined) yield previous
    throw error
  }
  if (!exceeded()) {
    if (previous !== undefined) yield previous
    return
  }
  throw new OmnimeterError(
    "payload_too_large",
    `The import body is larger than ${limit} bytes (OMNIMETER_IMPORT_BODY_LIMIT_BYTES); split it.`,
  )
}

export const usageImportRoutes: RouteModule = (app, container) => {
  const auth = authenticate(container.keys)
  const limit = container.config.importBodyLimitBytes
  // The body reaches the handler as a stream: a million lines are never held in memory at once, and the
  // JSON body limit does not apply; the import's own byte limit does, counted as the lines are read.
  app.register(async (scoped) => {
    scoped.addContentTypeParser(NDJSON_TYPES, (_request, payload, done) => done(null, payload))
    scoped.post(
      "/api/usage/import",
      {
        onRequest: auth,
        schema: {
          tags: ["usage"],
          summary: "Import historical turns (admin), one JSON object per line",
          description:
            'Content-Type: application/x-ndjson. Each line: `subscription_id` or `entity_id` + `entity_type`; `channel`, `created_at` (ISO 8601, 1970 to 9999), `raw_tokens`; optional `chatbot_id`, `session_id`, `user_identifier`, `operation_type`, `idempotency_key`, and `model` with `input_tokens` and `output_tokens` (their sum must be raw_tokens), priced at the price in force at created_at. A line with `"type": "outcome"` is an outcome instead, with the fields of POST /api/outcomes (`occurred_at` required) and the subscription as above; outcome lines are written one at a time, once per idempotency key. Billed with the channel\'s configured multiplier and written as settled. Lines are committed in batches of 1,000. A bad line is listed with its number and reason and never blocks the good ones; a repeated idempotency key is skipped. An import that stops part-way (body limit, lost database) answers the error envelope with an `import` member: the lines imported (exactly what was committed), the rejected lines, and `resume_from_line`.',
          security: bearerSecurity,
          consumes: NDJSON_TYPES,
          response: {
            200: ImportReportSchema,
            ...errorResponses(400, 401, 403, 408, 413, 415, 500, 503),
          },
        },
      },
      async (request) => {
        requireAdmin(request)
        const stream = request.body as Readable | undefined
        if (!stream || typeof (stream as Readable).pipe !== "function") {
          throw new OmnimeterError("unsupported_media_type", "Send the turns as application/x-ndjson.")
        }
        const limiter = byteLimit(limit)
        const limited = stream.pipe(limiter.stream)
        // pipe() does not forward errors: a client that goes away must end the import too.
        stream.once("error", (error) => limited.destroy(error))
        // Past the request timeout the import stops reading and answers 408 with what it committed.
        onRequestTimeout(request.raw, () => {
          stream.unpipe(limited)
          limited.destroy(
            new OmnimeterError(
              "request_timeout",
              "The import body did not arrive within OMNIMETER_REQUEST_TIMEOUT_MS; split it, or raise the timeout.",
            ),
          )
        })
        const lines = createInterface({ input: limited, crlfDelay: Number.POSITIVE_INFINITY })
        const report = await importUsage(
          container.database,
          container.clock,
          completeLines(lines, limit, limiter.exceeded),
          { currency: container.config.currency },
        )
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
