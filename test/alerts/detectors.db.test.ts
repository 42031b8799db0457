/**
 * The periodic detectors against generated traffic: each event fires when it should and not when it should
 * not (minimum-volume guard, short history, once per minute/hour, open/closed state).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Channel } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { importTurns } from "../../src/meter/usage-import.js"
import { listAlerts } from "../../src/storage/alerts.js"
import { startTestApp, type TestApp } from "../support/http.js"

const HOUR = 3_600_000
let t: TestApp
const clock = new ManualClock(Math.floor(Date.now() / HOUR) * HOUR - 10 * 24 * HOUR + 30 * 60_000)

beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

async function alertsOf(subscriptionId: string) {
  return (await listAlerts(t.container.database.db, subscriptionId, { limit: 500 })).reverse()
}

async function detect(subscriptionId: string): Promise<number> {
  return t.container.detectors.runFor(t.container.database.db, subscriptionId, clock.now())
}

async function consume(entityId: string, channel: Channel, tokens = 100) {
  return t.container.meter.validateAndConsumeTokens({
    entityId,
    entityType: "organization",
    estimatedTokens: tokens,
    operationType: "chat",
    channel,
  })
}

/** Imports `count` settled turns of `tokens` each, spread over [start, start + 1 h). */
async function history(subscriptionId: string, channel: Channel, start: number, count: number, tokens = 100) {
  async function* lines() {
    for (let i = 0; i < count; i += 1) {
      yield JSON.stringify({
        subscription_id: subscriptionId,
        channel,
        created_at: new Date(start + Math.floor((i * HOUR) / Math.max(count, 1))).toISOString(),
        raw_tokens: tokens,
      })
    }
  }
  const report = await importTurns(t.container.database, clock, lines())
  expect(report.rejectedCount).toBe(0)
}

describe("rate_limit.exceeded", () => {
  it("fires once per channel per minute with the number of denied turns, and only for whole minutes", async () => {
    const sub = await t.subscription()
    await t.container.meter.updateChannelConfig(sub.id, "website", { requestsPerMinute: 2 })
    clock.set(Math.floor(clock.now() / 60_000) * 60_000 + 60_000 + 1_000)
    for (let i = 0; i < 6; i += 1) await consume(sub.entityId, "website")
    for (let i = 0; i < 3; i += 1) await consume(sub.entityId, "telegram")
    expect(await detect(sub.id)).toBe(0) // the minute is not over yet
    clock.advance(60_000)
    for (let i = 0; i < 3; i += 1) await consume(sub.entityId, "website")
    clock.advance(60_000)
    expect(await detect(sub.id)).toBe(2)
    expect(await detect(sub.id)).toBe(0)
    const alerts = await alertsOf(sub.id)
    expect(alerts.map((a) => [a.type, a.channel, a.data.denied_turns])).toEqual([
      ["rate_limit.exceeded", "website", 4],
      ["rate_limit.exceeded", "website", 1],
    ])
  })
})

