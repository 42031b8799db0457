/**
 * The analytics answers as domain values (camelCase, instants as Dates). `http` maps them to the API's
 * snake_case bodies (src/http/analytics-schemas.ts, where every metric's definition is written) with the
 * one mapper in src/core/casing.ts; the compiler checks that the two agree field for field.
 */
import type { Channel } from "../core/channels.js"
import type { LedgerDenialReason } from "../core/decision.js"

/** What an answer's efficiency_score measures: messages or value per 1,000 billed tokens. */
export type EfficiencyBasis = "messages" | "value"

/** A range of local days and the exact interval it covers, end excluded. */
export interface Period {
  from: string
  to: string
  days: number
  start: Date
  end: Date
  /**
   * The last complete local day of the period: `to` once the period is over, the day before today while
   * it runs, null when not one of its days is over yet. Trend and growth read only the complete days.
   */
  completeTo: string | null
}

/** Denied turns by reason, every reason present. */
/** Denied turns by ledger denial reason: `quota_reserved` counts the quota reserve's refusals. */
export type DeniedByReason = Record<LedgerDenialReason, number>

export interface HourlyBucket {
  hour: number
  tokensUsed: number
  messageCount: number
}

export interface DailyPoint {
  date: string
  tokensUsed: number
  messageCount: number
}

export type TrendDirection = "increasing" | "decreasing" | "stable"
export type PerformanceRating = "Excellent" | "Good" | "Average" | "Poor"

/**
 * The counts and derived figures shared by a channel and the totals. The names follow the wire (see the
 * glossary in ARCHITECTURE.md): `tokensUsed` is billed tokens, `messageCount` the allowed turns,
 * `deniedCount` the denied ones.
 */
export interface UsageFigures {
  tokensUsed: number
  rawTokens: number
  messageCount: number
  deniedCount: number
  deniedByReason: DeniedByReason
  uniqueUsers: number
  /** Distinct people: linked identifiers count once, an unlinked identifier on one channel is one person. */
  uniquePeople: number
  avgTokensPerMessage: number
  peakUsageHour: number | null
  growth: { tokensUsed: number | null; messageCount: number | null; uniqueUsers: number | null }
  /** The figures of the period's complete days, which growth compares with `previous`. */
  complete: { tokensUsed: number; messageCount: number; uniqueUsers: number }
  previous: { tokensUsed: number; messageCount: number; uniqueUsers: number }
  trendDirection: TrendDirection
  trendSlope: number
}

/** A channel's share, efficiency and rating, relative to the channels of the answer. */
export interface ChannelScores {
  usageShare: number
  messagesPer1kTokens: number | null
  /** Value credited to the channel per 1,000 billed tokens; null unless the answer's basis is value. */
  valuePer1kTokens: number | null
  efficiencyScore: number | null
  performanceRating: PerformanceRating | null
}

export interface TotalStats extends UsageFigures {
  hourlyDistribution: HourlyBucket[]
  dailyTrends: DailyPoint[]
}

export interface ChannelStats extends TotalStats, ChannelScores {
  channel: Channel
}

interface AnswerHeader {
  subscriptionId: string
  timezone: string
  period: Period
  previousPeriod: Period
  generatedAt: Date
}

export interface ComprehensiveAnalytics extends AnswerHeader {
  /** What efficiency_score measures in this answer: value when the period's outcomes earned any. */
  efficiencyBasis: EfficiencyBasis
  channels: ChannelStats[]
  totals: TotalStats
}

export interface ComparisonRow extends UsageFigures, ChannelScores {
  rank: number
  channel: Channel
}

export type BestWorst = { best: Channel; worst: Channel } | null

export interface Comparison extends AnswerHeader {
  efficiencyBasis: EfficiencyBasis
  channels: ComparisonRow[]
  bestAndWorst: {
    tokensUsed: BestWorst
    messageCount: BestWorst
    uniqueUsers: BestWorst
    avgTokensPerMessage: BestWorst
    usageShare: BestWorst
    efficiencyScore: BestWorst
    tokensGrowth: BestWorst
  }
  totals: Pick<
    UsageFigures,
    | "tokensUsed"
    | "rawTokens"
    | "messageCount"
    | "deniedCount"
    | "uniqueUsers"
    | "uniquePeople"
    | "avgTokensPerMessage"
  >
}

export interface TrendPoint {
  start: Date
  date: string
  hour: number | null
  tokensUsed: number
  rawTokens: number
  messageCount: number
  deniedCount: number
}

export interface Trends extends AnswerHeader {
  channel: Channel
  granularity: "daily" | "hourly"
  points: TrendPoint[]
  summary: UsageFigures
}
