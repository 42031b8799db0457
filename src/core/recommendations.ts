/**
 * Channel recommendations (issue 15), pure: which channel to steer traffic to or away from, from each
 * channel's sessions, conversions, value, cost and billed tokens; and one person's preferred channel.
 *
 * Ranking: value per 1,000 billed tokens (most first), then conversion rate (highest first), then cost per
 * conversion (lowest first). The action compares the channel's session conversion rate with the rest of
 * the subscription's channels pooled, by the two-proportion z-test of core/statistics.ts: significantly
 * higher (p < 0.05) steers traffic to it, significantly lower away from it. Below MIN_SESSIONS on either
 * side, or with no outcome recorded at all, the answer is to gather evidence: a handful of sessions never
 * produces advice.
 */
import { CHANNEL_DEFINITIONS, type Channel } from "./channels.js"
import type { Insight } from "./insights.js"
import { type Interval, proportionInterval, twoProportionZTest } from "./statistics.js"

/** Sessions a channel, and the rest of the channels, need before the comparison is judged. */
export const MIN_SESSIONS = 30
/** The z-test's two-sided significance level. */
export const SIGNIFICANCE = 0.05

export const RECOMMENDATION_ACTIONS = ["steer_to", "steer_away", "keep", "gather_evidence"] as const
export type RecommendationAction = (typeof RECOMMENDATION_ACTIONS)[number]

/** One channel's figures over the period (the outcomes answer's, last-touch attribution). */
export interface ChannelEvidence {
  channel: Channel
  sessions: number
  convertedSessions: number
  /** Billed tokens of allowed turns. */
  tokensUsed: number
  /** Credited conversions (outcomes), which cost per conversion divides by. */
  conversions: number
  /** Credited value and cost in the currency's major unit. */
  value: number
  cost: number
}

export interface ChannelRecommendation extends ChannelEvidence {
  rank: number
  action: RecommendationAction
  /** convertedSessions / sessions; null without sessions. */
  conversionRate: number | null
  /** Wilson's 95% interval of the conversion rate. */
  conversionRateInterval: Interval | null
  /** This channel's conversion rate minus the other channels' pooled one, with its 95% interval and p-value. */
  comparedWithRest: { difference: number; interval: Interval; pValue: number } | null
  /** value * 1000 / tokensUsed; null without billed tokens. */
  valuePer1kTokens: number | null
  /** cost / conversions; null without conversions. */
  costPerConversion: number | null
  sentence: string
}

const round = (value: number, decimals: number) => {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}
const percent = (value: number) => `${round(value * 100, 1)}%`
const money = (value: number, currency: string) => `${round(value, 4)} ${currency}`
const nameOf = (channel: Channel) => CHANNEL_DEFINITIONS[channel].label

/** Descending with nulls last. */
const byDescending = (a: number | null, b: number | null) =>
  a === null ? (b === null ? 0 : 1) : b === null ? -1 : b - a

/**
 * The channels ranked, each with its action, evidence, interval and sentence. `outcomesKnown`: whether the
 * subscription recorded any outcome in the period (without one, nothing can be judged).
 * @example
 * recommendChannels([{ channel: "whatsapp", sessions: 400, convertedSessions: 60, ... }, ...], "USD", true)
 * // [{ rank: 1, channel: "whatsapp", action: "steer_to", sentence: "Steer traffic to WhatsApp: ...", ... }]
 */
