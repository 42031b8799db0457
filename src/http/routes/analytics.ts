/** Channel analytics (issue 4): comprehensive, channel comparison, one channel's trends. */

import { camelCaseKeys, wireForm } from "../../core/casing.js"
import {
  AnalyticsParams,
  AnalyticsQuery,
  ChannelStatsSchema,
  ComparisonRowSchema,
  ComparisonSchema,
  ComprehensiveAnalyticsSchema,
  TrendPointSchema,
  TrendsParams,
  TrendsQuery,
  TrendsSchema,
} from "../analytics-schemas.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const CHANNEL_COLUMNS = csvColumns(ChannelStatsSchema)
const COMPARISON_COLUMNS = csvColumns(ComparisonRowSchema)
const TREND_COLUMNS = csvColumns(TrendPointSchema)

const FILTERS =
  "`chatbot_id` and `user_identifier` narrow every figure to one chatbot's or one end user's turns (the previous period's too). `format=csv` or `Accept: text/csv` answers CSV"

const PERIOD_RULES =
  "Days and hours are counted in the subscription's timezone (or `tz`), exactly, including 23- and 25-hour DST days and half- and quarter-hour offsets. A bad date, `from` after `to`, a period over 400 days, an unknown timezone or an unknown channel answers 400 naming the parameter. Turns count the moment their consume returns; imported turns count on the day they happened; settlement replaces a turn's estimate with its actual tokens. The partial-day rule: `to` defaults to today, which is not over, so its figures count the turns so far; trend_direction, trend_slope and growth read only the period's complete days (period.complete_to), and growth compares them with as many days just before (previous_period)."

export const analyticsRoutes: RouteModule = (app, { analytics, keys }) => {
  const auth = authenticate(keys)
  const tags = ["analytics"]
  const errors = errorResponses(400, 401, 404, 500)

  app.get(
    "/api/onboarding/analytics/:subscription_id",
    {
      onRequest: auth,
      schema: {
        operationId: "getChannelAnalytics",
        tags,
        summary: "Comprehensive channel analytics of a subscription over a period",
        description: `Per channel: the product's Channel Usage Statistics (channel, tokens_used, message_count, unique_users, avg_tokens_per_message, peak_usage_hour, performance_rating) and raw_tokens, denials by reason, usage_share, efficiency, growth against the period before, trend direction, hourly distribution and daily trends; and the totals. ${FILTERS}: one row per channel with the scalar fields (nested ones as growth.tokens_used), then a row with channel \`total\`. ${PERIOD_RULES}`,
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: AnalyticsQuery,
        response: { 200: ComprehensiveAnalyticsSchema, ...errors },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const answer = wireForm(
        await analytics.comprehensive(id, camelCaseKeys(request.query), scopeFor(request, id)),
      )
      if (wantsCsv(request)) {
        const rows = [...answer.channels, { channel: "total", ...answer.totals }]
        return sendCsv(reply, `analytics-${answer.period.from}-${answer.period.to}`, CHANNEL_COLUMNS, rows)
      }
      return answer
    },
  )

  app.get(
    "/api/onboarding/analytics/:subscription_id/channels/comparison",
    {
      onRequest: auth,
      schema: {
        operationId: "compareChannels",
        tags,
        summary: "The channels side by side, ranked by tokens_used, with the best and worst per metric",
        description: `${FILTERS}: one row per channel. ${PERIOD_RULES}`,
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: AnalyticsQuery,
        response: { 200: ComparisonSchema, ...errors },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const answer = wireForm(
        await analytics.comparison(id, camelCaseKeys(request.query), scopeFor(request, id)),
      )
      if (wantsCsv(request)) {
        const name = `channel-comparison-${answer.period.from}-${answer.period.to}`
        return sendCsv(reply, name, COMPARISON_COLUMNS, answer.channels)
      }
      return answer
    },
  )

  app.get(
    "/api/onboarding/analytics/:subscription_id/channels/:channel/trends",
    {
      onRequest: auth,
      schema: {
        operationId: "getChannelTrends",
        tags,
        summary: "One channel's usage per local day or hour, zero-filled, with its figures",
        description: `granularity=hourly is served for periods of at most 14 days (400 naming granularity otherwise). \`channels\`, when given, must include the channel of the path. ${FILTERS}: one row per point. ${PERIOD_RULES}`,
        security: bearerSecurity,
        params: TrendsParams,
        querystring: TrendsQuery,
        response: { 200: TrendsSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { subscription_id: id, channel } = request.params
      const answer = wireForm(
        await analytics.trends(id, channel, camelCaseKeys(request.query), scopeFor(request, id)),
      )
      if (wantsCsv(request)) {
        const name = `trends-${channel}-${answer.granularity}-${answer.period.from}-${answer.period.to}`
        return sendCsv(reply, name, TREND_COLUMNS, answer.points)
      }
      return answer
    },
  )
}
