import { describe, expect, it } from "vitest"
import { overviewWindow, rankSubscriptions, type SubscriptionUsageFigures } from "./subscription-ranking.js"

const row = (id: string, figures: Partial<SubscriptionUsageFigures>): SubscriptionUsageFigures => ({
  subscriptionId: id,
  tokenLimit: 1000,
  quotaUsedTokens: 0,
  tokensUsed: 0,
  messageCount: 0,
  deniedCount: 0,
  previousTokensUsed: 0,
  ...figures,
})

describe("the overview window", () => {
  it("is whole UTC hours ending at the start of the current hour, with an equally long one before", () => {
    expect(overviewWindow(1, new Date("2026-03-10T15:59:59.999Z"))).toEqual({
      days: 1,
      previousStart: new Date("2026-03-08T15:00:00Z"),
      start: new Date("2026-03-09T15:00:00Z"),
      end: new Date("2026-03-10T15:00:00Z"),
    })
  })

  it("refuses a window of no days, a fraction or more than 90", () => {
    for (const days of [0, 1.5, 91]) expect(() => overviewWindow(days, new Date())).toThrow(RangeError)
  })
})

describe("ranking subscriptions", () => {
  const rows = [
    row("b", {
      tokensUsed: 500,
      previousTokensUsed: 250,
      quotaUsedTokens: 1200,
      deniedCount: 1,
      messageCount: 3,
    }),
    row("a", { tokensUsed: 500, previousTokensUsed: 1000, quotaUsedTokens: 100 }),
    row("c", { tokenLimit: 0, tokensUsed: 10 }),
  ]

  it("breaks ties by subscription id and numbers ranks without gaps", () => {
    expect(rankSubscriptions(rows, "tokens_used", "desc").map((r) => [r.rank, r.subscriptionId])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
    ])
  })

  it("puts a subscription without a value for the sort last in either order", () => {
    expect(rankSubscriptions(rows, "growth", "desc").map((r) => r.subscriptionId)).toEqual(["b", "a", "c"])
    expect(rankSubscriptions(rows, "growth", "asc").map((r) => r.subscriptionId)).toEqual(["a", "b", "c"])
    expect(rankSubscriptions(rows, "quota_used", "asc").map((r) => r.subscriptionId)).toEqual(["a", "b", "c"])
  })

  it("derives quota share past 100%, denial rate and growth", () => {
    const [b] = rankSubscriptions(rows, "quota_used", "desc")
    expect(b).toMatchObject({ quotaUsedPercent: 120, overQuota: true, denialRate: 25, growth: 100 })
  })
})
