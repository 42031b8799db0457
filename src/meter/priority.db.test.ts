/**
 * Priority-aware admission through the meter, on both databases: a subscription's shared capacity shed by
 * channel priority, and the quota reserve at its boundary under a 200-way race.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { ManualClock } from "../core/clock.js"
import { ValidationError } from "../core/errors.js"
import { InProcessRateLimiter } from "../limits/in-process.js"
import type { Database } from "../storage/database.js"
import type { Decision } from "./decisions.js"
import { Meter } from "./meter.js"

let database: Database
let meter: Meter
const clock = new ManualClock(Date.parse("2026-03-15T12:00:00Z"))

beforeAll(async () => {
  database = await openTestDatabase()
  meter = new Meter({ database, rateLimiter: new InProcessRateLimiter(clock), clock })
})
afterAll(async () => {
  await meter.close()
  await database.close()
})

/** A subscription whose API channel has priority 2 and WhatsApp priority 9, both billed at 1.0x. */
async function subscribe(
  settings: Parameters<Meter["createSubscription"]>[0] extends infer T ? Partial<T> : never,
) {
  const who = entity()
  const subscription = await meter.createSubscription({
    ...who,
    plan: "enterprise",
    tokenLimit: 1_000_000,
    periodStart: "2026-03-01T00:00:00Z",
    ...settings,
  })
  await meter.updateChannelConfig(subscription.id, "api", { priority: 2, tokenMultiplier: 1 })
  await meter.updateChannelConfig(subscription.id, "whatsapp", { priority: 9, tokenMultiplier: 1 })
  return { who, subscription }
}

async function ledgerRows(subscriptionId: string) {
  return database.db
    .selectFrom("token_usage_logs")
    .select(["channel", "status", "denial_reason", "billed_tokens"])
    .where("subscription_id", "=", subscriptionId)
    .execute()
}

describe("a subscription's shared capacity", () => {
  it("sheds priority 2 at 56% of the tokens per minute and keeps the rest for priority 9", async () => {
    const { who } = await subscribe({ tokensPerMinute: 1000 })
    const api = () => meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 100 }))
    const whatsapp = () =>
      meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 100 }))
    for (let i = 0; i < 5; i += 1) expect((await api()).allowed).toBe(true)
    const shed = await api()
    expect(shed).toMatchObject({
      allowed: false,
      reason: "capacity_shed",
      capacity: "subscription",
      limit: "tokens_per_minute",
      shedPriority: 2,
      admitPercent: 56,
      retryAfterMs: 60_000,
    })
    expect(shed.allowed ? "" : shed.message).toMatch(/priority 2/)
    // Priority 9 may fill 94%: four more turns of 100 (900), not a fifth (1,000).
    for (let i = 0; i < 4; i += 1) expect((await whatsapp()).allowed).toBe(true)
    expect(await whatsapp()).toMatchObject({ allowed: false, reason: "capacity_shed", shedPriority: 9 })
    clock.advance(60_000)
    expect((await api()).allowed).toBe(true)
  })

  it("refuses a turn its priority's share could never hold as turn_too_large, not shed with a retry time", async () => {
    const { who } = await subscribe({ tokensPerMinute: 1000 })
    const refused = await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 600 }))
    expect(refused).toMatchObject({
      allowed: false,
      reason: "turn_too_large",
      capacity: "subscription",
      tokensPerMinute: 560,
      priority: 2,
    })
    expect(refused.allowed ? undefined : refused.retryAfterMs).toBeUndefined()
    expect(
      (await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 600 })))
        .allowed,
    ).toBe(true)
    clock.advance(60_000)
  })

  it("records every shed turn in the ledger as capacity_shed, billed nothing", async () => {
    const { who, subscription } = await subscribe({ requestsPerMinute: 10 })
    const decisions: Decision[] = []
    for (let i = 0; i < 8; i += 1)
      decisions.push(await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 10 })))
    // Priority 2 may fill 56% of 10 requests: 5.
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5)
    const rows = await ledgerRows(subscription.id)
    expect(
      rows.filter((r) => r.denial_reason === "capacity_shed").map((r) => Number(r.billed_tokens)),
    ).toEqual([0, 0, 0])
    clock.advance(60_000)
  })

  it("follows the subscription's own curve, and refuses one that is not monotone naming the field", async () => {
    const curve = [10, 10, 20, 30, 40, 50, 60, 70, 80, 100]
    const { who, subscription } = await subscribe({ tokensPerMinute: 1000, priorityCurve: curve })
    expect(subscription).toMatchObject({ tokensPerMinute: 1000, priorityCurve: curve })
    expect(
      (await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 100 }))).allowed,
    ).toBe(true)
    expect(
      await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 100 })),
    ).toMatchObject({
      reason: "capacity_shed",
      admitPercent: 10,
    })
    const refused = meter.updateSubscription(subscription.id, {
      priorityCurve: [50, 40, 60, 70, 80, 90, 95, 96, 97, 100],
    })
    await expect(refused).rejects.toBeInstanceOf(ValidationError)
    await expect(refused).rejects.toMatchObject({ field: "priority_curve" })
    await expect(meter.updateSubscription(subscription.id, { tokensPerMinute: -5 })).rejects.toBeInstanceOf(
      ValidationError,
    )
    expect(await meter.getSubscription(subscription.id)).toMatchObject({
      priorityCurve: curve,
      tokensPerMinute: 1000,
    })
    // null clears the capacity: nothing is shed any more.
    await meter.updateSubscription(subscription.id, { tokensPerMinute: null })
    expect(
      (await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 100 }))).allowed,
    ).toBe(true)
    clock.advance(60_000)
  })
})

