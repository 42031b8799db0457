/**
 * Forecasts and insights for one subscription: reads its ledger with the named queries, then projects and
 * ranks with the pure functions in core/forecast.ts and core/insights.ts.
 */
import type { Kysely } from "kysely"
import { firstTurnAt } from "../alerts/queries.js"
import type { RecommendationService } from "../analytics/recommendations.js"
import type { Clock } from "../core/clock.js"
import {
  DAY_MS,
  type DailyForecast,
  type ForecastMethod,
  forecastDays,
  quotaExhaustionAt,
} from "../core/forecast.js"
import { type Insight, rankInsights } from "../core/insights.js"
import { billingPeriodAt } from "../core/period.js"
import { recommendationInsights } from "../core/recommendations.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { addDays, todayIn, zonedStartOfDay } from "../core/time-zones.js"
import type { Database } from "../storage/database.js"
import { usedTokensInPeriod } from "../storage/ledger.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { billedTokensByChannel, channelActivity, dailyDemandTokens, firstQuotaRefusal } from "./queries.js"

/** Local days the insights read: the last 30, today so far included (the analytics API's default). */
export const INSIGHT_DAYS = 30

/** Days of history the model looks at: eight weeks of weekly season. */
export const FORECAST_HISTORY_DAYS = 56

export interface Projection {
  method: ForecastMethod
  /** Billed tokens so far this period. */
  usedTokens: number
  /** Forecast for the rest of the period. */
  forecastTokens: number
  /** used + forecast, with its 95% prediction interval. */
  projectedTokens: number
  lower: number
  upper: number
}

/**
 * Where the quota stands: "none" (no limit set), "lasts" (the forecast stays under it), "runs_out" (the
 * forecast reaches it before the period ends), "spent" (turns were already refused with quota_exceeded
 * this period), "over" (more used than the limit, which happens when the limit is lowered below the use).
 */
export type QuotaState = "none" | "lasts" | "runs_out" | "spent" | "over"

export interface SubscriptionForecast {
  subscriptionId: string
  generatedAt: Date
  periodStart: Date
  periodEnd: Date
  tokenLimit: number
  historyDays: number
  total: Projection & {
    /** When the quota runs out (projected), or ran out (the first quota_exceeded refusal); null if it lasts. */
    quotaExhaustedAt: Date | null
    quotaState: QuotaState
    /** Demand the forecast expects past the quota: turns that will be refused, not billed. */
    deniedTokens: number
  }
  channels: Array<Projection & { channel: string }>
  /** The 30 local days (today so far included) the insights read, in the subscription's timezone. */
  activityPeriod: { from: string; to: string; timezone: string }
}

export class ForecastService {
  constructor(
    private readonly options: {
      database: Database
      clock: Clock
      /** Folds the channel recommendations of the insight days into the insights (absent: not folded). */
      recommendations?: RecommendationService
    },
  ) {}

  /** The period projected to its end, per channel and in total. */
  async forecast(subscriptionId: string, scope?: TenantScope): Promise<SubscriptionForecast> {
    return this.inScope(scope, subscriptionId, (db, subscription) => this.project(db, subscription))
  }

  /** Ranked, explained recommendations. */
  async insights(
    subscriptionId: string,
    scope?: TenantScope,
  ): Promise<{ forecast: SubscriptionForecast; insights: Insight[] }> {
    const answer = await this.inScope(scope, subscriptionId, async (db, subscription) => {
      const forecast = await this.project(db, subscription)
      const at = forecast.generatedAt
      const today = todayIn(subscription.timezone, at)
      const startOf = (daysAgo: number) => zonedStartOfDay(addDays(today, -daysAgo), subscription.timezone)
      const channels = await channelActivity(db, subscription.id, {
        from: startOf(INSIGHT_DAYS - 1),
        lastWeek: startOf(6),
        weekBefore: startOf(13),
        to: at,
      })
      const insights = rankInsights({
        plan: subscription.plan,
        channels,
        quotaExhaustedAt: forecast.total.quotaExhaustedAt?.getTime() ?? null,
        quotaState: forecast.total.quotaState,
        usedTokens: forecast.total.usedTokens,
        deniedTokens: forecast.total.deniedTokens,
        periodEnd: forecast.periodEnd.getTime(),
        now: at.getTime(),
        tokenLimit: subscription.tokenLimit,
        projectedTokens: forecast.total.projectedTokens,
        timeZone: subscription.timezone,
      })
      return { forecast, insights }
    })
    // After the scope is released: the recommendations read in their own (a tenant's scope is one
    // connection). Their default period is the insight days: the last 30 local days, today included.
    if (this.options.recommendations === undefined) return answer
    const recommended = await this.options.recommendations.recommendations(subscriptionId, {}, scope)
    const insights = [...answer.insights, ...recommendationInsights(recommended.channels)].sort(
      (a, b) => b.score - a.score,
    )
    return { forecast: answer.forecast, insights }
  }

