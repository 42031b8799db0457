/**
 * Insights for the operator, pure: ranked, explained recommendations from a subscription's recent activity
 * and its forecast. Each rule needs a minimum of evidence, so a handful of turns never produces advice.
 *
 * Scores (0-100) order the list: a quota about to run out (80-100) first; then rate limits biting harder
 * (30-75, growing with the denied share) and demand the plan turns away (40-79, growing with the log of the
 * denials: an upsell), interleaved by weight; inefficient channels (10-29) last.
 */
import { efficiencyScores } from "./analytics.js"
import { CHANNEL_DEFINITIONS, type Channel, isChannel } from "./channels.js"
import { cheapestPlanIncluding, PLAN_DEFINITIONS, type Plan } from "./plans.js"

export const INSIGHT_KINDS = [
  "quota_exhaustion_projected",
  "channel_not_in_plan",
  "rate_limit_denials_rising",
  "low_channel_efficiency",
  "channel_recommendation",
] as const
export type InsightKind = (typeof INSIGHT_KINDS)[number]

export interface Insight {
  kind: InsightKind
  channel: Channel | null
  severity: "high" | "medium" | "low"
  score: number
  title: string
  explanation: string
  action: string
  evidence: Record<string, number | string | null>
}

/** One channel's last 30 days, as src/forecast/queries.ts channelActivity reads it. */
export interface ChannelFacts {
  channel: string
  messages: number
  tokens: number
  notInPlanDenials: number
  notInPlanUsers: number
  turnsLastWeek: number
  rateLimitedLastWeek: number
  turnsWeekBefore: number
  rateLimitedWeekBefore: number
}

export interface InsightFacts {
  plan: Plan
  channels: readonly ChannelFacts[]
  /**
   * The forecast's quota exhaustion (ms): projected within the period ("runs_out"), or when turns began to
   * be refused ("spent", "over"); null when the quota lasts.
   */
  quotaExhaustedAt: number | null
  /** See QuotaState in src/forecast/service.ts; absent means judged from quotaExhaustedAt alone. */
  quotaState?: "none" | "lasts" | "runs_out" | "spent" | "over"
  usedTokens?: number
  /** Demand projected past the quota until the period ends. */
  deniedTokens?: number
  /** The subscription's timezone, in which dates in explanations are written (UTC when absent). */
  timeZone?: string
  periodEnd: number
  now: number
  tokenLimit: number
  projectedTokens: number
}

export const INSIGHT_RULES = Object.freeze({
  /** channel_not_in_plan denials over 30 days before it is worth an upsell. */
  minNotInPlanDenials: 5,
  /** Turns in the last week before a rate-limit share means anything. */
  minTurnsForShare: 20,
  /** A share of turns denied by rate limits that is worth acting on. */
  minRateLimitShare: 0.05,
  /** "Rising": the last week's share at least this many times the week before's. */
  risingFactor: 1.5,
  /** Allowed turns over 30 days before a channel's efficiency is judged. */
  minMessagesForEfficiency: 50,
  /** An efficiency score (100 = the best channel) below this is far below the others. */
  lowEfficiencyScore: 50,
})

const DAY = 86_400_000

/**
 * An instant for an explanation, in the subscription's timezone and naming it, as the dashboard shows it.
 * @example formatInstant(Date.UTC(2026, 11, 15, 14, 24), "Europe/Berlin") // "Dec 15, 2026, 15:24 (Europe/Berlin)"
 */