describe("the quota reserve", () => {
  it("refuses a low-priority turn that would dip into the reserve, saying so, and lets a high one use it", async () => {
    const { who } = await subscribe({
      tokenLimit: 10_000,
      quotaReservePercent: 10,
      quotaReserveMinPriority: 8,
    })
    expect(
      (await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 9_000 }))).allowed,
    ).toBe(true)
    const refused = await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 1 }))
    expect(refused).toMatchObject({
      allowed: false,
      reason: "quota_exceeded",
      reserved: true,
      remainingTokens: 0,
    })
    expect(refused.allowed ? "" : refused.message).toMatch(/reserved for channels of priority 8 or more/)
    const high = await meter.validateAndConsumeTokens(
      turn(who, { channel: "whatsapp", estimatedTokens: 1_000 }),
    )
    expect(high).toMatchObject({ allowed: true, remainingTokens: 0 })
    const over = await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 1 }))
    expect(over).toMatchObject({ allowed: false, reason: "quota_exceeded" })
    expect(over.allowed ? undefined : over.reserved).toBeUndefined()
    clock.advance(60_000)
  })

  it("holds at the boundary under a 200-way race: billed never passes the limit and low priority never enters the reserve", async () => {
    const limit = 10_000
    const { who, subscription } = await subscribe({
      tokenLimit: limit,
      quotaReservePercent: 10,
      quotaReserveMinPriority: 8,
    })
    // 8,900 used: 100 tokens left for priority 2, 1,100 for priority 9.
    await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 8_900 }))
    const racers = Array.from({ length: 200 }, (_, i) =>
      meter.validateAndConsumeTokens(
        turn(who, { channel: i % 2 === 0 ? "api" : "whatsapp", estimatedTokens: 20 }),
      ),
    )
    const decisions = await Promise.all(racers)

    // Recomputed from the ledger, not from the decisions: what was charged, per channel.
    const rows = await ledgerRows(subscription.id)
    const charged = rows.filter((r) => r.status !== "denied")
    const billed = charged.reduce((sum, r) => sum + Number(r.billed_tokens), 0)
    const lowCharged = charged.filter((r) => r.channel === "api").length
    const highCharged = charged.filter((r) => r.channel === "whatsapp").length - 1
    expect(billed).toBeLessThanOrEqual(limit)
    // Low priority could only ever have used the 100 tokens before the reserve: at most 5 turns of 20.
    expect(lowCharged).toBeLessThanOrEqual(5)
    // The quota is used up exactly: 20 divides what was left, and there was demand for all of it.
    expect(billed).toBe(limit)
    expect(lowCharged + highCharged).toBe((limit - 8_900) / 20)
    // Every low-priority turn admitted left the period's use within the part it may use.
    for (const d of decisions)
      if (d.allowed && d.channel === "api")
        expect(d.tokenLimit - d.remainingTokens).toBeLessThanOrEqual(9_000)
    const lowDenials = rows.filter((r) => r.channel === "api" && r.status === "denied")
    expect(lowDenials.length).toBe(100 - lowCharged)
    expect(
      lowDenials.every((r) => r.denial_reason === "quota_reserved" || r.denial_reason === "quota_exceeded"),
    ).toBe(true)
    const counter = await database.db
      .selectFrom("quota_counters")
      .select("used_tokens")
      .where("subscription_id", "=", subscription.id)
      .executeTakeFirstOrThrow()
    expect(Number(counter.used_tokens)).toBe(billed)
    clock.advance(60_000)
  })

  it("refuses a reserve outside 0-50% and a priority outside 1-10, naming the field", async () => {
    const who = entity()
    await expect(
      meter.createSubscription({ ...who, plan: "basic", quotaReservePercent: 51 }),
    ).rejects.toMatchObject({ field: expect.stringMatching(/quotaReservePercent|quota_reserve_percent/) })
    await expect(
      meter.createSubscription({ ...who, plan: "basic", quotaReserveMinPriority: 11 }),
    ).rejects.toBeInstanceOf(ValidationError)
  })
})

