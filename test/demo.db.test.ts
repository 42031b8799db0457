/**
 * The demo's history keeps the product's promises, checked from the ledger rows it wrote (recomputed here,
 * not through the service): no billing period over its quota, no channel over its rolling-minute request
 * limit, quota and rate-limit denials where the limits bit, channels outside the plan refused, and the
 * spike, channel-health, rate-limit and quota alerts raised at their own moments with their own figures.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CHANNEL_DEFINITIONS, type Channel } from "../src/core/channels.js"
import { PLAN_DEFINITIONS } from "../src/core/plans.js"
import type { Subscription } from "../src/core/subscription.js"
import { seedDemo } from "../src/demo/seed.js"
import { startTestApp, type TestApp } from "./support/http.js"

const DAY = 86_400_000
let t: TestApp
let demo: Subscription[]
const now = new Date()

interface Row {
  channel: Channel
  created_at: Date
  status: string
  denial_reason: string | null
  billed_tokens: number
  period_start: Date | null
}

const rowsOf = async (subscriptionId: string): Promise<Row[]> =>
  (
    await t.container.database.db
      .selectFrom("token_usage_logs")
      .select(["channel", "created_at", "status", "denial_reason", "billed_tokens", "period_start"])
      .where("subscription_id", "=", subscriptionId)
      .orderBy("created_at")
      .execute()
  ).map((r) => ({ ...r, channel: r.channel as Channel, billed_tokens: Number(r.billed_tokens) }))

const alertsOf = (subscriptionId: string) =>
  t.container.database.db
    .selectFrom("alerts")
    .select(["type", "channel", "data", "occurred_at"])
    .where("subscription_id", "=", subscriptionId)
    .orderBy("occurred_at")
    .execute()

const bySubscription = (entityId: string) => {
  const found = demo.find((s) => s.entityId === entityId)
  if (!found) throw new Error(`no demo subscription ${entityId}`)
  return found
}

beforeAll(async () => {
  t = await startTestApp()
  demo = await seedDemo(t.container.meter, t.container.database, now, 60)
}, 240_000)
afterAll(async () => t.close())

describe("the demo history", () => {
  it("never lets a billing period's allowed turns past its token limit", async () => {
    for (const subscription of demo) {
      const used = new Map<number, number>()
      for (const row of await rowsOf(subscription.id)) {
        if (row.status === "denied" || row.period_start === null) continue
        const key = row.period_start.getTime()
        used.set(key, (used.get(key) ?? 0) + row.billed_tokens)
      }
      expect(used.size, subscription.entityId).toBeGreaterThan(0)
      for (const tokens of used.values()) {
        expect(tokens, subscription.entityId).toBeLessThanOrEqual(subscription.tokenLimit)
      }
    }
  })

  it("denies globex-support's turns with quota_exceeded once its quota is spent, about three days ago", async () => {
    const rows = await rowsOf(bySubscription("globex-support").id)
    const refused = rows.filter((r) => r.denial_reason === "quota_exceeded")
    expect(refused.length).toBeGreaterThan(500)
    const first = refused[0]?.created_at.getTime() ?? 0
    expect(now.getTime() - first).toBeGreaterThan(2 * DAY)
    expect(now.getTime() - first).toBeLessThan(5 * DAY)
  })

  it("keeps every channel within its requests per rolling minute, denying the rest as rate_limited", async () => {
    for (const subscription of demo) {
      const rows = await rowsOf(subscription.id)
      for (const channel of PLAN_DEFINITIONS[subscription.plan].channels) {
        const limit = CHANNEL_DEFINITIONS[channel].defaults.requestsPerMinute
        const allowed = rows
          .filter((r) => r.channel === channel && r.status !== "denied")
          .map((r) => r.created_at.getTime())
        let first = 0
        for (let last = 0; last < allowed.length; last += 1) {
          while ((allowed[first] ?? 0) <= (allowed[last] ?? 0) - 60_000) first += 1
          expect(last - first + 1, `${subscription.entityId} ${channel}`).toBeLessThanOrEqual(limit)
        }
      }
    }
    const acme = await rowsOf(bySubscription("acme-retail").id)
    expect(acme.filter((r) => r.denial_reason === "rate_limited").length).toBeGreaterThan(100)
  })

  it("refuses the channels a plan lacks with channel_not_in_plan, and only those", async () => {
    const initech = bySubscription("initech")
    const rows = await rowsOf(initech.id)
    const planned = PLAN_DEFINITIONS[initech.plan].channels
    const outside = rows.filter((r) => !planned.includes(r.channel))
    expect(outside.length).toBeGreaterThan(5)
    expect(outside.every((r) => r.denial_reason === "channel_not_in_plan")).toBe(true)
    expect(rows.some((r) => r.denial_reason === "channel_not_in_plan" && planned.includes(r.channel))).toBe(
      false,
    )
  })

  it("raises spike, channel-health and rate-limit alerts for the broadcast, each at its own time", async () => {
    const alerts = await alertsOf(bySubscription("acme-retail").id)
    const types = new Set(alerts.map((a) => a.type))
    for (const type of [
      "usage.spike_detected",
      "usage.spike_resolved",
      "channel.health_degraded",
      "channel.health_recovered",
      "rate_limit.exceeded",
    ]) {
      expect(types, type).toContain(type)
    }
    for (const alert of alerts) {
      expect(now.getTime() - alert.occurred_at.getTime(), alert.type).toBeGreaterThan(5 * DAY)
    }
    const at = (type: string) => alerts.find((a) => a.type === type)?.occurred_at.getTime() ?? 0
    expect(at("channel.health_degraded")).toBeLessThan(at("channel.health_recovered"))
    expect(at("usage.spike_detected")).toBeLessThan(at("usage.spike_resolved"))
    const minutes = alerts.filter((a) => a.type === "rate_limit.exceeded")
    expect(new Set(minutes.map((a) => a.occurred_at.getTime())).size).toBe(minutes.length)
  })

  it("dates each quota alert when its threshold was crossed, with the tokens used at that moment", async () => {
    const globex = bySubscription("globex-support")
    const quota = (await alertsOf(globex.id)).filter((a) => a.type === "quota.threshold_reached")
    // 100% is crossed only when the turns fill the quota to the token, which depends on the seed's clock.
    const thresholds = quota.map((a) => Number(a.data.threshold))
    expect(thresholds.slice(0, 3)).toEqual([0.5, 0.8, 0.95])
    expect(thresholds.slice(3)).toEqual(thresholds.length > 3 ? [1] : [])
    const rows = (await rowsOf(globex.id)).filter(
      (r) => r.status !== "denied" && r.period_start?.getTime() === globex.periodAnchor.getTime(),
    )
    for (const alert of quota) {
      const mark = Math.ceil(Number(alert.data.threshold) * globex.tokenLimit)
      // The turns up to the alert's moment used exactly what it says, and that is the first sum past the mark.
      const through = rows.filter((r) => r.created_at.getTime() <= alert.occurred_at.getTime())
      const used = through.reduce((sum, r) => sum + r.billed_tokens, 0)
      expect(Number(alert.data.used_tokens)).toBe(used)
      expect(used).toBeGreaterThanOrEqual(mark)
      expect(used).toBeLessThanOrEqual(globex.tokenLimit)
      expect(used - (through.at(-1)?.billed_tokens ?? 0)).toBeLessThan(mark)
      expect(now.getTime() - alert.occurred_at.getTime()).toBeGreaterThan(DAY)
    }
  })
})
