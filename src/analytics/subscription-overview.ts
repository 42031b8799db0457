/**
 * The operator's cross-subscription overview (issue 16, admin only): every subscription with its quota use
 * this billing period and its usage, denials and growth over a window of whole hours, ranked.
 *
 * Cost: one read of the subscriptions, one of the quota counters of the current periods, and one
 * aggregate over `channel_usage_hourly` for the two windows (at most 2 x 90 days). The hourly rollup has
 * no index led by time, so that aggregate reads the whole table: fine for an operator's page with up to a
 * few thousand subscriptions; beyond that, add an index on `(bucket_start)` or keep a per-subscription
 * daily rollup. Figures are exact: the rollups equal the ledger (ARCHITECTURE.md, "Analytics rollups").
 */
import { type Kysely, sql } from "kysely"
import type { Clock } from "../core/clock.js"
import type { SubscriptionStatus } from "../core/decision.js"
import { billingPeriodAt } from "../core/period.js"
import type { Plan } from "../core/plans.js"
import {
  DEFAULT_OVERVIEW_DAYS,
  type OverviewWindow,
  overviewWindow,
  type RankedFigures,
  type RankingSort,
  rankSubscriptions,
  type SubscriptionUsageFigures,
} from "../core/subscription-ranking.js"
import type { Database } from "../storage/database.js"
import type { DB } from "../storage/schema.js"

export interface SubscriptionOverviewRow extends SubscriptionUsageFigures, RankedFigures {
  entityId: string
  entityType: string
  plan: Plan
  status: SubscriptionStatus
  periodStart: Date
  periodEnd: Date
}

export interface SubscriptionOverview {
  generatedAt: Date
  window: OverviewWindow
  sort: RankingSort
  order: "asc" | "desc"
  /** How many subscriptions there are; `subscriptions` holds the first `limit` of the ranking. */
  total: number
  subscriptions: SubscriptionOverviewRow[]
}

export interface OverviewQuery {
  days?: number | undefined
  sort?: RankingSort | undefined
  order?: "asc" | "desc" | undefined
  limit?: number | undefined
}

interface WindowSums {
  subscription_id: string
  tokens_used: string | number | null
  message_count: string | number | null
  denied_count: string | number | null
  previous_tokens_used: string | number | null
}

/** Allowed tokens and turns, denied turns, and the previous window's allowed tokens, per subscription. */
async function windowSums(db: Kysely<DB>, window: OverviewWindow): Promise<Map<string, WindowSums>> {
  const result = await sql<WindowSums>`
    select subscription_id,
      sum(tokens_used) filter (where denial_reason = '' and bucket_start >= ${window.start}) as tokens_used,
      sum(turn_count) filter (where denial_reason = '' and bucket_start >= ${window.start}) as message_count,
      sum(turn_count) filter (where denial_reason <> '' and bucket_start >= ${window.start}) as denied_count,
      sum(tokens_used) filter (where denial_reason = '' and bucket_start < ${window.start}) as previous_tokens_used
    from channel_usage_hourly
    where bucket_start >= ${window.previousStart} and bucket_start < ${window.end}
    group by subscription_id`.execute(db)
  return new Map(result.rows.map((row) => [row.subscription_id, row]))
}

/** The counters of periods starting at or after `since`, by subscription and period start. */
async function quotaCounters(db: Kysely<DB>, since: Date): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom("quota_counters")
    .select(["subscription_id", "period_start", "used_tokens"])
    .where("period_start", ">=", since)
    .execute()
  return new Map(rows.map((r) => [`${r.subscription_id}:${r.period_start.getTime()}`, Number(r.used_tokens)]))
}

export class SubscriptionOverviewService {
  constructor(private readonly options: { database: Database; clock: Clock }) {}

  /** The ranking, as the trusted service (the admin's view of every subscription). */
  async overview(query: OverviewQuery = {}): Promise<SubscriptionOverview> {
    const now = new Date(this.options.clock.now())
    const window = overviewWindow(query.days ?? DEFAULT_OVERVIEW_DAYS, now)
    const sort = query.sort ?? "tokens_used"
    const order = query.order ?? "desc"
    const db = this.options.database.db
    const subscriptions = await db.selectFrom("subscriptions").selectAll().execute()
    const periods = new Map(subscriptions.map((s) => [s.id, billingPeriodAt(s.period_anchor, now)] as const))
    let earliest = now.getTime()
    for (const period of periods.values()) earliest = Math.min(earliest, period.start.getTime())
    const [sums, counters] = await Promise.all([
      windowSums(db, window),
      quotaCounters(db, new Date(earliest)),
    ])
    const rows = subscriptions.map((s) => {
      const period = periods.get(s.id) ?? billingPeriodAt(s.period_anchor, now)
      const sum = sums.get(s.id)
      return {
        subscriptionId: s.id,
        entityId: s.entity_id,
        entityType: s.entity_type,
        plan: s.plan as Plan,
        status: s.status as SubscriptionStatus,
        tokenLimit: Number(s.token_limit),
        periodStart: period.start,
        periodEnd: period.end,
        quotaUsedTokens: counters.get(`${s.id}:${period.start.getTime()}`) ?? 0,
        tokensUsed: Number(sum?.tokens_used ?? 0),
        messageCount: Number(sum?.message_count ?? 0),
        deniedCount: Number(sum?.denied_count ?? 0),
        previousTokensUsed: Number(sum?.previous_tokens_used ?? 0),
      }
    })
    const ranked = rankSubscriptions(rows, sort, order)
    return {
      generatedAt: now,
      window,
      sort,
      order,
      total: ranked.length,
      subscriptions: ranked.slice(0, query.limit ?? 100),
    }
  }
}
