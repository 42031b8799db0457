import { describe, expect, it } from "vitest"
import {
  type ChannelEvidence,
  creditConversions,
  preferredChannel,
  recommendationInsights,
  recommendChannels,
} from "./recommendations.js"

const evidence = (
  channel: ChannelEvidence["channel"],
  fields: Partial<ChannelEvidence>,
): ChannelEvidence => ({
  channel,
  sessions: 100,
  convertedSessions: 10,
  tokensUsed: 10_000,
  conversions: 10,
  value: 100,
  cost: 5,
  ...fields,
})

describe("channel recommendations", () => {
  it("rank by value per 1,000 billed tokens, then conversion rate, then cost per conversion", () => {
    const ranked = recommendChannels(
      [
        evidence("website", { value: 50 }),
        evidence("whatsapp", { value: 200 }),
        evidence("telegram", { value: 50, convertedSessions: 20 }),
        evidence("instagram", { value: 50, cost: 1 }),
      ],
      "USD",
      true,
    )
    expect(ranked.map((r) => [r.rank, r.channel])).toEqual([
      [1, "whatsapp"],
      [2, "telegram"],
      [3, "instagram"],
      [4, "website"],
    ])
    expect(ranked[0]?.valuePer1kTokens).toBe(20)
    expect(ranked[2]?.costPerConversion).toBe(0.1)
  })

  it("steer to a channel converting significantly more than the rest, away from one converting less", () => {
    const ranked = recommendChannels(
      [
        evidence("whatsapp", { convertedSessions: 40 }),
        evidence("website", { convertedSessions: 10 }),
        evidence("messenger", { convertedSessions: 12 }),
      ],
      "USD",
      true,
    )
    const action = (channel: string) => ranked.find((r) => r.channel === channel)?.action
    expect(action("whatsapp")).toBe("steer_to")
    expect(action("website")).toBe("steer_away")
    // 12% against the rest's 25%: z = -2.62, p ~ 0.009, away too.
    expect(action("messenger")).toBe("steer_away")
    // Two channels at about the same rate are both kept.
    const kept = recommendChannels(
      [evidence("whatsapp", { convertedSessions: 20 }), evidence("website", { convertedSessions: 22 })],
      "USD",
      true,
    )
    expect(kept.map((r) => r.action)).toEqual(["keep", "keep"])
    expect(kept[0]?.sentence).toMatch(/^Keep /)
  })

  it("gather evidence below 30 sessions on either side, and without outcomes", () => {
    const few = recommendChannels(
      [evidence("whatsapp", { sessions: 29, convertedSessions: 29 }), evidence("website", {})],
      "USD",
      true,
    )
    expect(few.map((r) => r.action)).toEqual(["gather_evidence", "gather_evidence"])
    const none = recommendChannels([evidence("whatsapp", { convertedSessions: 0 })], "USD", false)
    expect(none[0]?.action).toBe("gather_evidence")
    expect(none[0]?.sentence).toContain("no outcome was recorded")
  })

  it("leave out channels without sessions or tokens, and give no rates without sessions", () => {
    const ranked = recommendChannels(
      [
        evidence("api", { sessions: 0, convertedSessions: 0, tokensUsed: 0 }),
        evidence("api", { sessions: 0 }),
      ],
      "USD",
      true,
    )
    expect(ranked).toHaveLength(1)
    expect(ranked[0]?.conversionRate).toBeNull()
    expect(ranked[0]?.conversionRateInterval).toBeNull()
  })

  it("fold only the judged ones into insights, scored 20-39", () => {
    const ranked = recommendChannels(
      [evidence("whatsapp", { convertedSessions: 40 }), evidence("website", { convertedSessions: 10 })],
      "USD",
      true,
    )
    const insights = recommendationInsights(ranked)
    expect(insights.map((i) => [i.kind, i.channel])).toEqual([
      ["channel_recommendation", "whatsapp"],
      ["channel_recommendation", "website"],
    ])
    for (const insight of insights) {
      expect(insight.score).toBeGreaterThanOrEqual(20)
      expect(insight.score).toBeLessThanOrEqual(39)
    }
    expect(recommendationInsights(recommendChannels([evidence("website", {})], "USD", true))).toEqual([])
  })
})

describe("a person's preferred channel", () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 2, 1) + minute * 60_000)
  const activity = (
    channel: "website" | "whatsapp",
    sessions: number,
    turns: number,
    conversions: number,
    last = 0,
  ) => ({
    channel,
    sessions,
    turns,
    tokensUsed: turns * 100,
    conversions,
    lastActiveAt: at(last),
  })

  it("is the converting channel when they converted, else the most engaged", () => {
    expect(preferredChannel([activity("website", 9, 9, 0), activity("whatsapp", 1, 1, 1)])).toMatchObject({
      channel: "whatsapp",
      basis: "converting",
    })
    expect(preferredChannel([activity("website", 9, 9, 0), activity("whatsapp", 1, 1, 0)])).toMatchObject({
      channel: "website",
      basis: "engaged",
    })
  })

  it("breaks ties by turns, then the most recent", () => {
    expect(preferredChannel([activity("website", 2, 2, 0), activity("whatsapp", 2, 5, 0)]).channel).toBe(
      "whatsapp",
    )
    expect(
      preferredChannel([activity("website", 2, 2, 0, 9), activity("whatsapp", 2, 2, 0, 1)]).channel,
    ).toBe("website")
  })

  it("is none without activity", () => {
    expect(preferredChannel([])).toMatchObject({ channel: null, basis: null })
  })

  it("credits an outcome to its channel, else to the latest session before it, else the first", () => {
    const sessions = [
      { channel: "website" as const, startedAt: at(10) },
      { channel: "whatsapp" as const, startedAt: at(20) },
    ]
    const credits = creditConversions(sessions, [
      { channel: "instagram", occurredAt: at(0) },
      { channel: null, occurredAt: at(25) },
      { channel: null, occurredAt: at(15) },
      { channel: null, occurredAt: at(5) },
    ])
    expect(Object.fromEntries(credits)).toEqual({ instagram: 1, whatsapp: 1, website: 2 })
  })
})
