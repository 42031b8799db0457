/**
 * Turns query rows into analytics answers with the formulas of src/core/analytics.ts. No I/O: everything
 * here is computed from the rows it is given, so the service decides what to read and this decides what
 * it means.
 */
import {
  avgTokensPerMessage,
  bestAndWorst,
  efficiencyScores,
  growthPercent,
  messagesPerThousandTokens,
  peakHour,
  performanceRating,
  trendDirection,
  usageShares,
} from "../core/analytics.js"
import type { Channel } from "../core/channels.js"
import { DENIAL_REASONS, type DenialReason } from "../core/decision.js"
import type { LocalDate } from "../core/time-zones.js"
import type {
  ChannelStatsBody,
  ComparisonBody,
  ComparisonRowBody,
  DeniedByReasonBody,
  TotalStatsBody,
} from "../http/analytics-schemas.js"
import type { LocalDayUsageRow, LocalHourUsageRow, UniqueUsersRow, UsageRow } from "./queries.js"

/** Everything counted for one channel (or the total) over a period. */
export interface Figures {
  tokens: number
  rawTokens: number
  messages: number
  denied: number
  deniedByReason: DeniedByReasonBody
  hourlyTokens: number[]
  hourlyMessages: number[]
  dailyTokens: Map<string, number>
  dailyMessages: Map<string, number>
}

const isDenialReason = (value: string): value is DenialReason =>
  (DENIAL_REASONS as readonly string[]).includes(value)

function emptyFigures(): Figures {
  return {
    tokens: 0,
    rawTokens: 0,
    messages: 0,
    denied: 0,
    deniedByReason: Object.fromEntries(DENIAL_REASONS.map((reason) => [reason, 0])) as DeniedByReasonBody,
    hourlyTokens: Array<number>(24).fill(0),
    hourlyMessages: Array<number>(24).fill(0),
    dailyTokens: new Map(),
    dailyMessages: new Map(),
  }
}

function addUsage(figures: Figures, row: UsageRow): void {
  if (row.denialReason === "") {
    figures.tokens += row.tokens
    figures.rawTokens += row.rawTokens
    figures.messages += row.turns
    return
  }
  figures.denied += row.turns
  if (isDenialReason(row.denialReason)) figures.deniedByReason[row.denialReason] += row.turns
}

const addTo = (map: Map<string, number>, key: string, value: number) =>
  map.set(key, (map.get(key) ?? 0) + value)

/** Per channel (every channel asked for, zero when unused) and in total. */
export interface FiguresByChannel {
  channels: Map<Channel, Figures>
  total: Figures
}

/** Folds day and hour rows (from one `usageByLocalDayAndHour` call) into figures. */
export function figuresFromLocalRows(
  channels: readonly Channel[],
  days: readonly LocalDayUsageRow[],
  hours: readonly LocalHourUsageRow[],
): FiguresByChannel {
  const byChannel = new Map<Channel, Figures>(channels.map((channel) => [channel, emptyFigures()]))
  const total = emptyFigures()
  for (const row of days) {
    const figures = byChannel.get(row.channel)
    if (figures === undefined) continue
    for (const target of [figures, total]) {
      addUsage(target, row)
      if (row.denialReason === "") {
        addTo(target.dailyTokens, row.localDate, row.tokens)
        addTo(target.dailyMessages, row.localDate, row.turns)
      }
    }
  }
  for (const row of hours) {
    const figures = byChannel.get(row.channel)
    if (figures === undefined || row.denialReason !== "") continue
    for (const target of [figures, total]) {
      target.hourlyTokens[row.hour] = (target.hourlyTokens[row.hour] ?? 0) + row.tokens
      target.hourlyMessages[row.hour] = (target.hourlyMessages[row.hour] ?? 0) + row.turns
    }
  }
  return { channels: byChannel, total }
}

/** Folds whole-period rows (from `usageTotals`) into figures without daily or hourly detail. */
export function figuresFromTotals(channels: readonly Channel[], rows: readonly UsageRow[]): FiguresByChannel {
  const byChannel = new Map<Channel, Figures>(channels.map((channel) => [channel, emptyFigures()]))
  const total = emptyFigures()
  for (const row of rows) {
    const figures = byChannel.get(row.channel)
    if (figures === undefined) continue
    addUsage(figures, row)
    addUsage(total, row)
  }
  return { channels: byChannel, total }
}

/** Distinct users per channel and in total. */
export interface UsersByChannel {
  channels: Map<Channel, number>
  total: number
}

