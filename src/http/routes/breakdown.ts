/** The breakdown of a period's turns by chatbot, end user or session (issue 16): sorted, paged, exportable. */
import { type Static, Type } from "typebox"
import { BREAKDOWN_DIMENSIONS, BREAKDOWN_SORTS } from "../../analytics/breakdown.js"
import { camelCaseKeys, wireForm } from "../../core/casing.js"
import { DateTime, Nullable } from "../../core/formats.js"
import { OneOf } from "../../meter/inputs.js"
import { AnalyticsParams, PeriodSchema, rangeQuery } from "../analytics-schemas.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

export const BreakdownQuery = Type.Object(
  {
    ...rangeQuery,
    by: OneOf(BREAKDOWN_DIMENSIONS, "Group the period's turns by chatbot_id, user_identifier or session_id."),
    sort: Type.Optional(
      OneOf(BREAKDOWN_SORTS, "The field to sort the items by (default tokens_used); ties go by key."),
    ),
    order: Type.Optional(
      OneOf(["asc", "desc"] as const, "Default: ascending for key, descending for every other field."),
    ),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 500, default: 50, description: "Items per page." }),
    ),
    offset: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000,
        description:
          "Items to skip (next_offset of the previous page). A CSV export starts here and runs to the end.",
      }),
    ),
  },
  { additionalProperties: false },
)

export const BreakdownItemSchema = Type.Object({
  key: Nullable(
    Type.String(),
    "The chatbot_id, user_identifier or session_id; null for the turns that named none (or named '').",
  ),
  tokens_used: Type.Integer({ description: "Billed tokens of the item's allowed turns." }),
  raw_tokens: Type.Integer({ description: "Raw tokens of the same turns." }),
  message_count: Type.Integer({ description: "Allowed turns." }),
  denied_count: Type.Integer({ description: "Denied turns." }),
  turns: Type.Integer({ description: "All turns: message_count + denied_count." }),
  unique_users: Type.Integer({ description: "Distinct non-empty user_identifier values of allowed turns." }),
  unique_people: Type.Integer({
    description:
      "Distinct people of the same turns: linked identifiers count once; an unlinked identifier is a person of its own on each channel. Links apply to past turns.",
  }),
  sessions: Type.Integer({ description: "Distinct non-empty session_id values of all turns." }),
  last_activity_at: DateTime("The instant of the item's latest turn in the period, allowed or denied."),
})
export type BreakdownItemBody = Static<typeof BreakdownItemSchema>

export const BreakdownSchema = Type.Object({
  subscription_id: Type.String(),
  timezone: Type.String({ description: "The IANA timezone the period's days are counted in." }),
  period: PeriodSchema,
  by: OneOf(BREAKDOWN_DIMENSIONS),
  sort: OneOf(BREAKDOWN_SORTS),
  order: OneOf(["asc", "desc"] as const),
  items: Type.Array(BreakdownItemSchema),
  total_items: Type.Integer({ description: "Items in the whole breakdown, over every page." }),
  next_offset: Nullable(Type.Integer(), "Pass as ?offset= for the next page; null on the last page."),
  generated_at: DateTime(),
})
export type BreakdownBody = Static<typeof BreakdownSchema>

const ITEM_COLUMNS = csvColumns(BreakdownItemSchema)
const CSV_PAGE = 500

export const breakdownRoutes: RouteModule = (app, { analytics, keys }) => {
  app.get(
    "/api/onboarding/analytics/:subscription_id/breakdown",
    {
      onRequest: authenticate(keys),
      schema: {
        operationId: "getAnalyticsBreakdown",
        tags: ["analytics"],
        summary:
          "The period's turns by chatbot, end user or session: tokens, turns, users, denials, last activity",
        description:
          "Read from the ledger (end users and sessions are not in the rollups): the cost grows with the subscription's turns in the period. The period, timezone, channels, chatbot_id and user_identifier work as in the other analytics endpoints. `format=csv` or `Accept: text/csv` streams every item from `offset` on (not one page), one row per item.",
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: BreakdownQuery,
        response: { 200: BreakdownSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const query = camelCaseKeys(request.query)
      const scope = scopeFor(request, id)
      if (wantsCsv(request)) {
        const first = await analytics.breakdown(id, { ...query, limit: CSV_PAGE }, scope)
        async function* items() {
          let page = first
          for (;;) {
            yield* wireForm(page.items)
            if (page.nextOffset === null) return
            page = await analytics.breakdown(
              id,
              { ...query, limit: CSV_PAGE, offset: page.nextOffset },
              scope,
            )
          }
        }
        return sendCsv(
          reply,
          `breakdown-${query.by}-${first.period.from}-${first.period.to}`,
          ITEM_COLUMNS,
          items(),
        )
      }
      return wireForm(await analytics.breakdown(id, query, scope))
    },
  )
}
