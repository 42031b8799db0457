/**
 * The forecast and insights endpoints on generated history: the projection is checked against the weekly
 * pattern the history was made from (an independent recomputation), and the fallbacks and insights fire
 * on the data that should produce them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Channel } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { importTurns as importLines } from "../../src/meter/usage-import.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const DAY = 86_400_000
let t: TestApp
const clock = new ManualClock(Math.floor(Date.now() / 3_600_000) * 3_600_000)

beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

async function importTurns(
  turns: { subscriptionId: string; channel: Channel; at: number; tokens: number }[],
) {
  async function* lines() {
    for (const turn of turns) {
      yield JSON.stringify({
        subscription_id: turn.subscriptionId,
        channel: turn.channel,
        created_at: new Date(turn.at).toISOString(),
        raw_tokens: turn.tokens,
        user_identifier: "u",
      })
    }
  }
  const report = await importLines(t.container.database, clock, lines())
  expect(report.rejectedCount).toBe(0)
}

/** Billed tokens of the subscription's allowed turns since `from`, counted straight from the ledger. */
async function billedSince(subscriptionId: string, from: number): Promise<number> {
  const row = await t.container.database.db
    .selectFrom("token_usage_logs")
    .select((eb) => eb.fn.sum<string | number>("billed_tokens").as("billed"))
    .where("subscription_id", "=", subscriptionId)
    .where("status", "<>", "denied")
    .where("created_at", ">=", new Date(from))
    .executeTakeFirst()
  return Number(row?.billed ?? 0)
}

const pattern = [1000, 1200, 1300, 1250, 1100, 600, 500]