describe("the deployment-wide capacity", () => {
  it("sheds every subscription's low-priority turns by channel priority, across subscriptions", async () => {
    const shared = new Meter({
      database,
      rateLimiter: new InProcessRateLimiter(clock),
      clock,
      operatorCapacity: { requestsPerMinute: null, tokensPerMinute: 1000 },
    })
    try {
      const a = await subscribe({})
      const b = await subscribe({})
      const send = (who: { entityId: string; entityType: string }, channel: "api" | "whatsapp") =>
        shared.validateAndConsumeTokens(turn(who, { channel, estimatedTokens: 100 }))
      // Priority 2 may fill 560 of the deployment's 1,000 tokens, whichever subscription sends them.
      for (let i = 0; i < 3; i += 1) expect((await send(a.who, "api")).allowed).toBe(true)
      for (let i = 0; i < 2; i += 1) expect((await send(b.who, "api")).allowed).toBe(true)
      expect(await send(b.who, "api")).toMatchObject({ reason: "capacity_shed", capacity: "operator" })
      for (let i = 0; i < 4; i += 1) expect((await send(a.who, "whatsapp")).allowed).toBe(true)
      expect(await send(b.who, "whatsapp")).toMatchObject({ reason: "capacity_shed", shedPriority: 9 })
    } finally {
      await shared.close()
      clock.advance(60_000)
    }
  })

  it("refuses a bad operator capacity when the meter is built", () => {
    const build = (operatorCapacity: ConstructorParameters<typeof Meter>[0]["operatorCapacity"]) =>
      new Meter({ database, rateLimiter: new InProcessRateLimiter(clock), clock, operatorCapacity })
    expect(() => build({ requestsPerMinute: -1, tokensPerMinute: null })).toThrow(ValidationError)
    expect(() =>
      build({
        requestsPerMinute: 10,
        tokensPerMinute: null,
        priorityCurve: [50, 40, 60, 70, 80, 90, 95, 96, 97, 100],
      }),
    ).toThrow(/priorityCurve/)
  })
})