export function recommendChannels(
  channels: readonly ChannelEvidence[],
  currency: string,
  outcomesKnown: boolean,
): ChannelRecommendation[] {
  const totalSessions = channels.reduce((sum, c) => sum + c.sessions, 0)
  const totalConverted = channels.reduce((sum, c) => sum + c.convertedSessions, 0)
  const judged = channels
    .filter((c) => c.sessions > 0 || c.tokensUsed > 0)
    .map((c) => {
      const restSessions = totalSessions - c.sessions
      const restConverted = totalConverted - c.convertedSessions
      const test =
        outcomesKnown && c.sessions >= MIN_SESSIONS && restSessions >= MIN_SESSIONS
          ? twoProportionZTest(restConverted, restSessions, c.convertedSessions, c.sessions)
          : null
      const action: RecommendationAction =
        test === null
          ? "gather_evidence"
          : test.pValue < SIGNIFICANCE
            ? test.difference > 0
              ? "steer_to"
              : "steer_away"
            : "keep"
      const conversionRate = c.sessions > 0 ? c.convertedSessions / c.sessions : null
      const valuePer1kTokens = c.tokensUsed > 0 ? (c.value * 1000) / c.tokensUsed : null
      const costPerConversion = c.conversions > 0 ? c.cost / c.conversions : null
      const recommendation: Omit<ChannelRecommendation, "rank" | "sentence"> = {
        ...c,
        action,
        conversionRate,
        conversionRateInterval: proportionInterval(c.convertedSessions, c.sessions),
        comparedWithRest: test
          ? { difference: test.difference, interval: test.interval, pValue: test.pValue }
          : null,
        valuePer1kTokens,
        costPerConversion,
      }
      return recommendation
    })
    .sort(
      (a, b) =>
        byDescending(a.valuePer1kTokens, b.valuePer1kTokens) ||
        byDescending(a.conversionRate, b.conversionRate) ||
        -byDescending(a.costPerConversion, b.costPerConversion) ||
        a.channel.localeCompare(b.channel),
    )
  return judged.map((r, index) => ({
    ...r,
    rank: index + 1,
    sentence: sentenceOf(r, currency, outcomesKnown, totalSessions, totalConverted),
  }))
}

function sentenceOf(
  r: Omit<ChannelRecommendation, "rank" | "sentence">,
  currency: string,
  outcomesKnown: boolean,
  totalSessions: number,
  totalConverted: number,
): string {
  const name = nameOf(r.channel)
  if (!outcomesKnown) {
    return `${name}: no outcome was recorded in the period, so its conversions cannot be judged yet (${r.sessions} sessions, ${r.tokensUsed.toLocaleString("en-US")} billed tokens).`
  }
  const interval = r.conversionRateInterval
  const rate =
    r.conversionRate === null || interval === null
      ? "no sessions"
      : `${percent(r.conversionRate)} of ${r.sessions} sessions converted (95% CI ${percent(interval.low)} to ${percent(interval.high)})`
  const restSessions = totalSessions - r.sessions
  const rest = restSessions > 0 ? percent((totalConverted - r.convertedSessions) / restSessions) : "n/a"
  const figures = [
    r.valuePer1kTokens === null
      ? null
      : `${money(r.valuePer1kTokens, currency)} of value per 1,000 billed tokens`,
    r.costPerConversion === null ? null : `${money(r.costPerConversion, currency)} per conversion`,
  ]
    .filter((part) => part !== null)
    .join(", ")
  const tail = figures ? `; ${figures}` : ""
  switch (r.action) {
    case "steer_to":
      return `Steer traffic to ${name}: ${rate}, against ${rest} on the other channels (p = ${round(r.comparedWithRest?.pValue ?? 1, 4)})${tail}.`
    case "steer_away":
      return `Steer traffic away from ${name}: ${rate}, against ${rest} on the other channels (p = ${round(r.comparedWithRest?.pValue ?? 1, 4)})${tail}.`
    case "keep":
      return `Keep ${name} as it is: ${rate}, not significantly different from ${rest} on the other channels${tail}.`
    case "gather_evidence":
      return `${name}: too few sessions to judge (${MIN_SESSIONS} needed on it and on the other channels); ${rate}${tail}.`
  }
}

/** One channel of one person's activity. */
export interface PersonChannelActivity {
  channel: Channel
  sessions: number
  turns: number
  tokensUsed: number
  conversions: number
  lastActiveAt: Date
}

export interface PreferredChannel {
  /** Null when the person has no session in the period. */
  channel: Channel | null
  /** "converting": chosen by conversions; "engaged": by sessions (no conversion of theirs is known). */
  basis: "converting" | "engaged" | null
  sentence: string
}

/**
 * A person's preferred channel: the one with the most conversions when they converted; otherwise, or on a
 * tie, the most engaged one: most sessions, then most turns, then the most recent.
 * @example preferredChannel([{ channel: "whatsapp", sessions: 5, conversions: 1, ... }, { channel: "website", sessions: 9, conversions: 0, ... }])
 * // { channel: "whatsapp", basis: "converting", sentence: "..." }
 */
