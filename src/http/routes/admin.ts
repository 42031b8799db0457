/** The operator's cross-subscription overview (issue 16): admin key only. */
import { type Static, Type } from "typebox"
import type { SubscriptionOverview } from "../../analytics/subscription-overview.js"
import { type WireForm, wireForm } from "../../core/casing.js"
import { DateTime, Nullable } from "../../core/formats.js"
import { DEFAULT_OVERVIEW_DAYS, MAX_OVERVIEW_DAYS, RANKING_SORTS } from "../../core/subscription-ranking.js"
import { OneOf, PlanSchema, StatusSchema } from "../../meter/inputs.js"
import { authenticate, requireAdmin } from "../auth.js"
import { csvColumns, FormatParameter, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const SortSchema = OneOf(
  RANKING_SORTS,
  "tokens_used (usage in the window), quota_used (percent of the limit used this billing period), denied_count (denied turns in the window) or growth (percent change of tokens_used against the window before).",
)
const OrderSchema = OneOf(["desc", "asc"] as const, "desc (default): biggest first.")

const OverviewQuery = Type.Object(
  {
    days: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_OVERVIEW_DAYS,
        default: DEFAULT_OVERVIEW_DAYS,
        description: `The window: this many x 24 whole UTC hours ending at the start of the current hour (default ${DEFAULT_OVERVIEW_DAYS}).`,
      }),
    ),
    sort: Type.Optional(SortSchema),
    order: Type.Optional(OrderSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    ...FormatParameter,
  },
  { additionalProperties: false },
)

export const SubscriptionOverviewSchema = Type.Object({
  generated_at: DateTime(),
  window: Type.Object(
    {
      days: Type.Integer(),
      previous_start: DateTime("Start of the window growth compares against (equally long, just before)."),
      start: DateTime(),
      end: DateTime("Excluded: the start of the current hour, so both windows are complete hours."),
    },
    { description: "Whole UTC hours, the same for every subscription whatever its timezone." },
  ),
  sort: SortSchema,
  order: OrderSchema,
  total: Type.Integer({ description: "Subscriptions in the ranking; the list holds the first `limit`." }),
  subscriptions: Type.Array(
    Type.Object({
      rank: Type.Integer({ description: "1..n without gaps, by sort and order; ties by subscription id." }),
      subscription_id: Type.String(),
      entity_id: Type.String(),
      entity_type: Type.String(),
      plan: PlanSchema,
      status: StatusSchema,
      token_limit: Type.Integer(),
      period_start: DateTime("The current billing period's start."),
      period_end: DateTime(),
      quota_used_tokens: Type.Integer({ description: "Billed tokens charged this billing period." }),
      quota_used_percent: Nullable(
        Type.Number(),
        "100 * quota_used_tokens / token_limit, 2 decimals; over 100 when over quota (settlement can pass the limit); null with a zero limit.",
      ),
      over_quota: Type.Boolean(),
      tokens_used: Type.Integer({ description: "Billed tokens of allowed turns in the window." }),
      message_count: Type.Integer({ description: "Allowed turns in the window." }),
      denied_count: Type.Integer({ description: "Denied turns in the window, every reason." }),
      denial_rate: Nullable(
        Type.Number(),
        "100 * denied / (allowed + denied), 2 decimals; null with no turns.",
      ),
      previous_tokens_used: Type.Integer({ description: "tokens_used in the window before." }),
      growth: Nullable(
        Type.Number(),
        "100 * (tokens_used - previous_tokens_used) / previous_tokens_used, 2 decimals; null when previous is 0.",
      ),
    }),
  ),
})
export type SubscriptionOverviewBody = Static<typeof SubscriptionOverviewSchema>
const RANKING_COLUMNS = csvColumns(SubscriptionOverviewSchema.properties.subscriptions.items)

function overviewBody(overview: SubscriptionOverview): SubscriptionOverviewBody {
  const body: WireForm<SubscriptionOverview> = wireForm(overview)
  return body
}

export const adminRoutes: RouteModule = (app, { subscriptionOverview, keys }) => {
  app.get(
    "/api/admin/overview",
    {
      onRequest: authenticate(keys),
      schema: {
        operationId: "getSubscriptionOverview",
        tags: ["subscriptions"],
        summary: "Every subscription ranked by usage, quota used, denials or growth (admin)",
        description:
          "Usage, denials and growth over a window of whole UTC hours ending at the start of the current hour (the running hour is left out of both windows, so growth compares like for like); quota use over each subscription's current billing period. `format=csv` or `Accept: text/csv` answers the ranking (its first `limit`) as CSV, one row per subscription.",
        security: bearerSecurity,
        querystring: OverviewQuery,
        response: { 200: SubscriptionOverviewSchema, ...errorResponses(400, 401, 403, 500) },
      },
    },
    async (request, reply) => {
      requireAdmin(request)
      const { format: _format, ...query } = request.query
      const body = overviewBody(await subscriptionOverview.overview(query))
      if (wantsCsv(request))
        return sendCsv(
          reply,
          `subscription-overview-${body.window.days}d`,
          RANKING_COLUMNS,
          body.subscriptions,
        )
      return body
    },
  )
}
