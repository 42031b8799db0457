/**
 * capacity.shed: a minute in which a rising share of a channel's turns is shed for higher priorities
 * raises one alert per channel and minute; a few sheds do not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Channel } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { listAlerts } from "../../src/storage/alerts.js"
import { startTestApp, type TestApp } from "../support/http.js"

let t: TestApp
const clock = new ManualClock(Math.floor(Date.now() / 60_000) * 60_000 - 3 * 24 * 3_600_000)

beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

async function consume(entityId: string, channel: Channel, tokens = 100) {
  return t.container.meter.validateAndConsumeTokens({
    entityId,
    entityType: "organization",
    estimatedTokens: tokens,
    channel,
  })
}

describe("capacity.shed", () => {
  it("fires once per channel and minute when a rising share of its turns is shed, with the counts and the rate", async () => {
    const sub = await t.subscription({ tokens_per_minute: 1000 })
    await t.container.meter.updateChannelConfig(sub.id, "api", { priority: 2, tokenMultiplier: 1 })
    await t.container.meter.updateChannelConfig(sub.id, "whatsapp", { priority: 9, tokenMultiplier: 1 })
    clock.set(Math.floor(clock.now() / 60_000) * 60_000 + 60_000 + 1_000)
    // Priority 2 may fill 560 of the 1,000 tokens: 5 of 12 turns pass, 7 are shed (58%).
    const decisions = []
    for (let i = 0; i < 12; i += 1) decisions.push(await consume(sub.entityId, "api"))
    expect(decisions.filter((d) => !d.allowed && d.reason === "capacity_shed")).toHaveLength(7)
    // Priority 9 takes the rest of the window without being shed.
    for (let i = 0; i < 3; i += 1) expect((await consume(sub.entityId, "whatsapp")).allowed).toBe(true)
    expect(await t.container.detectors.runFor(t.container.database.db, sub.id, clock.now())).toBe(0)
    clock.advance(60_000)
    expect(await t.container.detectors.runFor(t.container.database.db, sub.id, clock.now())).toBe(1)
    expect(await t.container.detectors.runFor(t.container.database.db, sub.id, clock.now())).toBe(0)
    const alerts = await listAlerts(t.container.database.db, sub.id, { limit: 50 })
    expect(alerts.map((a) => [a.type, a.channel, a.data])).toEqual([
      ["capacity.shed", "api", expect.objectContaining({ shed_turns: 7, turns: 12, shed_rate: 0.5833 })],
    ])
  })

  it("stays quiet when only a few turns are shed", async () => {
    const sub = await t.subscription({ tokens_per_minute: 1000 })
    await t.container.meter.updateChannelConfig(sub.id, "api", { priority: 2, tokenMultiplier: 1 })
    clock.set(Math.floor(clock.now() / 60_000) * 60_000 + 60_000 + 1_000)
    for (let i = 0; i < 7; i += 1) await consume(sub.entityId, "api")
    clock.advance(60_000)
    expect(await t.container.detectors.runFor(t.container.database.db, sub.id, clock.now())).toBe(0)
  })
})