export function preferredChannel(activity: readonly PersonChannelActivity[]): PreferredChannel {
  if (activity.length === 0) {
    return { channel: null, basis: null, sentence: "No session of this person in the period." }
  }
  const converting = activity.some((a) => a.conversions > 0)
  const [best] = [...activity].sort(
    (a, b) =>
      (converting ? b.conversions - a.conversions : 0) ||
      b.sessions - a.sessions ||
      b.turns - a.turns ||
      b.lastActiveAt.getTime() - a.lastActiveAt.getTime() ||
      a.channel.localeCompare(b.channel),
  )
  if (best === undefined)
    return { channel: null, basis: null, sentence: "No session of this person in the period." }
  const others = activity.length - 1
  const spread = others > 0 ? ` (active on ${activity.length} channels)` : ""
  const sentence = converting
    ? `Reach this person on ${nameOf(best.channel)}: ${best.conversions} of their conversions came from it, over ${best.sessions} sessions${spread}.`
    : `Reach this person on ${nameOf(best.channel)}: their most engaged channel, ${best.sessions} sessions and ${best.turns} turns${spread}; no conversion of theirs is recorded.`
  return { channel: best.channel, basis: converting ? "converting" : "engaged", sentence }
}

/**
 * Each of a person's outcomes credited to one channel: its own channel when it names one, else the channel
 * of the person's latest session started at or before it (last touch), else their first session's.
 */
export function creditConversions(
  sessions: ReadonlyArray<{ channel: Channel; startedAt: Date }>,
  outcomes: ReadonlyArray<{ channel: Channel | null; occurredAt: Date }>,
): Map<Channel, number> {
  const ordered = [...sessions].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime())
  const credits = new Map<Channel, number>()
  for (const outcome of outcomes) {
    let channel = outcome.channel
    if (channel === null) {
      const before = ordered.filter((s) => s.startedAt.getTime() <= outcome.occurredAt.getTime())
      channel = (before.at(-1) ?? ordered[0])?.channel ?? null
    }
    if (channel !== null) credits.set(channel, (credits.get(channel) ?? 0) + 1)
  }
  return credits
}

/**
 * The judged channel recommendations (steer_to, steer_away) as insights of kind channel_recommendation,
 * scored 20-39 by the strength of the evidence (20 + 3 * -log10 p, capped): below quota, rate-limit and
 * plan insights, above low efficiency.
 * @example recommendationInsights(recommendChannels(evidence, "USD", true)) // [{ kind: "channel_recommendation", channel: "whatsapp", ... }]
 */
export function recommendationInsights(recommendations: readonly ChannelRecommendation[]): Insight[] {
  return recommendations.flatMap((r): Insight[] => {
    if ((r.action !== "steer_to" && r.action !== "steer_away") || r.comparedWithRest === null) return []
    const { pValue, difference, interval } = r.comparedWithRest
    const strength = -Math.log10(Math.max(pValue, 1e-12))
    return [
      {
        kind: "channel_recommendation",
        channel: r.channel,
        severity: "low",
        score: Math.min(39, Math.round((20 + 3 * strength) * 10) / 10),
        title:
          r.action === "steer_to"
            ? `${nameOf(r.channel)} converts better than your other channels`
            : `${nameOf(r.channel)} converts worse than your other channels`,
        explanation: r.sentence,
        action:
          r.action === "steer_to"
            ? `Steer more traffic to ${nameOf(r.channel)} (for example, link it first in your campaigns).`
            : `Steer traffic away from ${nameOf(r.channel)}, or review its bot's flow.`,
        evidence: {
          sessions: r.sessions,
          converted_sessions: r.convertedSessions,
          conversion_rate: r.conversionRate === null ? null : round(r.conversionRate, 4),
          difference_from_rest: round(difference, 4),
          difference_low: round(interval.low, 4),
          difference_high: round(interval.high, 4),
          p_value: round(pValue, 6),
          value_per_1k_tokens: r.valuePer1kTokens === null ? null : round(r.valuePer1kTokens, 4),
          cost_per_conversion: r.costPerConversion === null ? null : round(r.costPerConversion, 4),
        },
      },
    ]
  })
}