describe("usage spikes", () => {
  it("detects a channel far above its same-hour-of-week median, and resolves it when it calms down", async () => {
    const sub = await t.subscription()
    const now = clock.now()
    for (const k of [1, 2, 3, 4]) {
      await history(sub.id, "website", now - HOUR - k * 7 * 24 * HOUR, 10 + k)
      await history(sub.id, "whatsapp", now - HOUR - k * 7 * 24 * HOUR, 1)
    }
    await history(sub.id, "website", now - HOUR, 60)
    await history(sub.id, "whatsapp", now - HOUR, 15) // 15x its usual level, but under the volume guard
    expect(await detect(sub.id)).toBe(1)
    const [spike] = await alertsOf(sub.id).then((all) => all.filter((a) => a.type.startsWith("usage.")))
    expect(spike).toMatchObject({
      type: "usage.spike_detected",
      channel: "website",
      data: {
        messages: 60,
        tokens: 6000,
        baseline_messages: 12.5,
        baseline_method: "same_hour_of_week_median",
      },
    })
    // Still high later in the hour: the spike is open, nothing new.
    clock.advance(5 * 60_000)
    expect(await detect(sub.id)).toBe(0)
    // An hour on, the channel is back to normal.
    clock.advance(HOUR)
    await history(sub.id, "website", clock.now() - HOUR, 14)
    expect(await detect(sub.id)).toBe(1)
    const types = (await alertsOf(sub.id)).filter((a) => a.channel === "website").map((a) => a.type)
    expect(types).toEqual(["usage.spike_detected", "usage.spike_resolved"])
    expect(await detect(sub.id)).toBe(0)
  })

  it("calls nothing a spike on less than a day of history", async () => {
    const sub = await t.subscription()
    await history(sub.id, "website", clock.now() - 3 * HOUR, 2)
    await history(sub.id, "website", clock.now() - HOUR, 500)
    expect(await detect(sub.id)).toBe(0)
  })

  it("falls back to the trailing day's median for a channel younger than two weeks", async () => {
    const sub = await t.subscription()
    for (let j = 2; j <= 26; j += 1) await history(sub.id, "api", clock.now() - j * HOUR, 8)
    await history(sub.id, "api", clock.now() - HOUR, 30)
    expect(await detect(sub.id)).toBe(1)
    const [spike] = await alertsOf(sub.id)
    expect(spike?.data).toMatchObject({
      baseline_method: "trailing_24h_median",
      baseline_messages: 8,
      messages: 30,
    })
  })
})

describe("channel health", () => {
  async function turns(entityId: string, channel: Channel, ok: number, errors: number, latencyMs: number) {
    for (let i = 0; i < ok + errors; i += 1) {
      const decision = await consume(entityId, channel, 10)
      if (!decision.allowed) throw new Error(`denied: ${decision.reason}`)
      await t.container.meter.settle(decision.usageId, {
        actualTokens: 10,
        outcome: i < errors ? "error" : "ok",
        latencyMs,
      })
    }
  }

  it("degrades on a high error rate once, then recovers once the window is clean", async () => {
    const sub = await t.subscription()
    await turns(sub.entityId, "whatsapp", 25, 5, 800)
    await turns(sub.entityId, "telegram", 0, 10, 800) // all failing, but too few turns to judge
    expect(await detect(sub.id)).toBe(1)
    clock.advance(60_000)
    expect(await detect(sub.id)).toBe(0)
    const [degraded] = await alertsOf(sub.id)
    expect(degraded).toMatchObject({
      type: "channel.health_degraded",
      channel: "whatsapp",
      data: { settled_turns: 30, error_rate: 0.1667, p95_latency_ms: 800 },
    })
    clock.advance(16 * 60_000)
    await turns(sub.entityId, "whatsapp", 30, 1, 800)
    expect(await detect(sub.id)).toBe(1)
    expect((await alertsOf(sub.id)).map((a) => a.type)).toEqual([
      "channel.health_degraded",
      "channel.health_recovered",
    ])
  })

  it("degrades on slow turns even without errors", async () => {
    const sub = await t.subscription()
    await turns(sub.entityId, "website", 25, 0, 15_000)
    expect(await detect(sub.id)).toBe(1)
    expect((await alertsOf(sub.id))[0]?.data).toMatchObject({ error_rate: 0, p95_latency_ms: 15_000 })
  })

  it("raises nothing for healthy traffic", async () => {
    const sub = await t.subscription()
    await turns(sub.entityId, "website", 40, 1, 900)
    expect(await detect(sub.id)).toBe(0)
  })
})

describe("the detector job", () => {
  it("runs every detector for every active subscription, and a second pass adds nothing", async () => {
    const sub = await t.subscription()
    await t.container.meter.updateChannelConfig(sub.id, "api", { requestsPerMinute: 1 })
    for (let i = 0; i < 3; i += 1) await consume(sub.entityId, "api")
    clock.advance(60_000)
    expect(await t.container.detectors.runOnce()).toBeGreaterThanOrEqual(1)
    expect(await t.container.detectors.runOnce()).toBe(0)
    expect((await alertsOf(sub.id)).map((a) => a.type)).toEqual(["rate_limit.exceeded"])
  })
})
