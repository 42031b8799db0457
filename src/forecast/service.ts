/**
 * Forecasts and insights for one subscription: reads its ledger with the named queries, then projects and
 * ranks with the pure functions in core/forecast.ts and core/insights.ts.
 */
import type { Kysely } from "kysely"
import { firstTurnAt } from "../alerts/queries.js"
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
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import type { Database } from "../storage/database.js"
import { usedTokensInPeriod } from "../storage/ledger.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { billedTokensByChannel, channelActivity, dailyBilledTokens } from "./queries.js"

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

export interface SubscriptionForecast {
  subscriptionId: string
  generatedAt: Date
  periodStart: Date
  periodEnd: Date
  tokenLimit: number
  historyDays: number
  total: Projection & { quotaExhaustedAt: Date | null }
  channels: Array<Projection & { channel: string }>
}

export class ForecastService {
  constructor(private readonly options: { database: Database; clock: Clock }) {}

  /** The period projected to its end, per channel and in total. */
  async forecast(subscriptionId: string, scope?: TenantScope): Promise<SubscriptionForecast> {
    return this.inScope(scope, subscriptionId, (db, subscription) => this.project(db, subscription))
  }

  /** Ranked, explained recommendations. */
  async insights(
    subscriptionId: string,
    scope?: TenantScope,
  ): Promise<{ forecast: SubscriptionForecast; insights: Insight[] }> {
    return this.inScope(scope, subscriptionId, async (db, subscription) => {
      const forecast = await this.project(db, subscription)
      const channels = await channelActivity(db, subscription.id, forecast.generatedAt)
      const insights = rankInsights({
        plan: subscription.plan,
        channels,
        quotaExhaustedAt: forecast.total.quotaExhaustedAt?.getTime() ?? null,
        periodEnd: forecast.periodEnd.getTime(),
        now: forecast.generatedAt.getTime(),
        tokenLimit: subscription.tokenLimit,
        projectedTokens: forecast.total.projectedTokens,
      })
      return { forecast, insights }
    })
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
    const history = await dailyBilledTokens(db, subscription.id, at, days)
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
    const exhaustion = quotaExhaustionAt(used, subscription.tokenLimit, totalResult.daily, now)
    return {
      subscriptionId: subscription.id,
      generatedAt: at,
      periodStart: period.start,
      periodEnd: period.end,
      tokenLimit: subscription.tokenLimit,
      historyDays: days,
      total: {
        ...projection(totalResult, used),
        quotaExhaustedAt:
          exhaustion !== null && exhaustion < period.end.getTime() ? new Date(exhaustion) : null,
      },
      channels,
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