  private async project(db: Kysely<DB>, subscription: Subscription): Promise<SubscriptionForecast> {
    const now = this.options.clock.now()
    const at = new Date(now)
    const period = billingPeriodAt(subscription.periodAnchor, at)
    // Observed since the period began, or since the first turn when that is earlier (imports, earlier
    // periods). Never from the first turn alone: the quiet time between the period's start and a first turn
    // is usage too (zero), and measuring from the first turn turned 321 tokens in 10 s into 100 million.
    const first = await firstTurnAt(db, subscription.id)
    const since = first ? new Date(Math.min(first.getTime(), period.start.getTime())) : null
    const observedMs = since ? Math.max(0, now - since.getTime()) : 0
    const days = since ? Math.min(FORECAST_HISTORY_DAYS, Math.floor(observedMs / DAY_MS)) : 0
    const history = await dailyDemandTokens(db, subscription.id, at, days)
    const periodByChannel = await billedTokensByChannel(db, subscription.id, period.start, at)
    const used = await usedTokensInPeriod(db, subscription.id, period.start)
    const horizon = Math.max(0, (period.end.getTime() - now) / DAY_MS)
    const elapsed = Math.min(1, observedMs / DAY_MS)
    const partialDay =
      since && days === 0
        ? await billedTokensByChannel(db, subscription.id, since, at)
        : new Map<string, number>()

    const channelNames = [
      ...new Set([...history.keys(), ...periodByChannel.keys(), ...partialDay.keys()]),
    ].sort()
    const channels = channelNames.map((channel) => {
      const series = history.get(channel) ?? Array.from({ length: days }, () => 0)
      const result = forecastDays(series, horizon, {
        tokens: partialDay.get(channel) ?? 0,
        elapsedDays: elapsed,
      })
      return { channel, ...projection(result, periodByChannel.get(channel) ?? 0) }
    })
    const totalSeries = Array.from({ length: days }, (_, i) =>
      channelNames.reduce((sum, c) => sum + (history.get(c)?.[i] ?? 0), 0),
    )
    const totalPartial = [...partialDay.values()].reduce((a, b) => a + b, 0)
    const totalResult = forecastDays(totalSeries, horizon, { tokens: totalPartial, elapsedDays: elapsed })
    const limit = subscription.tokenLimit
    const refusedSince = limit > 0 ? await firstQuotaRefusal(db, subscription.id, period.start, at) : null
    const exhaustion = quotaExhaustionAt(used, limit, totalResult.daily, now)
    const runsOut = exhaustion !== null && exhaustion < period.end.getTime()
    const quotaState: QuotaState =
      limit === 0
        ? "none"
        : used > limit
          ? "over"
          : refusedSince !== null || used >= limit
            ? "spent"
            : runsOut
              ? "runs_out"
              : "lasts"
    // Turns past the quota are refused, so billed tokens stop at the limit (or at what is already used,
    // when that is more): the rest of the demand is projected as denied, and each channel's share of the
    // forecast shrinks in proportion.
    const ceiling = limit === 0 ? Number.POSITIVE_INFINITY : Math.max(used, limit)
    const total = capped(projection(totalResult, used), ceiling)
    const demand = used + totalResult.total
    const scale = totalResult.total > 0 ? (total.projectedTokens - used) / totalResult.total : 1
    const timezone = subscription.timezone
    const today = todayIn(timezone, at)
    return {
      subscriptionId: subscription.id,
      generatedAt: at,
      periodStart: period.start,
      periodEnd: period.end,
      tokenLimit: limit,
      historyDays: days,
      total: {
        ...total,
        quotaState,
        quotaExhaustedAt:
          quotaState === "spent" || quotaState === "over"
            ? refusedSince
            : runsOut && exhaustion !== null
              ? new Date(exhaustion)
              : null,
        deniedTokens: Math.max(0, Math.round(demand - total.projectedTokens)),
      },
      channels: channels.map((c) => scaled(c, scale)),
      activityPeriod: { from: addDays(today, -(INSIGHT_DAYS - 1)), to: today, timezone },
    }
  }

  /** Runs `fn` in the caller's scope after checking the subscription is visible there. */
  private inScope<T>(
    scope: TenantScope | undefined,
    subscriptionId: string,
    fn: (db: Kysely<DB>, subscription: Subscription) => Promise<T>,
  ): Promise<T> {
    return withVisibleSubscription(this.options.database, scope, subscriptionId, fn)
  }
}

/** A projection whose billed tokens cannot pass `ceiling`. */
function capped(p: Projection, ceiling: number): Projection {
  const cap = (value: number) => Math.min(value, Math.max(ceiling, p.usedTokens))
  const projectedTokens = cap(p.projectedTokens)
  return {
    ...p,
    projectedTokens,
    forecastTokens: projectedTokens - p.usedTokens,
    lower: cap(p.lower),
    upper: cap(p.upper),
  }
}

/** A channel's forecast scaled by `factor` (the share of the total forecast the quota leaves). */
function scaled<T extends Projection>(p: T, factor: number): T {
  if (factor >= 1) return p
  const part = (value: number) => p.usedTokens + Math.round((value - p.usedTokens) * factor)
  return {
    ...p,
    forecastTokens: Math.round(p.forecastTokens * factor),
    projectedTokens: part(p.projectedTokens),
    lower: part(p.lower),
    upper: part(p.upper),
  }
}

function projection(result: DailyForecast, used: number): Projection {
  return {
    method: result.method,
    usedTokens: used,
    forecastTokens: Math.round(result.total),
    projectedTokens: Math.round(used + result.total),
    lower: Math.round(used + result.lower),
    upper: Math.round(used + result.upper),
  }
}