export function formatInstant(ms: number, timeZone = "UTC"): string {
  const text = new Intl.DateTimeFormat("en-US", {
    timeZone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(ms))
  return `${text} (${timeZone})`
}

const percent = (value: number) => `${Math.round(value * 1000) / 10}%`
const channelName = (channel: Channel) => CHANNEL_DEFINITIONS[channel].label

/**
 * Every insight the facts support, best first.
 * @example rankInsights({ plan: "professional", channels: [{ channel: "instagram", notInPlanDenials: 40, ... }], ... })
 * // [{ kind: "channel_not_in_plan", channel: "instagram", evidence: { unlocking_plan: "enterprise", ... } }]
 */
export function rankInsights(facts: InsightFacts): Insight[] {
  const rules = INSIGHT_RULES
  const insights: Insight[] = []

  const zone = facts.timeZone ?? "UTC"
  const tokens = (value: number) => Math.round(value).toLocaleString("en-US")
  if ((facts.quotaState === "spent" || facts.quotaState === "over") && facts.usedTokens !== undefined) {
    const over = facts.usedTokens - facts.tokenLimit
    const since = facts.quotaExhaustedAt
    insights.push({
      kind: "quota_exhaustion_projected",
      channel: null,
      severity: "high",
      score: 100,
      title:
        facts.quotaState === "over"
          ? "More tokens used than the quota allows"
          : "Quota spent: turns are refused until the period ends",
      explanation: `${tokens(facts.usedTokens)} of the ${tokens(facts.tokenLimit)}-token quota are used${over > 0 ? `, ${tokens(over)} over it` : ""}${since === null ? "" : `; turns have been denied with quota_exceeded since ${formatInstant(since, zone)}`}. About ${tokens(facts.deniedTokens ?? 0)} more tokens of demand are forecast before the period ends on ${formatInstant(facts.periodEnd, zone)}, and will be denied.`,
      action: "Raise the token limit or move to a larger plan to serve them.",
      evidence: {
        used_tokens: facts.usedTokens,
        token_limit: facts.tokenLimit,
        quota_exhausted_at: since === null ? null : new Date(since).toISOString(),
        denied_tokens_forecast: facts.deniedTokens ?? 0,
      },
    })
  } else if (facts.quotaExhaustedAt !== null && facts.quotaExhaustedAt < facts.periodEnd) {
    const daysEarly = (facts.periodEnd - facts.quotaExhaustedAt) / DAY
    insights.push({
      kind: "quota_exhaustion_projected",
      channel: null,
      severity: daysEarly >= 3 ? "high" : "medium",
      score: Math.min(100, 80 + daysEarly),
      title: "Quota projected to run out before the period ends",
      explanation: `At the forecast pace the ${facts.tokenLimit.toLocaleString("en-US")}-token quota runs out on ${formatInstant(facts.quotaExhaustedAt, zone)}, ${Math.round(daysEarly * 10) / 10} days before the period ends; turns after that are denied with quota_exceeded.`,
      action: "Raise the token limit or move to a larger plan before then.",
      evidence: {
        projected_tokens: Math.round(facts.projectedTokens),
        denied_tokens_forecast: Math.round(facts.deniedTokens ?? 0),
        token_limit: facts.tokenLimit,
        quota_exhausted_at: new Date(facts.quotaExhaustedAt).toISOString(),
        days_before_period_end: Math.round(daysEarly * 10) / 10,
      },
    })
  }

  for (const c of facts.channels) {
    if (!isChannel(c.channel)) continue
    const channel = c.channel
    if (c.notInPlanDenials >= rules.minNotInPlanDenials) {
      const unlocking = cheapestPlanIncluding(channel)
      insights.push({
        kind: "channel_not_in_plan",
        channel,
        severity: c.notInPlanDenials >= 50 ? "high" : "medium",
        score: Math.min(79, 40 + 15 * Math.log10(c.notInPlanDenials)),
        title: `End users keep trying ${channelName(channel)}, which the plan does not include`,
        explanation: `${c.notInPlanDenials} turns from ${c.notInPlanUsers} end users on ${channelName(channel)} were denied with channel_not_in_plan in the last 30 days. The ${PLAN_DEFINITIONS[unlocking].label} plan includes it.`,
        action: `Upgrade to ${unlocking} to serve ${channelName(channel)}.`,
        evidence: {
          denied_turns_30d: c.notInPlanDenials,
          distinct_end_users: c.notInPlanUsers,
          current_plan: facts.plan,
          unlocking_plan: unlocking,
        },
      })
    }
    if (c.turnsLastWeek >= rules.minTurnsForShare) {
      const share = c.rateLimitedLastWeek / c.turnsLastWeek
      const previous = c.turnsWeekBefore === 0 ? 0 : c.rateLimitedWeekBefore / c.turnsWeekBefore
      if (share >= rules.minRateLimitShare && share >= rules.risingFactor * previous) {
        insights.push({
          kind: "rate_limit_denials_rising",
          channel,
          severity: share >= 0.15 ? "high" : "medium",
          score: Math.min(75, 30 + 200 * share),
          title: `${channelName(channel)}'s rate limit denies a growing share of turns`,
          explanation: `${percent(share)} of ${channelName(channel)} turns were denied by its rate limit in the last 7 days (${c.rateLimitedLastWeek} of ${c.turnsLastWeek}), up from ${percent(previous)} the week before.`,
          action: `Raise ${channelName(channel)}'s requests or tokens per minute, or spread the traffic.`,
          evidence: {
            rate_limited_share_7d: Math.round(share * 10_000) / 10_000,
            rate_limited_share_previous_7d: Math.round(previous * 10_000) / 10_000,
            rate_limited_turns_7d: c.rateLimitedLastWeek,
            turns_7d: c.turnsLastWeek,
          },
        })
      }
    }
  }

  const judged = Object.fromEntries(
    facts.channels
      .filter((c) => isChannel(c.channel) && c.messages >= rules.minMessagesForEfficiency && c.tokens > 0)
      .map((c) => [c.channel, { messageCount: c.messages, tokensUsed: c.tokens }]),
  )
  if (Object.keys(judged).length >= 2) {
    const scores = efficiencyScores(judged)
    for (const [channel, score] of Object.entries(scores)) {
      if (score === null || score >= rules.lowEfficiencyScore || !isChannel(channel)) continue
      const usage = judged[channel]
      if (!usage) continue
      insights.push({
        kind: "low_channel_efficiency",
        channel,
        severity: score < 25 ? "medium" : "low",
        score: Math.min(29, 10 + (rules.lowEfficiencyScore - score) / 2.5),
        title: `${channelName(channel)} uses far more tokens per message than the other channels`,
        explanation: `${channelName(channel)} scores ${score} on efficiency (messages per 1,000 tokens, 100 = the best channel): ${Math.round(usage.tokensUsed / usage.messageCount)} billed tokens per message over the last 30 days.`,
        action: `Review ${channelName(channel)}'s prompts and context size, or its token multiplier.`,
        evidence: {
          efficiency_score: score,
          messages_30d: usage.messageCount,
          billed_tokens_30d: usage.tokensUsed,
          tokens_per_message: Math.round(usage.tokensUsed / usage.messageCount),
        },
      })
    }
  }

  return insights
    .map((insight) => ({ ...insight, score: Math.round(insight.score * 10) / 10 }))
    .sort((a, b) => b.score - a.score)
}