describe("GET /api/onboarding/analytics/:subscription_id/forecast", () => {
  it("projects a weekly pattern to the end of the period exactly, with the quota run-out date", async () => {
    const now = clock.now()
    const sub = await t.subscription({
      plan: "professional",
      token_limit: 20_000,
      period_start: new Date(now - 10 * DAY).toISOString(),
    })
    // 28 whole days, day i (oldest first) carrying pattern[i % 7] tokens on the website (multiplier 1).
    await importTurns(
      Array.from({ length: 28 }, (_, i) => ({
        subscriptionId: sub.id,
        channel: "website" as const,
        at: now - (28 - i) * DAY,
        tokens: pattern[i % 7] ?? 0,
      })),
    )
    const res = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${sub.id}/forecast`,
      key: sub.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/forecast", res)
    const body = res.json()
    expect(body.history_days).toBe(28)
    // Independent recomputation: the days after the history continue the pattern; the last is partial.
    const periodEnd = Date.parse(body.period_end)
    const horizon = (periodEnd - now) / DAY
    let expected = 0
    for (let h = 0; h < Math.ceil(horizon); h += 1) {
      const fraction = Math.min(1, horizon - h)
      expected += (pattern[h % 7] ?? 0) * fraction
    }
    const usedInPeriod = Array.from({ length: 10 }, (_, k) => pattern[(18 + k) % 7] ?? 0).reduce(
      (a, b) => a + b,
      0,
    )
    expect(body.total.used_tokens).toBe(usedInPeriod)
    expect(body.total.method).toBe("holt_winters")
    // The quota (20,000) holds less than the pattern asks for: billed stops there, the rest is denied.
    expect(usedInPeriod + expected).toBeGreaterThan(20_000)
    expect(body.total.forecast_tokens).toBe(20_000 - usedInPeriod)
    expect(body.total.denied_tokens).toBe(Math.round(usedInPeriod + expected - 20_000))
    expect(body.total.quota_state).toBe("runs_out")
    expect(body.total.lower).toBe(body.total.projected_tokens)
    expect(body.channels).toEqual([
      expect.objectContaining({
        channel: "website",
        method: "holt_winters",
        projected_tokens: body.total.projected_tokens,
      }),
    ])
    // Walk the pattern forward to the day the 20,000-token quota is reached.
    let cumulative = usedInPeriod
    let day = 0
    while (cumulative + (pattern[day % 7] ?? 0) < 20_000) cumulative += pattern[day++ % 7] ?? 0
    const exhausted = now + (day + (20_000 - cumulative) / (pattern[day % 7] ?? 1)) * DAY
    expect(Math.abs(Date.parse(body.total.quota_exhausted_at) - exhausted)).toBeLessThanOrEqual(1)
  })

  it("falls back to the daily mean on a few days and reports no run-out when the quota lasts", async () => {
    const now = clock.now()
    const sub = await t.subscription({
      plan: "enterprise",
      period_start: new Date(now - 5 * DAY).toISOString(),
    })
    await importTurns(
      Array.from({ length: 5 }, (_, i) => ({
        subscriptionId: sub.id,
        channel: "telegram" as const,
        at: now - (5 - i) * DAY,
        tokens: 2000,
      })),
    )
    const res = await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
    const body = res.json()
    const horizon = (Date.parse(body.period_end) - now) / DAY
    expect(body.total).toMatchObject({ method: "daily_mean", quota_exhausted_at: null })
    // telegram bills 1.05x: 2100 a day.
    expect(body.total.forecast_tokens).toBe(Math.round(2100 * horizon))
    expect(body.total.used_tokens).toBe(5 * 2100)
  })

  it("keeps projecting the demand a spent quota turns away, from the turns it refused", async () => {
    const now = clock.now()
    const sub = await t.subscription({
      plan: "enterprise",
      token_limit: 6_300,
      period_start: new Date(now - 6 * DAY).toISOString(),
    })
    // Three days of 2,000 raw tokens on telegram (1.05x: 2,100 billed) spend the quota...
    await importTurns(
      Array.from({ length: 3 }, (_, i) => ({
        subscriptionId: sub.id,
        channel: "telegram" as const,
        at: now - (6 - i) * DAY + 3_600_000,
        tokens: 2000,
      })),
    )
    // ...and the same demand on each of the next three days is refused by the quota.
    try {
      for (const daysAgo of [3, 2, 1]) {
        clock.set(now - daysAgo * DAY + 3_600_000)
        const refused = await t.container.meter.validateAndConsumeTokens({
          entityId: sub.entityId,
          entityType: "organization",
          estimatedTokens: 2000,
          channel: "telegram",
        })
        expect(refused).toMatchObject({ allowed: false, reason: "quota_exceeded" })
      }
    } finally {
      clock.set(now)
    }
    const res = await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    // Six days of demand at 2,100 a day (billed, then refused): under two weeks of history the forecast is
    // their mean, all of it past the quota. Billed tokens alone (2,100 a day, then 0) would say 1,050.
    const horizon = (Date.parse(body.period_end) - now) / DAY
    expect(body.total).toMatchObject({
      quota_state: "spent",
      used_tokens: 6_300,
      projected_tokens: 6_300,
      denied_tokens: Math.round(2100 * horizon),
    })
  })

  it("projects with denials in mind: billed tokens stop at the quota and the rest of the demand is denied", async () => {
    const now = clock.now()
    const sub = await t.subscription({
      plan: "enterprise",
      token_limit: 15_000,
      period_start: new Date(now - 5 * DAY).toISOString(),
    })
    // 2,000 raw tokens a day on telegram (1.05x: 2,100 billed): 10,500 used, a daily mean of 2,100 to come.
    await importTurns(
      Array.from({ length: 5 }, (_, i) => ({
        subscriptionId: sub.id,
        channel: "telegram" as const,
        at: now - (5 - i) * DAY,
        tokens: 2000,
      })),
    )
    const forecast = async () => {
      const res = await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
      expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/forecast", res)
      return res.json()
    }
    const before = await forecast()
    const horizon = (Date.parse(before.period_end) - now) / DAY
    const demand = 10_500 + 2100 * horizon
    expect(before.total).toMatchObject({
      quota_state: "runs_out",
      used_tokens: 10_500,
      projected_tokens: 15_000,
      forecast_tokens: 4_500,
      denied_tokens: Math.round(demand - 15_000),
    })
    expect(before.total.upper).toBe(15_000)
    expect(before.channels[0]).toMatchObject({ channel: "telegram", projected_tokens: 15_000 })

    // A turn the quota cannot hold is refused: the quota is spent, since that refusal.
    const refused = await t.container.meter.validateAndConsumeTokens({
      entityId: sub.entityId,
      entityType: "organization",
      estimatedTokens: 5000,
      channel: "telegram",
    })
    expect(refused).toMatchObject({ allowed: false, reason: "quota_exceeded" })
    const spent = await forecast()
    expect(spent.total).toMatchObject({ quota_state: "spent", projected_tokens: 15_000 })
    expect(Date.parse(spent.total.quota_exhausted_at)).toBe(now)

    // The operator lowers the limit below what is used: over, and nothing more is billed.
    const lowered = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}`,
      payload: { token_limit: 8_000 },
    })
    expect(lowered.statusCode, lowered.body).toBe(200)
    const over = await forecast()
    expect(over.total).toMatchObject({
      quota_state: "over",
      used_tokens: 10_500,
      projected_tokens: 10_500,
      forecast_tokens: 0,
      lower: 10_500,
      upper: 10_500,
      denied_tokens: Math.round(demand - 10_500),
    })
    const insights = (
      await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/insights` })
    ).json()
    expect(insights.insights[0]).toMatchObject({
      kind: "quota_exhaustion_projected",
      title: "More tokens used than the quota allows",
      evidence: { used_tokens: 10_500, token_limit: 8_000 },
    })
    expect(insights.insights[0].explanation).toContain("2,500 over it")
    expect(insights.insights[0].explanation).toContain("(UTC)")
  })

  it("measures the run rate from the start of the period, not from the first turn", async () => {
    const now = clock.now()
    const periodStart = now - 6 * 3_600_000
    const sub = await t.subscription({
      plan: "basic",
      token_limit: 100_000,
      period_start: new Date(periodStart).toISOString(),
    })
    // 321 tokens in the last 10 seconds of a period that began six hours ago.
    await importTurns([
      { subscriptionId: sub.id, channel: "website", at: now - 10_000, tokens: 200 },
      { subscriptionId: sub.id, channel: "website", at: now - 5_000, tokens: 121 },
    ])
    const forecast = (
      await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
    ).json()
    // Independent recomputation: the ledger's billed tokens over the time since the period began.
    const billed = await billedSince(sub.id, periodStart)
    expect(billed).toBe(321)
    const horizon = (Date.parse(forecast.period_end) - now) / DAY
    const expected = (billed / ((now - periodStart) / DAY)) * horizon
    expect(forecast.total.method).toBe("run_rate")
    expect(Math.abs(forecast.total.forecast_tokens - expected)).toBeLessThanOrEqual(1)
    expect(forecast.total.quota_exhausted_at).toBeNull()
    const insights = (
      await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/insights` })
    ).json()
    expect(insights.insights).toEqual([])
  })

  it("averages the quiet days since the period began when the first turn came minutes ago", async () => {
    const now = clock.now()
    const periodStart = now - 3 * DAY
    const sub = await t.subscription({ plan: "basic", period_start: new Date(periodStart).toISOString() })
    await importTurns([{ subscriptionId: sub.id, channel: "website", at: now - 60_000, tokens: 321 }])
    const forecast = (
      await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
    ).json()
    const billed = await billedSince(sub.id, periodStart)
    const horizon = (Date.parse(forecast.period_end) - now) / DAY
    expect(forecast.history_days).toBe(3)
    expect(forecast.total.method).toBe("daily_mean")
    expect(Math.abs(forecast.total.forecast_tokens - (billed / 3) * horizon)).toBeLessThanOrEqual(1)
  })

  it("projects nothing from seconds of usage at the very start of a period, and raises no run-out alarm", async () => {
    const now = clock.now()
    const sub = await t.subscription({ plan: "basic", period_start: new Date(now - 10_000).toISOString() })
    await importTurns([{ subscriptionId: sub.id, channel: "website", at: now - 5_000, tokens: 321 }])
    const res = await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/insights` })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.forecast.total.method).toBe("none")
    expect(body.insights).toEqual([])
    const forecast = (
      await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/forecast` })
    ).json()
    expect(forecast.total).toMatchObject({ method: "none", used_tokens: 321, projected_tokens: 321 })
  })

  it("answers a subscription without usage with zero and method none", async () => {
    const sub = await t.subscription()
    const res = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${sub.id}/forecast`,
      key: sub.key,
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      history_days: 0,
      channels: [],
      total: { method: "none", projected_tokens: 0, quota_exhausted_at: null },
    })
  })

  it("answers 400 naming the parameter for a malformed id and 404 for an unknown one", async () => {
    const bad = await t.request({ method: "GET", url: "/api/onboarding/analytics/not-a-uuid/forecast" })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.field).toBe("subscription_id")
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/forecast", bad)
    const missing = await t.request({
      method: "GET",
      url: "/api/onboarding/analytics/00000000-0000-4000-8000-000000000000/forecast",
    })
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error.code).toBe("subscription_not_found")
  })
})

describe("GET /api/onboarding/analytics/:subscription_id/insights", () => {
  it("ranks the quota run-out first and inefficiency last, with denials in between by how much they cost", async () => {
    const now = clock.now()
    const sub = await t.subscription({
      plan: "professional",
      token_limit: 200_000,
      period_start: new Date(now - 3 * DAY).toISOString(),
    })
    const turns: { subscriptionId: string; channel: Channel; at: number; tokens: number }[] = []
    for (let d = 1; d <= 20; d += 1) {
      for (let k = 0; k < 4; k += 1)
        turns.push({
          subscriptionId: sub.id,
          channel: "website",
          at: now - d * DAY + k * 3_600_000,
          tokens: 2500,
        })
      for (let k = 0; k < 4; k += 1)
        turns.push({
          subscriptionId: sub.id,
          channel: "api",
          at: now - d * DAY + k * 3_600_000,
          tokens: 9000,
        })
    }
    await importTurns(turns)
    // Live traffic: Instagram turned away by the plan, WhatsApp's rate limit biting this week.
    for (let i = 0; i < 12; i += 1) {
      await t.container.meter.validateAndConsumeTokens({
        entityId: sub.entityId,
        entityType: "organization",
        estimatedTokens: 10,
        channel: "instagram",
        userIdentifier: `ig-${i % 5}`,
      })
    }
    await t.container.meter.updateChannelConfig(sub.id, "whatsapp", { requestsPerMinute: 10 })
    for (let i = 0; i < 30; i += 1) {
      await t.container.meter.validateAndConsumeTokens({
        entityId: sub.entityId,
        entityType: "organization",
        estimatedTokens: 10,
        channel: "whatsapp",
      })
    }
    const res = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${sub.id}/insights`,
      key: sub.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/insights", res)
    const insights = res.json().insights as {
      kind: string
      channel: string | null
      evidence: Record<string, unknown>
      explanation: string
    }[]
    expect(
      insights.map((i) => [i.kind, i.channel]),
      JSON.stringify(insights, null, 1),
    ).toEqual([
      ["quota_exhaustion_projected", null],
      ["rate_limit_denials_rising", "whatsapp"], // two turns in three denied outranks 12 upsell denials
      ["channel_not_in_plan", "instagram"],
      ["low_channel_efficiency", "api"],
    ])
    expect(insights[2]?.evidence).toMatchObject({
      denied_turns_30d: 12,
      distinct_end_users: 5,
      unlocking_plan: "enterprise",
    })
    expect(insights[1]?.evidence).toMatchObject({ rate_limited_turns_7d: 20, turns_7d: 30 })
    expect(insights[3]?.evidence).toMatchObject({ tokens_per_message: 8100 })
    expect(insights[2]?.explanation).toContain("Enterprise")
  })

  it("gives no advice on a quiet, healthy subscription", async () => {
    const sub = await t.subscription({ plan: "enterprise" })
    for (let i = 0; i < 3; i += 1) {
      await t.container.meter.validateAndConsumeTokens({
        entityId: sub.entityId,
        entityType: "organization",
        estimatedTokens: 10,
        channel: "website",
      })
    }
    const res = await t.request({ method: "GET", url: `/api/onboarding/analytics/${sub.id}/insights` })
    expect(res.json().insights).toEqual([])
  })
})
