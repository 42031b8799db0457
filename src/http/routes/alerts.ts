/** A subscription's alerts (newest first) and its alert settings (quota thresholds). */
import { type Static, Type } from "typebox"
import { ALERT_TYPES } from "../../core/alerts.js"
import { DateTime, Nullable, Uuid } from "../../core/formats.js"
import { OneOf } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatParameter, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const Params = Type.Object({ id: Uuid() })

export const AlertSchema = Type.Object({
  id: Type.String({ description: "The event id; webhooks carry it as Omnimeter-Event-Id." }),
  seq: Type.Integer({ description: "Order of occurrence; page with ?before=seq." }),
  type: OneOf(ALERT_TYPES, "What happened."),
  channel: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown(), { description: "The event's facts; see the README." }),
  occurred_at: DateTime(),
})

/** One alert as the API lists it (the dashboard imports this type). */
export type AlertBody = Static<typeof AlertSchema>

const ALERT_COLUMNS = csvColumns(AlertSchema)
const CSV_PAGE = 500

const Thresholds = Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 1 }), {
  minItems: 1,
  maxItems: 10,
  description:
    "Fractions of the period's token limit; each fires quota.threshold_reached once per billing period.",
})

export const alertRoutes: RouteModule = (app, { alerts, keys }) => {
  const auth = authenticate(keys)
  const tags = ["alerts"]

  app.get(
    "/api/subscriptions/:id/alerts",
    {
      onRequest: auth,
      schema: {
        operationId: "listAlerts",
        tags,
        summary: "A subscription's alerts, newest first",
        description:
          "`format=csv` or `Accept: text/csv` streams every alert from `before` on (not one page), `data` as JSON text.",
        security: bearerSecurity,
        params: Params,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            before: Type.Optional(
              Type.Integer({
                minimum: 1,
                // Past 2^53 a JSON number is no longer exact, and past 2^63 no bigint column holds it.
                maximum: Number.MAX_SAFE_INTEGER,
                description: "Only alerts with a smaller seq.",
              }),
            ),
            type: Type.Optional(OneOf(ALERT_TYPES, "Only this type.")),
            ...FormatParameter,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            alerts: Type.Array(AlertSchema),
            next_before: Nullable(
              Type.Integer(),
              "Pass as ?before= for the next page; null on the last page.",
            ),
          }),
          ...errorResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const scope = scopeFor(request, id)
      const { before, type } = request.query
      const page = (limit: number, beforeSeq: number | undefined) =>
        alerts.listAlerts(id, { limit, beforeSeq, type }, scope)
      const wire = (row: Awaited<ReturnType<typeof page>>[number]) => ({
        id: row.id,
        seq: row.seq,
        type: row.type as (typeof ALERT_TYPES)[number],
        channel: row.channel,
        data: row.data,
        occurred_at: row.occurredAt.toISOString(),
      })
      if (wantsCsv(request)) {
        const first = await page(CSV_PAGE, before)
        async function* all() {
          let rows = first
          for (;;) {
            yield* rows.map(wire)
            const last = rows.at(-1)
            if (rows.length < CSV_PAGE || last === undefined) return
            rows = await page(CSV_PAGE, last.seq)
          }
        }
        return sendCsv(reply, "alerts", ALERT_COLUMNS, all())
      }
      const limit = request.query.limit ?? 100
      const rows = await page(limit, before)
      return {
        alerts: rows.map(wire),
        next_before: rows.length === limit ? (rows.at(-1)?.seq ?? null) : null,
      }
    },
  )

  const settingsSchema = Type.Object({ quota_thresholds: Thresholds })

  app.get(
    "/api/subscriptions/:id/alert-settings",
    {
      onRequest: auth,
      schema: {
        operationId: "getAlertSettings",
        tags,
        summary: "The subscription's alert settings",
        security: bearerSecurity,
        params: Params,
        response: { 200: settingsSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const id = request.params.id
      return { quota_thresholds: await alerts.getQuotaThresholds(id, scopeFor(request, id)) }
    },
  )

  app.put(
    "/api/subscriptions/:id/alert-settings",
    {
      onRequest: auth,
      schema: {
        operationId: "updateAlertSettings",
        tags,
        summary: "Replace the quota thresholds (default 0.5, 0.8, 0.95, 1)",
        description: "Each fraction in (0, 1] with at most three decimals, no repeats, 1 to 10 of them.",
        security: bearerSecurity,
        params: Params,
        body: Type.Object({ quota_thresholds: Thresholds }, { additionalProperties: false }),
        response: { 200: settingsSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const id = request.params.id
      const saved = await alerts.setQuotaThresholds(id, request.body.quota_thresholds, scopeFor(request, id))
      return { quota_thresholds: saved }
    },
  )
}
