/** Channel analytics (issue 4): comprehensive, channel comparison, one channel's trends. */

import { wireForm } from "../../core/casing.js"
import {
  AnalyticsParams,
  AnalyticsQuery,
  ComparisonSchema,
  ComprehensiveAnalyticsSchema,
  TrendsParams,
  TrendsQuery,
  TrendsSchema,
} from "../analytics-schemas.js"
import { authenticate, scopeFor } from "../auth.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const PERIOD_RULES =
  "Days and hours are counted in the subscription's timezone (or `tz`), exactly, including 23- and 25-hour DST days and half- and quarter-hour offsets. A bad date, `from` after `to`, a period over 400 days, an unknown timezone or an unknown channel answers 400 naming the parameter. Turns count the moment their consume returns; imported turns count on the day they happened; settlement replaces a turn's estimate with its actual tokens."

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
        description: `Per channel: the product's Channel Usage Statistics (channel, tokens_used, message_count, unique_users, avg_tokens_per_message, peak_usage_hour, performance_rating) and raw_tokens, denials by reason, usage_share, efficiency, growth against the period before, trend direction, hourly distribution and daily trends; and the totals. ${PERIOD_RULES}`,
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: AnalyticsQuery,
        response: { 200: ComprehensiveAnalyticsSchema, ...errors },
      },
    },
    async (request) => {
      const id = request.params.subscription_id
      return wireForm(await analytics.comprehensive(id, request.query, scopeFor(request, id)))
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
        description: PERIOD_RULES,
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: AnalyticsQuery,
        response: { 200: ComparisonSchema, ...errors },
      },
    },
    async (request) => {
      const id = request.params.subscription_id
      return wireForm(await analytics.comparison(id, request.query, scopeFor(request, id)))
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
        description: `granularity=hourly is served for periods of at most 14 days (400 naming granularity otherwise). \`channels\`, when given, must include the channel of the path. ${PERIOD_RULES}`,
        security: bearerSecurity,
        params: TrendsParams,
        querystring: TrendsQuery,
        response: { 200: TrendsSchema, ...errors },
      },
    },
    async (request) => {
      const { subscription_id: id, channel } = request.params
      return wireForm(await analytics.trends(id, channel, request.query, scopeFor(request, id)))
    },
  )
}