export function usersFromRows(rows: readonly UniqueUsersRow[]): UsersByChannel {
  const channels = new Map<Channel, number>()
  let total = 0
  for (const row of rows) {
    if (row.channel === null) total = row.users
    else channels.set(row.channel, row.users)
  }
  return { channels, total }
}

/** The figures of one period and of the period before it, for one channel or the total. */
export interface PeriodFigures {
  current: Figures
  users: number
  previous: Figures
  previousUsers: number
}

type UsageFields = Omit<TotalStatsBody, "hourly_distribution" | "daily_trends">

/** The counts and derived figures shared by a channel and the totals. */
export function usageFields(figures: PeriodFigures, dates: readonly LocalDate[]): UsageFields {
  const { current, previous } = figures
  const trend = trendDirection(dates.map((date) => current.dailyTokens.get(date) ?? 0))
  return {
    tokens_used: current.tokens,
    raw_tokens: current.rawTokens,
    message_count: current.messages,
    denied_count: current.denied,
    denied_by_reason: current.deniedByReason,
    unique_users: figures.users,
    avg_tokens_per_message: avgTokensPerMessage(current.tokens, current.messages),
    peak_usage_hour: peakHour(current.hourlyTokens),
    growth: {
      tokens_used: growthPercent(current.tokens, previous.tokens),
      message_count: growthPercent(current.messages, previous.messages),
      unique_users: growthPercent(figures.users, figures.previousUsers),
    },
    previous: {
      tokens_used: previous.tokens,
      message_count: previous.messages,
      unique_users: figures.previousUsers,
    },
    trend_direction: trend.direction,
    trend_slope: trend.slope,
  }
}

export function hourlyDistribution(figures: Figures): TotalStatsBody["hourly_distribution"] {
  return figures.hourlyTokens.map((tokens, hour) => ({
    hour,
    tokens_used: tokens,
    message_count: figures.hourlyMessages[hour] ?? 0,
  }))
}

export function dailyTrends(figures: Figures, dates: readonly LocalDate[]): TotalStatsBody["daily_trends"] {
  return dates.map((date) => ({
    date,
    tokens_used: figures.dailyTokens.get(date) ?? 0,
    message_count: figures.dailyMessages.get(date) ?? 0,
  }))
}

type ChannelScores = Pick<
  ChannelStatsBody,
  "usage_share" | "messages_per_1k_tokens" | "efficiency_score" | "performance_rating"
>

/** Share, efficiency and rating of each channel, relative to the channels of the answer. */
export function channelScores(channels: ReadonlyMap<Channel, Figures>): Map<Channel, ChannelScores> {
  const entries = [...channels.entries()]
  const shares = usageShares(Object.fromEntries(entries.map(([channel, f]) => [channel, f.tokens])))
  const scores = efficiencyScores(
    Object.fromEntries(
      entries.map(([channel, f]) => [channel, { messageCount: f.messages, tokensUsed: f.tokens }]),
    ),
  )
  return new Map(
    entries.map(([channel, f]) => {
      const score = scores[channel] ?? null
      return [
        channel,
        {
          usage_share: shares[channel] ?? 0,
          messages_per_1k_tokens: messagesPerThousandTokens(f.messages, f.tokens),
          efficiency_score: score,
          performance_rating: performanceRating(score),
        },
      ]
    }),
  )
}

/**
 * The channels ranked by tokens_used (most first; ties keep the given order) with the best and worst
 * channel per metric.
 */
export function rankChannels(
  rows: ReadonlyArray<Omit<ComparisonRowBody, "rank">>,
): Pick<ComparisonBody, "channels" | "best_and_worst"> {
  const ranked = rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => b.row.tokens_used - a.row.tokens_used || a.index - b.index)
    .map(({ row }, index) => ({ rank: index + 1, ...row }))
  const metric = (value: (row: ComparisonRowBody) => number | null, higherIsBetter = true) => {
    const pair = bestAndWorst(
      Object.fromEntries(ranked.map((row) => [row.channel, value(row)])),
      higherIsBetter,
    )
    return pair === null ? null : { best: pair.best as Channel, worst: pair.worst as Channel }
  }
  return {
    channels: ranked,
    best_and_worst: {
      tokens_used: metric((row) => row.tokens_used),
      message_count: metric((row) => row.message_count),
      unique_users: metric((row) => row.unique_users),
      avg_tokens_per_message: metric(
        (row) => (row.message_count === 0 ? null : row.avg_tokens_per_message),
        false,
      ),
      usage_share: metric((row) => row.usage_share),
      efficiency_score: metric((row) => row.efficiency_score),
      tokens_growth: metric((row) => row.growth.tokens_used),
    },
  }
}
