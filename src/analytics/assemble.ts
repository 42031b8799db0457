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
  valueEfficiencyScores,
  valuePerThousandTokens,
} from "../core/analytics.js"
import type { Channel } from "../core/channels.js"
import { LEDGER_DENIAL_REASONS, type LedgerDenialReason } from "../core/decision.js"
import type { LocalDate } from "../core/time-zones.js"
import type {
  ChannelScores,
  Comparison,
  ComparisonRow,
  DailyPoint,
  DeniedByReason,
  HourlyBucket,
  UsageFigures,
} from "./answers.js"
import type { LocalDayUsageRow, LocalHourUsageRow, UniqueUsersRow, UsageRow } from "./queries.js"

/** Everything counted for one channel (or the total) over a period. */
export interface Figures {
  tokens: number
  rawTokens: number
  messages: number
  denied: number
  deniedByReason: DeniedByReason
  hourlyTokens: number[]
  hourlyMessages: number[]
  dailyTokens: Map<string, number>
  dailyMessages: Map<string, number>
}

const isDenialReason = (value: string): value is LedgerDenialReason =>
  (LEDGER_DENIAL_REASONS as readonly string[]).includes(value)

function emptyFigures(): Figures {
  return {
    tokens: 0,
    rawTokens: 0,
    messages: 0,
    denied: 0,
    deniedByReason: Object.fromEntries(LEDGER_DENIAL_REASONS.map((reason) => [reason, 0])) as DeniedByReason,
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

/** Distinct users and people per channel and in total. */
export interface UsersByChannel {
  channels: Map<Channel, number>
  total: number
  people: { channels: Map<Channel, number>; total: number }
}

export function usersFromRows(rows: readonly UniqueUsersRow[]): UsersByChannel {
  const channels = new Map<Channel, number>()
  const people = new Map<Channel, number>()
  let total = 0
  let totalPeople = 0
  for (const row of rows) {
    if (row.channel === null) {
      total = row.users
      totalPeople = row.people
    } else {
      channels.set(row.channel, row.users)
      people.set(row.channel, row.people)
    }
  }
  return { channels, total, people: { channels: people, total: totalPeople } }
}

/** The figures of one period and of the period before it, for one channel or the total. */
export interface PeriodFigures {
  current: Figures
  users: number
  /** Distinct people (linked identities; an unlinked identifier on a channel is one) of the period. */
  people: number
  /** Distinct users of the complete days (see `usageFields`). */
  completeUsers: number
  previous: Figures
  previousUsers: number
}

const sumOver = (values: ReadonlyMap<string, number>, dates: readonly LocalDate[]) =>
  dates.reduce((sum, date) => sum + (values.get(date) ?? 0), 0)

/**
 * The counts and derived figures shared by a channel and the totals. `completeDates` are the period's days
 * that are over: the trend is fitted on them, and growth compares their figures with `previous` (as many
 * days just before the period), so today's unfinished day never reads as a fall. No complete day: stable,
 * and every growth null.
 */
export function usageFields(figures: PeriodFigures, completeDates: readonly LocalDate[]): UsageFigures {
  const { current, previous } = figures
  const trend = trendDirection(completeDates.map((date) => current.dailyTokens.get(date) ?? 0))
  const complete = {
    tokensUsed: sumOver(current.dailyTokens, completeDates),
    messageCount: sumOver(current.dailyMessages, completeDates),
    uniqueUsers: figures.completeUsers,
  }
  const growth = (now: number, before: number) =>
    completeDates.length === 0 ? null : growthPercent(now, before)
  return {
    tokensUsed: current.tokens,
    rawTokens: current.rawTokens,
    messageCount: current.messages,
    deniedCount: current.denied,
    deniedByReason: current.deniedByReason,
    uniqueUsers: figures.users,
    uniquePeople: figures.people,
    avgTokensPerMessage: avgTokensPerMessage(current.tokens, current.messages),
    peakUsageHour: peakHour(current.hourlyTokens),
    growth: {
      tokensUsed: growth(complete.tokensUsed, previous.tokens),
      messageCount: growth(complete.messageCount, previous.messages),
      uniqueUsers: growth(complete.uniqueUsers, figures.previousUsers),
    },
    complete,
    previous: {
      tokensUsed: previous.tokens,
      messageCount: previous.messages,
      uniqueUsers: figures.previousUsers,
    },
    trendDirection: trend.direction,
    trendSlope: trend.slope,
  }
}

export function hourlyDistribution(figures: Figures): HourlyBucket[] {
  return figures.hourlyTokens.map((tokens, hour) => ({
    hour,
    tokensUsed: tokens,
    messageCount: figures.hourlyMessages[hour] ?? 0,
  }))
}

export function dailyTrends(figures: Figures, dates: readonly LocalDate[]): DailyPoint[] {
  return dates.map((date) => ({
    date,
    tokensUsed: figures.dailyTokens.get(date) ?? 0,
    messageCount: figures.dailyMessages.get(date) ?? 0,
  }))
}

/**
 * Share, efficiency and rating of each channel, relative to the channels of the answer. With `values`
 * (value micro-units credited per channel, given when the period's outcomes earned any), efficiency is
 * value per 1,000 billed tokens; otherwise messages per 1,000 billed tokens.
 */
export function channelScores(
  channels: ReadonlyMap<Channel, Figures>,
  values?: ReadonlyMap<Channel, number>,
): Map<Channel, ChannelScores> {
  const entries = [...channels.entries()]
  const shares = usageShares(Object.fromEntries(entries.map(([channel, f]) => [channel, f.tokens])))
  const scores = values
    ? valueEfficiencyScores(
        Object.fromEntries(
          entries.map(([channel, f]) => [
            channel,
            { valueMicros: values.get(channel) ?? 0, tokensUsed: f.tokens },
          ]),
        ),
      )
    : efficiencyScores(
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
          usageShare: shares[channel] ?? 0,
          messagesPer1kTokens: messagesPerThousandTokens(f.messages, f.tokens),
          valuePer1kTokens: values ? valuePerThousandTokens(values.get(channel) ?? 0, f.tokens) : null,
          efficiencyScore: score,
          performanceRating: performanceRating(score),
        },
      ]
    }),
  )
}

/**
 * The channels ranked by tokensUsed (most first; ties keep the given order) with the best and worst
 * channel per metric.
 */
export function rankChannels(
  rows: ReadonlyArray<Omit<ComparisonRow, "rank">>,
): Pick<Comparison, "channels" | "bestAndWorst"> {
  const ranked = rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => b.row.tokensUsed - a.row.tokensUsed || a.index - b.index)
    .map(({ row }, index) => ({ rank: index + 1, ...row }))
  const metric = (value: (row: ComparisonRow) => number | null, higherIsBetter = true) => {
    const pair = bestAndWorst(
      Object.fromEntries(ranked.map((row) => [row.channel, value(row)])),
      higherIsBetter,
    )
    return pair === null ? null : { best: pair.best as Channel, worst: pair.worst as Channel }
  }
  return {
    channels: ranked,
    bestAndWorst: {
      tokensUsed: metric((row) => row.tokensUsed),
      messageCount: metric((row) => row.messageCount),
      uniqueUsers: metric((row) => row.uniqueUsers),
      avgTokensPerMessage: metric((row) => (row.messageCount === 0 ? null : row.avgTokensPerMessage), false),
      usageShare: metric((row) => row.usageShare),
      efficiencyScore: metric((row) => row.efficiencyScore),
      tokensGrowth: metric((row) => row.growth.tokensUsed),
    },
  }
}
