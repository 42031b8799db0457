/**
 * The operator's cross-subscription overview (issue 16): every subscription's usage over a window of
 * whole hours, its quota use this billing period, its denials and its growth, ranked by one of them. Pure.
 */
import { growthPercent, round2 } from "./analytics.js"

export const RANKING_SORTS = ["tokens_used", "quota_used", "denied_count", "growth"] as const
export type RankingSort = (typeof RANKING_SORTS)[number]

/** The longest window the overview reads (the rollups keep everything; this bounds one answer's cost). */
export const MAX_OVERVIEW_DAYS = 90
export const DEFAULT_OVERVIEW_DAYS = 7

/** The window and the one before it: `days` x 24 whole UTC hours ending at the start of the current hour. */
export interface OverviewWindow {
  days: number
  previousStart: Date
  start: Date
  /** Excluded: the current hour, still running, is left out of both windows so they compare like for like. */
  end: Date
}

const HOUR = 3_600_000

/**
 * @example overviewWindow(7, new Date("2026-03-10T15:42:00Z"))
 * // { days: 7, start: 2026-03-03T15:00Z, end: 2026-03-10T15:00Z, previousStart: 2026-02-24T15:00Z }
 */
export function overviewWindow(days: number, now: Date): OverviewWindow {
  if (!Number.isInteger(days) || days < 1 || days > MAX_OVERVIEW_DAYS)
    throw new RangeError(`days must be an integer from 1 to ${MAX_OVERVIEW_DAYS}, got ${days}`)
  const end = Math.floor(now.getTime() / HOUR) * HOUR
  const span = days * 24 * HOUR
  return { days, start: new Date(end - span), end: new Date(end), previousStart: new Date(end - 2 * span) }
}

export interface SubscriptionUsageFigures {
  subscriptionId: string
  tokenLimit: number
  /** Billed tokens charged this billing period (the quota counter). */
  quotaUsedTokens: number
  tokensUsed: number
  messageCount: number
  deniedCount: number
  previousTokensUsed: number
}

export interface RankedFigures {
  rank: number
  /** Percent of the token limit used this billing period, 2 decimals; over 100 when over quota; null with no limit. */
  quotaUsedPercent: number | null
  overQuota: boolean
  /** Denied turns as a percent of all turns in the window, 2 decimals; null with no turns. */
  denialRate: number | null
  /** Percent change of tokens_used against the window before; null when that was 0. */
  growth: number | null
}

function sortValue(row: SubscriptionUsageFigures & RankedFigures, sort: RankingSort): number | null {
  switch (sort) {
    case "tokens_used":
      return row.tokensUsed
    case "quota_used":
      return row.quotaUsedPercent
    case "denied_count":
      return row.deniedCount
    case "growth":
      return row.growth
  }
}

/**
 * The figures derived per subscription, ranked by `sort` (`order` desc: biggest first). A subscription
 * without a value for the sort (growth with nothing before, quota share with a zero limit) comes last in
 * either order; ties go by subscription id, so the ranking is stable. Ranks are 1..n without gaps.
 * @example rankSubscriptions([a, b], "growth", "desc")[0].rank // 1
 */
export function rankSubscriptions<T extends SubscriptionUsageFigures>(
  rows: readonly T[],
  sort: RankingSort,
  order: "asc" | "desc",
): Array<T & RankedFigures> {
  const derived = rows.map((row) => {
    const turns = row.messageCount + row.deniedCount
    return {
      ...row,
      rank: 0,
      quotaUsedPercent: row.tokenLimit > 0 ? round2((100 * row.quotaUsedTokens) / row.tokenLimit) : null,
      overQuota: row.quotaUsedTokens > row.tokenLimit,
      denialRate: turns > 0 ? round2((100 * row.deniedCount) / turns) : null,
      growth: growthPercent(row.tokensUsed, row.previousTokensUsed),
    }
  })
  const direction = order === "desc" ? -1 : 1
  derived.sort((a, b) => {
    const x = sortValue(a, sort)
    const y = sortValue(b, sort)
    if (x === null || y === null) {
      if (x !== y) return x === null ? 1 : -1
    } else if (x !== y) return direction * (x - y)
    return a.subscriptionId < b.subscriptionId ? -1 : a.subscriptionId > b.subscriptionId ? 1 : 0
  })
  return derived.map((row, index) => ({ ...row, rank: index + 1 }))
}
