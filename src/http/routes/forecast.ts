/** GET .../forecast and GET .../insights: the period projected forward, and ranked recommendations. */
import { type Static, Type } from "typebox"
import { DateTime, Nullable } from "../../core/formats.js"
import { INSIGHT_KINDS } from "../../core/insights.js"
import type { Projection, SubscriptionForecast } from "../../forecast/service.js"
import { OneOf } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { SubscriptionIdParams } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const Method = OneOf(
  ["holt_winters", "daily_mean", "run_rate", "none"] as const,
  "holt_winters: two weeks of history or more; daily_mean: under two weeks; run_rate: under a day; none: no usage.",
)
const projectionFields = {
  method: Method,
  used_tokens: Type.Integer({ description: "Billed tokens so far this period." }),
  forecast_tokens: Type.Integer({ description: "Forecast for the rest of the period." }),
  projected_tokens: Type.Integer({
    description:
      "used + forecast: the period's projected billed total. Turns past the quota are denied, so it stops at the token limit (or at used_tokens when that is more); a channel's forecast shrinks in proportion.",
  }),
  lower: Type.Integer({ description: "95% prediction interval of projected_tokens, lower bound." }),
  upper: Type.Integer({ description: "95% prediction interval of projected_tokens, upper bound." }),
}

export const ForecastSchema = Type.Object(
  {
    subscription_id: Type.String(),
    generated_at: DateTime(),
    period_start: DateTime(),
    period_end: DateTime(),
    token_limit: Type.Integer(),
    history_days: Type.Integer({ description: "Whole days of history the model used (at most 56)." }),
    total: Type.Object({
      ...projectionFields,
      quota_exhausted_at: Nullable(
        DateTime(),
        "When the quota runs out: projected within this period (quota_state runs_out), or when turns began to be refused with quota_exceeded (spent, over); null if it lasts.",
      ),
      quota_state: OneOf(
        ["none", "lasts", "runs_out", "spent", "over"] as const,
        "none: no limit set; lasts: the forecast stays under it; runs_out: the forecast reaches it before the period ends; spent: turns were refused with quota_exceeded this period; over: more used than the limit (the limit was lowered below the use).",
      ),
      denied_tokens: Type.Integer({
        description:
          "Demand forecast past the quota before the period ends: turns that will be denied (quota_exceeded), so not in projected_tokens.",
      }),
    }),
    channels: Type.Array(Type.Object({ channel: Type.String(), ...projectionFields })),
    activity_period: Type.Object(
      { from: Type.String(), to: Type.String(), timezone: Type.String() },
      {
        description:
          "The local days the insights read: the last 30, today so far included, in the subscription's timezone: the analytics API's default period, so their figures match it.",
      },
    ),
  },
  { $id: "Forecast" },
)
/** The forecast as the API answers it (the dashboard imports this type). */
export type ForecastBody = Static<typeof ForecastSchema>

export const InsightSchema = Type.Object({
  kind: OneOf(INSIGHT_KINDS, "What the recommendation is about."),
  channel: Nullable(Type.String()),
  severity: OneOf(["high", "medium", "low"] as const),
  score: Type.Number({ description: "0-100; the list is sorted by it." }),
  title: Type.String(),
  explanation: Type.String({ description: "Why, with the figures." }),
  action: Type.String(),
  evidence: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Null()])),
})

/** One insight as the API answers it. */
export type InsightBody = Static<typeof InsightSchema>

// One row per channel, then the total's row: its quota fields are empty on the channels' rows.
const FORECAST_COLUMNS = csvColumns(
  Type.Object({ channel: Type.String(), ...ForecastSchema.properties.total.properties }),
)
const INSIGHT_COLUMNS = csvColumns(InsightSchema)

function projectionBody(p: Projection) {
  return {
    method: p.method,
    used_tokens: p.usedTokens,
    forecast_tokens: p.forecastTokens,
    projected_tokens: p.projectedTokens,
    lower: p.lower,
    upper: p.upper,
  }
}

function forecastBody(f: SubscriptionForecast): ForecastBody {
  return {
    subscription_id: f.subscriptionId,
    generated_at: f.generatedAt.toISOString(),
    period_start: f.periodStart.toISOString(),
    period_end: f.periodEnd.toISOString(),
    token_limit: f.tokenLimit,
    history_days: f.historyDays,
    total: {
      ...projectionBody(f.total),
      quota_exhausted_at: f.total.quotaExhaustedAt?.toISOString() ?? null,
      quota_state: f.total.quotaState,
      denied_tokens: f.total.deniedTokens,
    },
    channels: f.channels.map((c) => ({ channel: c.channel, ...projectionBody(c) })),
    activity_period: f.activityPeriod,
  }
}

export const forecastRoutes: RouteModule = (app, { forecasts, keys }) => {
  const auth = authenticate(keys)
  const tags = ["analytics"]

  app.get(
    "/api/onboarding/analytics/:subscription_id/forecast",
    {
      onRequest: auth,
      schema: {
        operationId: "getForecast",
        tags,
        summary: "Projected billed tokens to the end of the billing period, per channel and in total",
        description:
          "Holt-Winters with a weekly season on daily billed tokens (last 56 days), falling back to the last week's daily mean under two weeks of history and to the run rate under one day. The total is fitted on the total series, so it need not equal the sum of the channels. `format=csv` or `Accept: text/csv` answers CSV: one row per channel, then a row with channel `total` (the only one with quota_exhausted_at, quota_state and denied_tokens).",
        security: bearerSecurity,
        params: SubscriptionIdParams,
        querystring: FormatQuery,
        response: { 200: Type.Ref("Forecast"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const body = forecastBody(await forecasts.forecast(id, scopeFor(request, id)))
      if (wantsCsv(request)) {
        const rows = [...body.channels, { channel: "total", ...body.total }]
        return sendCsv(reply, `forecast-${body.period_start.slice(0, 10)}`, FORECAST_COLUMNS, rows)
      }
      return body
    },
  )

  app.get(
    "/api/onboarding/analytics/:subscription_id/insights",
    {
      onRequest: auth,
      schema: {
        operationId: "getInsights",
        tags,
        summary: "Ranked, explained recommendations: upsells, rate limits, efficiency, quota",
        description:
          "`format=csv` or `Accept: text/csv` answers the insights as CSV, one row per insight, in rank order (evidence as JSON text).",
        security: bearerSecurity,
        params: SubscriptionIdParams,
        querystring: FormatQuery,
        response: {
          200: Type.Object({
            subscription_id: Type.String(),
            generated_at: DateTime(),
            insights: Type.Array(InsightSchema),
            forecast: Type.Ref("Forecast"),
          }),
          ...errorResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const { forecast, insights } = await forecasts.insights(id, scopeFor(request, id))
      if (wantsCsv(request)) return sendCsv(reply, "insights", INSIGHT_COLUMNS, insights)
      return {
        subscription_id: id,
        generated_at: forecast.generatedAt.toISOString(),
        insights,
        forecast: forecastBody(forecast),
      }
    },
  )
}
