import { describe, expect, it } from "vitest"
import { type ChannelFacts, formatInstant, type InsightFacts, rankInsights } from "./insights.js"

const DAY = 86_400_000
const quiet = (channel: string, overrides: Partial<ChannelFacts> = {}): ChannelFacts => ({
  channel,
  messages: 0,
  tokens: 0,
  notInPlanDenials: 0,
  notInPlanUsers: 0,
  turnsLastWeek: 0,
  rateLimitedLastWeek: 0,
  turnsWeekBefore: 0,
  rateLimitedWeekBefore: 0,
  ...overrides,
})
const facts = (overrides: Partial<InsightFacts> = {}): InsightFacts => ({
  plan: "professional",
  channels: [],
  quotaExhaustedAt: null,
  periodEnd: 30 * DAY,
  now: 0,
  tokenLimit: 1_000_000,
  projectedTokens: 500_000,
  ...overrides,
})

describe("insights", () => {
  it("give nothing without evidence", () => {
    expect(rankInsights(facts())).toEqual([])
    expect(
      rankInsights(facts({ channels: [quiet("instagram", { notInPlanDenials: 4, notInPlanUsers: 4 })] })),
    ).toEqual([])
  })

  it("name the plan that unlocks a channel end users keep trying", () => {
    const [insight] = rankInsights(
      facts({ channels: [quiet("instagram", { notInPlanDenials: 40, notInPlanUsers: 12 })] }),
    )
    expect(insight).toMatchObject({
      kind: "channel_not_in_plan",
      channel: "instagram",
      severity: "medium",
      evidence: {
        denied_turns_30d: 40,
        distinct_end_users: 12,
        current_plan: "professional",
        unlocking_plan: "enterprise",
      },
    })
    expect(insight?.explanation).toBe(
      "40 turns from 12 end users on Instagram Direct were denied with channel_not_in_plan in the last 30 days. The Enterprise plan includes it.",
    )
    const messenger = rankInsights(
      facts({ plan: "basic", channels: [quiet("messenger", { notInPlanDenials: 60 })] }),
    )
    expect(messenger[0]).toMatchObject({ severity: "high", evidence: { unlocking_plan: "professional" } })
  })

  it("flag a rate-limit denial share that is high and rising, but not a steady or small one", () => {
    const rising = quiet("whatsapp", {
      turnsLastWeek: 200,
      rateLimitedLastWeek: 20,
      turnsWeekBefore: 200,
      rateLimitedWeekBefore: 6,
    })
    expect(rankInsights(facts({ channels: [rising] }))[0]).toMatchObject({
      kind: "rate_limit_denials_rising",
      evidence: { rate_limited_share_7d: 0.1, rate_limited_share_previous_7d: 0.03 },
    })
    const steady = quiet("whatsapp", {
      turnsLastWeek: 200,
      rateLimitedLastWeek: 20,
      turnsWeekBefore: 200,
      rateLimitedWeekBefore: 18,
    })
    expect(rankInsights(facts({ channels: [steady] }))).toEqual([])
    const small = quiet("whatsapp", { turnsLastWeek: 200, rateLimitedLastWeek: 8 })
    expect(rankInsights(facts({ channels: [small] }))).toEqual([])
    const fewTurns = quiet("whatsapp", { turnsLastWeek: 19, rateLimitedLastWeek: 19 })
    expect(rankInsights(facts({ channels: [fewTurns] }))).toEqual([])
  })

  it("flag a channel under half the best channel's efficiency, given enough messages on two channels", () => {
    const website = quiet("website", { messages: 100, tokens: 30_000 })
    const api = quiet("api", { messages: 100, tokens: 90_000 })
    const result = rankInsights(facts({ channels: [website, api] }))
    expect(result.map((i) => [i.kind, i.channel])).toEqual([["low_channel_efficiency", "api"]])
    expect(result[0]?.evidence).toMatchObject({ efficiency_score: 33.3, tokens_per_message: 900 })
    expect(
      rankInsights(facts({ channels: [website, quiet("api", { messages: 49, tokens: 90_000 })] })),
    ).toEqual([])
    expect(
      rankInsights(facts({ channels: [website, quiet("api", { messages: 100, tokens: 59_000 })] })),
    ).toEqual([])
  })

  it("put a quota that runs out before the period ends first", () => {
    const result = rankInsights(
      facts({
        quotaExhaustedAt: 20 * DAY,
        channels: [
          quiet("instagram", { notInPlanDenials: 1000 }),
          quiet("whatsapp", { turnsLastWeek: 100, rateLimitedLastWeek: 90 }),
        ],
      }),
    )
    expect(result.map((i) => i.kind)).toEqual([
      "quota_exhaustion_projected",
      "channel_not_in_plan",
      "rate_limit_denials_rising",
    ])
    expect(result[0]).toMatchObject({ severity: "high", score: 90, evidence: { days_before_period_end: 10 } })
    expect(rankInsights(facts({ quotaExhaustedAt: 30 * DAY }))).toEqual([])
  })

  it("write instants in the subscription's timezone and name it", () => {
    expect(formatInstant(Date.UTC(2026, 11, 15, 14, 24), "Europe/Berlin")).toBe(
      "Dec 15, 2026, 15:24 (Europe/Berlin)",
    )
    const [insight] = rankInsights(
      facts({ quotaExhaustedAt: 20 * DAY + 3_600_000, timeZone: "Asia/Kolkata", quotaState: "runs_out" }),
    )
    expect(insight?.explanation).toContain("Jan 21, 1970, 06:30 (Asia/Kolkata)")
  })
})
