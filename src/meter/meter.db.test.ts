import { type KyselyPlugin, sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { ManualClock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { InProcessRateLimiter } from "../limits/in-process.js"
import type { Database } from "../storage/database.js"
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

async function subscribe(plan: "basic" | "professional" | "enterprise" = "enterprise", tokenLimit = 100_000) {
  const who = entity()
  const subscription = await meter.createSubscription({
    ...who,
    plan,
    tokenLimit,
    periodStart: "2026-03-01T00:00:00Z",
  })
  return { who, subscription }
}

async function ledger(subscriptionId: string) {
  return database.db
    .selectFrom("token_usage_logs")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .execute()
}

async function counter(subscriptionId: string): Promise<number> {
  const rows = await database.db
    .selectFrom("quota_counters")
    .select("used_tokens")
    .where("subscription_id", "=", subscriptionId)
    .execute()
  return rows.reduce((sum, row) => sum + Number(row.used_tokens), 0)
}

describe("an allowed turn", () => {
  it("is charged at the channel multiplier and written to the ledger before it is answered", async () => {
    const { who, subscription } = await subscribe()
    const decision = await meter.validateAndConsumeTokens(
      turn(who, { channel: "whatsapp", estimatedTokens: 101 }),
    )
    expect(decision).toMatchObject({
      allowed: true,
      channel: "whatsapp",
      multiplier: 1.2,
      rawTokens: 101,
      billedTokens: 122,
      remainingTokens: 100_000 - 122,
      tokenLimit: 100_000,
      replayed: false,
      subscriptionId: subscription.id,
    })
    const rows = await ledger(subscription.id)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({
      status: "estimated",
      channel: "whatsapp",
      chatbot_id: "support-bot",
      session_id: "session-1",
      user_identifier: "user-1",
      operation_type: "chat",
      raw_tokens: 101,
      billed_tokens: 122,
      token_multiplier: "1.20",
    })
    if (decision.allowed) expect(rows[0]?.id).toBe(decision.usageId)
  })

  it("bills 3 tokens at a 1.10 multiplier as 4", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateChannelConfig(subscription.id, "telegram", { tokenMultiplier: 1.1 })
    const decision = await meter.validateAndConsumeTokens(
      turn(who, { channel: "telegram", estimatedTokens: 3 }),
    )
    expect(decision).toMatchObject({ allowed: true, billedTokens: 4, multiplier: 1.1 })
  })

  it("reports the billing period it was charged to", async () => {
    const { who } = await subscribe()
    const decision = await meter.validateAndConsumeTokens(turn(who))
    expect(decision).toMatchObject({
      periodStart: new Date("2026-03-01T00:00:00Z"),
      periodEnd: new Date("2026-04-01T00:00:00Z"),
    })
  })
})

describe("denials", () => {
  it("denies an entity without a subscription and writes nothing", async () => {
    const decision = await meter.validateAndConsumeTokens(turn(entity("ghost")))
    expect(decision).toMatchObject({ allowed: false, reason: "subscription_not_found" })
  })

  it("denies a suspended subscription", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateSubscription(subscription.id, { status: "suspended" })
    const decision = await meter.validateAndConsumeTokens(turn(who))
    expect(decision).toMatchObject({ allowed: false, reason: "subscription_inactive", status: "suspended" })
  })

  it("denies a basic plan the use of instagram and names the plan that unlocks it", async () => {
    const { who, subscription } = await subscribe("basic")
    const decision = await meter.validateAndConsumeTokens(turn(who, { channel: "instagram" }))
    expect(decision).toMatchObject({
      allowed: false,
      reason: "channel_not_in_plan",
      requiredPlan: "enterprise",
    })
    const rows = await ledger(subscription.id)
    expect(rows).toMatchObject([{ status: "denied", denial_reason: "channel_not_in_plan", billed_tokens: 0 }])
    expect(await counter(subscription.id)).toBe(0)
  })

  it("denies a channel its owner disabled", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateChannelConfig(subscription.id, "telegram", { enabled: false })
    const decision = await meter.validateAndConsumeTokens(turn(who, { channel: "telegram" }))
    expect(decision).toMatchObject({ allowed: false, reason: "channel_disabled" })
  })

  it("denies a message over the channel's length limit and says the limit", async () => {
    const { who } = await subscribe()
    const decision = await meter.validateAndConsumeTokens(
      turn(who, { channel: "instagram", message: "x".repeat(1001) }),
    )
    expect(decision).toMatchObject({ allowed: false, reason: "message_too_long", maxMessageLength: 1000 })
    const ok = await meter.validateAndConsumeTokens(turn(who, { channel: "instagram", messageLength: 1000 }))
    expect(ok.allowed).toBe(true)
  })

  it("denies past the channel's rate limit with a retry-after, and charges nothing", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateChannelConfig(subscription.id, "api", { requestsPerMinute: 2 })
    expect((await meter.validateAndConsumeTokens(turn(who, { channel: "api" }))).allowed).toBe(true)
    expect((await meter.validateAndConsumeTokens(turn(who, { channel: "api" }))).allowed).toBe(true)
    const used = await counter(subscription.id)
    const decision = await meter.validateAndConsumeTokens(turn(who, { channel: "api" }))
    expect(decision).toMatchObject({ allowed: false, reason: "rate_limited", limit: "requests_per_minute" })
    if (!decision.allowed) expect(decision.retryAfterMs).toBeGreaterThan(0)
    expect(await counter(subscription.id)).toBe(used)
  })

  it("denies a turn larger than the channel's tokens-per-minute limit as never passing, not as retry later", async () => {
    const { who, subscription } = await subscribe("enterprise", 1_000_000)
    await meter.updateChannelConfig(subscription.id, "api", { tokensPerMinute: 500 })
    const used = await counter(subscription.id)
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const decision = await meter.validateAndConsumeTokens(
        turn(who, { channel: "api", estimatedTokens: 501 }),
      )
      expect(decision).toMatchObject({
        allowed: false,
        reason: "turn_too_large",
        limit: "tokens_per_minute",
        tokensPerMinute: 500,
      })
      if (!decision.allowed) {
        expect(decision.retryAfterMs).toBeUndefined()
        expect(decision.message).toContain("tokens-per-minute limit of 500")
      }
      clock.advance(61_000)
    }
    // Exactly the limit fits an empty window, and the oversized attempts reserved nothing in it.
    expect(
      (await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 500 }))).allowed,
    ).toBe(true)
    const rows = await ledger(subscription.id)
    expect(rows.filter((row) => row.denial_reason === "turn_too_large")).toHaveLength(2)
    expect(await counter(subscription.id)).toBe(used + 450)
  })

  it("denies a turn the quota cannot cover and says what remains", async () => {
    const { who, subscription } = await subscribe("enterprise", 250)
    expect((await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 200 }))).allowed).toBe(true)
    const decision = await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 51 }))
    expect(decision).toMatchObject({ allowed: false, reason: "quota_exceeded", remainingTokens: 50 })
    expect((await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 50 }))).allowed).toBe(true)
    expect(await counter(subscription.id)).toBe(250)
  })

  it("gives a quota-denied turn's rate-limit reservation back", async () => {
    const { who, subscription } = await subscribe("enterprise", 100)
    await meter.updateChannelConfig(subscription.id, "website", { requestsPerMinute: 1 })
    expect((await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 500 }))).allowed).toBe(false)
    expect((await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 100 }))).allowed).toBe(true)
  })
})

describe("settlement", () => {
  it("refunds an over-estimate and charges an under-estimate atomically", async () => {
    const { who, subscription } = await subscribe()
    const first = await meter.validateAndConsumeTokens(
      turn(who, { channel: "whatsapp", estimatedTokens: 100 }),
    )
    if (!first.allowed) throw new Error("expected an allowed turn")
    const refund = await meter.settle(first.usageId, { actualTokens: 50, outcome: "ok", latencyMs: 800 })
    expect(refund).toMatchObject({
      previousBilledTokens: 120,
      billedTokens: 60,
      adjustment: -60,
      overageTokens: 0,
    })
    expect(await counter(subscription.id)).toBe(60)
    const second = await meter.validateAndConsumeTokens(turn(who, { channel: "api", estimatedTokens: 10 }))
    if (!second.allowed) throw new Error("expected an allowed turn")
    const charge = await meter.settle(second.usageId, { actualTokens: 31 })
    expect(charge).toMatchObject({ previousBilledTokens: 9, billedTokens: 28, adjustment: 19 })
    expect(await counter(subscription.id)).toBe(88)
    const rows = await ledger(subscription.id)
    expect(rows.reduce((sum, row) => sum + Number(row.billed_tokens), 0)).toBe(88)
    expect(rows.find((row) => row.id === first.usageId)).toMatchObject({
      status: "settled",
      outcome: "ok",
      latency_ms: 800,
    })
  })

  it("refuses to settle twice and changes nothing the second time", async () => {
    const { who, subscription } = await subscribe()
    const decision = await meter.validateAndConsumeTokens(turn(who))
    if (!decision.allowed) throw new Error("expected an allowed turn")
    await meter.settle(decision.usageId, { actualTokens: 80 })
    await expect(meter.settle(decision.usageId, { actualTokens: 10 })).rejects.toMatchObject({
      code: "usage_already_settled",
    })
    expect(await counter(subscription.id)).toBe(80)
  })

  it("lets only one of two racing settlements through", async () => {
    const { who, subscription } = await subscribe()
    const decision = await meter.validateAndConsumeTokens(turn(who))
    if (!decision.allowed) throw new Error("expected an allowed turn")
    const results = await Promise.allSettled([
      meter.settle(decision.usageId, { actualTokens: 10 }),
      meter.settle(decision.usageId, { actualTokens: 500 }),
    ])
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1)
    const rows = await ledger(subscription.id)
    expect(await counter(subscription.id)).toBe(Number(rows[0]?.billed_tokens))
  })

  it("refuses an unknown usage id and a malformed one", async () => {
    await expect(
      meter.settle("7a1c6f9e-2a51-4a5e-9d7e-4f3d2c1b0a99", { actualTokens: 1 }),
    ).rejects.toMatchObject({
      code: "usage_not_found",
    })
    await expect(meter.settle("not-a-uuid", { actualTokens: 1 })).rejects.toBeInstanceOf(ValidationError)
  })

  it("records an overage when the real usage passes the limit, and then denies", async () => {
    const { who } = await subscribe("enterprise", 100)
    const decision = await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 90 }))
    if (!decision.allowed) throw new Error("expected an allowed turn")
    expect(await meter.settle(decision.usageId, { actualTokens: 130 })).toMatchObject({
      overageTokens: 30,
      remainingTokens: 0,
    })
    expect(await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 1 }))).toMatchObject({
      reason: "quota_exceeded",
    })
  })
})

describe("idempotency", () => {
  it("returns the first decision for a repeated key and never charges twice", async () => {
    const { who, subscription } = await subscribe()
    const first = await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "wamid.1" }))
    const again = await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "wamid.1" }))
    expect(again).toMatchObject({ allowed: true, replayed: true })
    if (first.allowed && again.allowed) expect(again.usageId).toBe(first.usageId)
    expect(await counter(subscription.id)).toBe(100)
  })

  it("charges once when twenty calls with one key race", async () => {
    const { who, subscription } = await subscribe()
    const decisions = await Promise.all(
      Array.from({ length: 20 }, () =>
        meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "race-1" })),
      ),
    )
    const ids = new Set(decisions.map((d) => (d.allowed ? d.usageId : "denied")))
    expect(ids.size).toBe(1)
    expect(decisions.filter((d) => d.allowed && !d.replayed)).toHaveLength(1)
    expect(await counter(subscription.id)).toBe(100)
    expect((await ledger(subscription.id)).filter((row) => row.status !== "denied")).toHaveLength(1)
  })

  it("decides afresh after a denial with the same key", async () => {
    const { who, subscription } = await subscribe("enterprise", 50)
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "k" }))).toMatchObject({
      reason: "quota_exceeded",
    })
    await meter.updateSubscription(subscription.id, { tokenLimit: 500 })
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "k" }))).toMatchObject({
      allowed: true,
      replayed: false,
    })
  })

  it("replays a charged key even after its channel was disabled, and records no denial", async () => {
    const { who, subscription } = await subscribe()
    const first = await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "wamid.off" }))
    await meter.updateChannelConfig(subscription.id, "website", { enabled: false })
    const again = await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "wamid.off" }))
    expect(again).toMatchObject({ allowed: true, replayed: true })
    if (first.allowed && again.allowed) expect(again.usageId).toBe(first.usageId)
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "wamid.new" }))).toMatchObject({
      reason: "channel_disabled",
    })
    const denials = (await ledger(subscription.id)).filter((row) => row.status === "denied")
    expect(denials.map((row) => row.idempotency_key)).toEqual(["wamid.new"])
    expect(await counter(subscription.id)).toBe(100)
  })

  it("answers twenty racing calls with one key at the quota boundary with one charge and its replays", async () => {
    const { who, subscription } = await subscribe("enterprise", 150)
    await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 100 }))
    const decisions = await Promise.all(
      Array.from({ length: 20 }, () =>
        meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 50, idempotencyKey: "edge-1" })),
      ),
    )
    expect(decisions.every((d) => d.allowed)).toBe(true)
    expect(new Set(decisions.map((d) => (d.allowed ? d.usageId : "denied"))).size).toBe(1)
    expect(decisions.filter((d) => d.allowed && !d.replayed)).toHaveLength(1)
    const rows = await ledger(subscription.id)
    expect(rows.filter((row) => row.status === "denied")).toHaveLength(0)
    expect(rows).toHaveLength(2)
    expect(await counter(subscription.id)).toBe(150)
  })

  it("replays a charged key even when its rate limit is full, and gives back the reservation the replay held", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateChannelConfig(subscription.id, "website", { requestsPerMinute: 2 })
    const first = await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "rl-1" }))
    // Replays while one request of the minute is left: each may reserve it for a moment, none keeps it.
    for (let i = 0; i < 3; i += 1)
      expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "rl-1" }))).toMatchObject({
        allowed: true,
        replayed: true,
        usageId: first.allowed ? first.usageId : "",
      })
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "rl-2" }))).toMatchObject({
      allowed: true,
      replayed: false,
    })
    // The minute is full now: a new key is limited, the charged ones still replay.
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "rl-3" }))).toMatchObject({
      allowed: false,
      reason: "rate_limited",
    })
    expect(await meter.validateAndConsumeTokens(turn(who, { idempotencyKey: "rl-2" }))).toMatchObject({
      replayed: true,
    })
    expect(await counter(subscription.id)).toBe(200)
  })

  it("keeps keys of different subscriptions apart", async () => {
    const a = await subscribe()
    const b = await subscribe()
    await meter.validateAndConsumeTokens(turn(a.who, { idempotencyKey: "shared" }))
    expect(await meter.validateAndConsumeTokens(turn(b.who, { idempotencyKey: "shared" }))).toMatchObject({
      replayed: false,
    })
  })
})

describe("the quota under concurrency", () => {
  it("grants exactly the quota to 200 concurrent calls asking for twice it", async () => {
    const { who, subscription } = await subscribe("enterprise", 10_000)
    await meter.updateChannelConfig(subscription.id, "website", {
      requestsPerMinute: 1000,
      tokensPerMinute: 1_000_000,
    })
    const decisions = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 100, userIdentifier: `u${i}` })),
      ),
    )
    const granted = decisions.filter((d) => d.allowed)
    const billed = granted.reduce((sum, d) => sum + (d.allowed ? d.billedTokens : 0), 0)
    expect(billed).toBe(10_000)
    expect(decisions.filter((d) => !d.allowed && d.reason === "quota_exceeded")).toHaveLength(100)
    const rows = await ledger(subscription.id)
    expect(
      rows.filter((r) => r.status !== "denied").reduce((sum, r) => sum + Number(r.billed_tokens), 0),
    ).toBe(10_000)
    expect(await counter(subscription.id)).toBe(10_000)
  })

  it("never overspends when uneven turns race near the limit", async () => {
    const { who, subscription } = await subscribe("enterprise", 5_003)
    await meter.updateChannelConfig(subscription.id, "whatsapp", {
      requestsPerMinute: 1000,
      tokensPerMinute: 1_000_000,
    })
    const decisions = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 17 + (i % 23) })),
      ),
    )
    const billed = decisions.reduce((sum, d) => sum + (d.allowed ? d.billedTokens : 0), 0)
    expect(billed).toBeLessThanOrEqual(5_003)
    const rows = await ledger(subscription.id)
    expect(
      rows.filter((r) => r.status !== "denied").reduce((sum, r) => sum + Number(r.billed_tokens), 0),
    ).toBe(billed)
    expect(await counter(subscription.id)).toBe(billed)
  })
})

describe("billing periods", () => {
  it("resets the quota when the subscription's period ends", async () => {
    const local = new ManualClock(Date.parse("2026-03-31T23:59:00Z"))
    const m = new Meter({ database, rateLimiter: new InProcessRateLimiter(local), clock: local })
    const who = entity()
    await m.createSubscription({
      ...who,
      plan: "basic",
      tokenLimit: 100,
      periodStart: "2026-01-01T00:00:00Z",
    })
    expect((await m.validateAndConsumeTokens(turn(who, { estimatedTokens: 100 }))).allowed).toBe(true)
    expect(await m.validateAndConsumeTokens(turn(who, { estimatedTokens: 1 }))).toMatchObject({
      reason: "quota_exceeded",
    })
    local.set(Date.parse("2026-04-01T00:00:00Z"))
    const next = await m.validateAndConsumeTokens(turn(who, { estimatedTokens: 100 }))
    expect(next).toMatchObject({
      allowed: true,
      remainingTokens: 0,
      periodStart: new Date("2026-04-01T00:00:00Z"),
    })
  })
})

describe("bad input", () => {
  it("names the field and writes nothing", async () => {
    const { who, subscription } = await subscribe()
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ estimatedTokens: -5 }, "estimatedTokens"],
      [{ estimatedTokens: 1.5 }, "estimatedTokens"],
      [{ estimatedTokens: 1e12 }, "estimatedTokens"],
      [{ channel: "sms" }, "channel"],
      [{ entityId: "" }, "entityId"],
      [{ chatbotId: "x".repeat(256) }, "chatbotId"],
      [{ surprise: true }, "surprise"],
    ]
    for (const [patch, field] of cases) {
      const error = await meter
        .validateAndConsumeTokens({ ...turn(who), ...patch } as never)
        .catch((e: unknown) => e)
      expect(error, JSON.stringify(patch)).toBeInstanceOf(ValidationError)
      expect((error as ValidationError).field).toBe(field)
    }
    expect(await ledger(subscription.id)).toHaveLength(0)
  })

  it("stores an injection-shaped identifier as plain text", async () => {
    const { who, subscription } = await subscribe()
    await meter.validateAndConsumeTokens(
      turn(who, { userIdentifier: "x'); drop table token_usage_logs; --" }),
    )
    expect((await ledger(subscription.id))[0]?.user_identifier).toBe("x'); drop table token_usage_logs; --")
  })
})

describe("subscriptions and channel configuration", () => {
  it("defaults the token limit to the plan's and refuses an unknown timezone", async () => {
    const who = entity()
    expect(await meter.createSubscription({ ...who, plan: "professional" })).toMatchObject({
      tokenLimit: 1_000_000,
      timezone: "UTC",
    })
    await expect(
      meter.createSubscription({ ...entity(), plan: "basic", timezone: "Mars/Olympus" }),
    ).rejects.toMatchObject({
      field: "timezone",
    })
    await expect(meter.createSubscription({ ...who, plan: "basic" })).rejects.toMatchObject({
      code: "conflict",
    })
  })

  it("gives a subscription created without a timezone the meter's default timezone, and keeps an explicit one", async () => {
    const kolkata = new Meter({
      database,
      rateLimiter: new InProcessRateLimiter(clock),
      clock,
      defaultTimezone: "Asia/Kolkata",
    })
    try {
      expect(await kolkata.createSubscription({ ...entity(), plan: "basic" })).toMatchObject({
        timezone: "Asia/Kolkata",
      })
      expect(
        await kolkata.createSubscription({ ...entity(), plan: "basic", timezone: "America/Lima" }),
      ).toMatchObject({ timezone: "America/Lima" })
    } finally {
      await kolkata.close()
    }
  })

  it("refuses a meter whose default timezone is unknown", async () => {
    expect(
      () =>
        new Meter({
          database,
          rateLimiter: new InProcessRateLimiter(clock),
          clock,
          defaultTimezone: "Mars/Olympus",
        }),
    ).toThrow(/defaultTimezone/)
  })

  it("refuses to enable a channel the plan lacks, naming the field and the plan", async () => {
    const { subscription } = await subscribe("basic")
    const error = await meter
      .updateChannelConfig(subscription.id, "messenger", { enabled: true })
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(OmnimeterError)
    expect(error).toMatchObject({
      code: "channel_not_in_plan",
      details: { field: "enabled", requiredPlan: "professional" },
    })
  })

  it("shows every channel with its effective settings and what is overridden", async () => {
    const { subscription } = await subscribe("professional")
    await meter.updateChannelConfig(subscription.id, "whatsapp", { maxMessageLength: 500, priority: 9 })
    const configs = await meter.getChannelConfigs(subscription.id)
    expect(configs).toHaveLength(6)
    expect(configs.find((c) => c.channel === "whatsapp")).toMatchObject({
      enabled: true,
      maxMessageLength: 500,
      priority: 9,
      tokenMultiplier: 1.2,
      overridden: ["max_message_length", "priority"],
    })
    expect(configs.find((c) => c.channel === "instagram")).toMatchObject({
      inPlan: false,
      enabled: false,
      requiredPlan: "enterprise",
    })
  })

  it("disables channels a downgrade removes, at once", async () => {
    const { who, subscription } = await subscribe("professional")
    expect((await meter.validateAndConsumeTokens(turn(who, { channel: "api" }))).allowed).toBe(true)
    await meter.updateSubscription(subscription.id, { plan: "basic" })
    expect(await meter.validateAndConsumeTokens(turn(who, { channel: "api" }))).toMatchObject({
      reason: "channel_not_in_plan",
    })
    expect((await meter.getChannelConfigs(subscription.id)).find((c) => c.channel === "api")?.enabled).toBe(
      false,
    )
  })

  it("reports the quota of the current period", async () => {
    const { who, subscription } = await subscribe("enterprise", 1_000)
    await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp", estimatedTokens: 10 }))
    expect(await meter.getQuota(subscription.id)).toMatchObject({
      usedTokens: 12,
      remainingTokens: 988,
      tokenLimit: 1_000,
    })
  })
})

describe("the subscription context cache", () => {
  it("applies a suspension made through this meter to the very next turn", async () => {
    const { who, subscription } = await subscribe()
    expect((await meter.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    await meter.updateSubscription(subscription.id, { status: "suspended" })
    expect(await meter.validateAndConsumeTokens(turn(who))).toMatchObject({ allowed: false })
    await meter.updateSubscription(subscription.id, { status: "active" })
    expect((await meter.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
  })

  it("applies a channel change made through this meter to the very next turn", async () => {
    const { who, subscription } = await subscribe()
    expect((await meter.validateAndConsumeTokens(turn(who, { channel: "telegram" }))).allowed).toBe(true)
    await meter.updateChannelConfig(subscription.id, "telegram", { enabled: false })
    expect(await meter.validateAndConsumeTokens(turn(who, { channel: "telegram" }))).toMatchObject({
      reason: "channel_disabled",
    })
  })

  it("keeps the quota exact when another instance lowers the limit while the context is cached", async () => {
    const { who, subscription } = await subscribe("enterprise", 10_000)
    expect((await meter.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    // Another instance's change: straight to the database, this meter's cache still holds the old limit.
    await database.db
      .updateTable("subscriptions")
      .set({ token_limit: 150 })
      .where("id", "=", subscription.id)
      .execute()
    expect(await meter.validateAndConsumeTokens(turn(who))).toMatchObject({
      allowed: false,
      reason: "quota_exceeded",
      remainingTokens: 50,
    })
    expect(await meter.validateAndConsumeTokens(turn(who, { estimatedTokens: 50 }))).toMatchObject({
      allowed: true,
      tokenLimit: 150,
      remainingTokens: 0,
    })
  })

  /** A second instance whose context and experiment caches keep an entry 100 ms of the test's clock. */
  const meterWithShortCache = () =>
    new Meter({
      database,
      rateLimiter: new InProcessRateLimiter(clock),
      clock,
      contextCacheTtlMs: 100,
      contextCacheClock: clock,
    })

  it("sees another instance's suspension once the cache's time-to-live has passed", async () => {
    const quick = meterWithShortCache()
    const { who, subscription } = await subscribe()
    expect((await quick.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    await database.db
      .updateTable("subscriptions")
      .set({ status: "suspended" })
      .where("id", "=", subscription.id)
      .execute()
    clock.advance(99)
    // Within the time-to-live the cached context still answers: the documented staleness bound.
    expect((await quick.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    clock.advance(1)
    expect(await quick.validateAndConsumeTokens(turn(who))).toMatchObject({ reason: "subscription_inactive" })
    await quick.close()
  })

  it("refreshes a busy subscription's context in the background, so a change is seen before the TTL ends", async () => {
    const quick = meterWithShortCache()
    const { who, subscription } = await subscribe()
    expect((await quick.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    await database.db
      .updateTable("subscriptions")
      .set({ status: "suspended" })
      .where("id", "=", subscription.id)
      .execute()
    clock.advance(49)
    // Before half the TTL the entry answers and nothing is read.
    expect((await quick.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    clock.advance(1)
    // Past half the TTL the entry still answers this turn, and the read it started applies to a later
    // turn, while the first read would still be within its TTL.
    expect((await quick.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    await vi.waitFor(async () =>
      expect(await quick.validateAndConsumeTokens(turn(who))).toMatchObject({
        reason: "subscription_inactive",
      }),
    )
    await quick.close()
  })

  it("reads a busy subscription's context only once: later turns are answered from memory, renewed by one background query for every busy subscription", async () => {
    // The real database, with every statement's SQL text noted on its way (no query is changed).
    const sweeps = new WeakSet<object>()
    const reads = { single: 0, swept: 0, sweepsDone: 0 }
    const noting: KyselyPlugin = {
      transformQuery: ({ node, queryId }) => {
        const text = node.kind === "RawNode" ? node.sqlFragments.join("?") : ""
        if (text.includes("jsonb_to_recordset")) {
          reads.swept += 1
          sweeps.add(queryId)
        } else if (text.includes("omnimeter_turn_contexts")) reads.single += 1
        return node
      },
      transformResult: async ({ result, queryId }) => {
        if (sweeps.has(queryId)) reads.sweepsDone += 1
        return result
      },
    }
    const observed: Database = {
      kind: database.kind,
      capabilities: database.capabilities,
      db: database.db.withPlugin(noting),
      withTenant: (id, fn) => database.withTenant(id, fn),
      ping: () => database.ping(),
      availability: () => database.availability(),
      close: async () => {},
    }
    const quick = new Meter({
      database: observed,
      rateLimiter: new InProcessRateLimiter(clock),
      clock,
      contextCacheTtlMs: 100,
      contextCacheClock: clock,
    })
    const a = await subscribe()
    const b = await subscribe()
    expect((await quick.validateAndConsumeTokens(turn(a.who))).allowed).toBe(true)
    expect((await quick.validateAndConsumeTokens(turn(b.who))).allowed).toBe(true)
    expect(reads.single).toBe(2)
    // Ten times the TTL of turns on both, one every 30 ms of the cache's clock.
    for (let round = 0; round < 34; round += 1) {
      clock.advance(30)
      expect((await quick.validateAndConsumeTokens(turn(a.who, { channel: "whatsapp" }))).allowed).toBe(true)
      expect((await quick.validateAndConsumeTokens(turn(b.who))).allowed).toBe(true)
      await vi.waitFor(() => expect(reads.sweepsDone).toBe(reads.swept))
    }
    expect(reads.single).toBe(2)
    // One sweep per half TTL (50 ms): every 60 ms here, each reading both subscriptions in one query.
    expect(reads.swept).toBeGreaterThanOrEqual(16)
    expect(reads.swept).toBeLessThanOrEqual(18)
    // And the sweep's reads are used: another instance's suspension is seen within the TTL.
    await database.db
      .updateTable("subscriptions")
      .set({ status: "suspended" })
      .where("id", "=", a.subscription.id)
      .execute()
    for (let round = 0; round < 4; round += 1) {
      clock.advance(30)
      await quick.validateAndConsumeTokens(turn(a.who))
      await vi.waitFor(() => expect(reads.sweepsDone).toBe(reads.swept))
    }
    expect(await quick.validateAndConsumeTokens(turn(a.who))).toMatchObject({
      reason: "subscription_inactive",
    })
    expect(reads.single).toBe(2)
    await quick.close()
  })

  it("sees an experiment another instance started once the TTL has passed, though its subscription had none", async () => {
    const quick = meterWithShortCache()
    const { who, subscription } = await subscribe()
    // The subscription has no running experiment: its turns are in none (and read only the deployment's
    // one list of subscriptions that have one).
    expect((await quick.validateAndConsumeTokens(turn(who))).experiments).toBeUndefined()
    // Another instance (`meter`) starts one.
    const started = await meter.experiments.create(subscription.id, {
      name: "shorter answers",
      channels: ["website"],
      variants: [
        { name: "control", weight: 1 },
        { name: "short", weight: 1, overrides: { tokenMultiplier: 0.5 } },
      ],
      primaryMetric: "tokens_per_turn",
      status: "running",
    })
    clock.advance(99)
    // Within the TTL the list read before the start still answers: the documented staleness bound.
    expect((await quick.validateAndConsumeTokens(turn(who))).experiments).toBeUndefined()
    clock.advance(1)
    const decision = await quick.validateAndConsumeTokens(turn(who))
    expect(decision.experiments?.map((e) => e.id)).toEqual([started.id])
    expect(decision).toMatchObject({
      allowed: true,
      billedTokens: decision.experiments?.[0]?.variant === "short" ? 50 : 100,
    })
    await quick.close()
  })

  it("reads every turn afresh when the cache is off", async () => {
    const uncached = new Meter({
      database,
      rateLimiter: new InProcessRateLimiter(clock),
      clock,
      contextCacheTtlMs: 0,
    })
    const { who, subscription } = await subscribe()
    expect((await uncached.validateAndConsumeTokens(turn(who))).allowed).toBe(true)
    await database.db
      .updateTable("subscriptions")
      .set({ status: "suspended" })
      .where("id", "=", subscription.id)
      .execute()
    expect(await uncached.validateAndConsumeTokens(turn(who))).toMatchObject({
      reason: "subscription_inactive",
    })
    await uncached.close()
  })

  it("reads a subscription once for all its channels, each answered with its own settings", async () => {
    const { who, subscription } = await subscribe()
    await meter.updateChannelConfig(subscription.id, "telegram", { tokenMultiplier: 1.1 })
    expect(await meter.validateAndConsumeTokens(turn(who, { channel: "telegram" }))).toMatchObject({
      allowed: true,
      multiplier: 1.1,
    })
    // Another instance disables whatsapp: straight to the database. The first turn read every channel,
    // so within the time-to-live this meter still answers whatsapp from that read (the staleness bound).
    await database.db
      .insertInto("channel_configurations")
      .values({ subscription_id: subscription.id, channel: "whatsapp", enabled: false })
      .execute()
    const whatsapp = await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp" }))
    expect(whatsapp).toMatchObject({ allowed: true })
    expect(whatsapp.allowed && whatsapp.multiplier).not.toBe(1.1)
    expect(await meter.validateAndConsumeTokens(turn(who, { channel: "telegram" }))).toMatchObject({
      multiplier: 1.1,
    })
    // A change through this meter drops the whole subscription: every channel is read afresh.
    await meter.updateChannelConfig(subscription.id, "telegram", { tokenMultiplier: 1.2 })
    expect(await meter.validateAndConsumeTokens(turn(who, { channel: "whatsapp" }))).toMatchObject({
      reason: "channel_disabled",
    })
  })

  it("does not serve a cached subscription to another subscription's scope", async () => {
    const a = await subscribe()
    const b = await subscribe()
    expect((await meter.validateAndConsumeTokens(turn(b.who))).allowed).toBe(true)
    expect(
      await meter.validateAndConsumeTokens(turn(b.who), { subscriptionId: a.subscription.id }),
    ).toMatchObject({ allowed: false, reason: "subscription_not_found" })
    expect(
      (await meter.validateAndConsumeTokens(turn(b.who), { subscriptionId: b.subscription.id })).allowed,
    ).toBe(true)
  })
})

describe("tenant isolation", () => {
  it("hides another subscription from a subscription's scope, in the service and beneath it", async () => {
    const a = await subscribe()
    const b = await subscribe()
    await meter.validateAndConsumeTokens(turn(b.who))
    await expect(
      meter.getSubscription(b.subscription.id, { subscriptionId: a.subscription.id }),
    ).rejects.toMatchObject({
      code: "subscription_not_found",
    })
    const denied = await meter.validateAndConsumeTokens(turn(b.who), { subscriptionId: a.subscription.id })
    expect(denied).toMatchObject({ allowed: false, reason: "subscription_not_found" })
    const seen = await database.withTenant(a.subscription.id, (trx) =>
      trx.selectFrom("token_usage_logs").select("subscription_id").execute(),
    )
    expect(seen.every((row) => row.subscription_id === a.subscription.id)).toBe(true)
    const counted = await database.withTenant(a.subscription.id, (trx) =>
      trx.selectFrom("subscriptions").select("id").execute(),
    )
    expect(counted.map((row) => row.id)).toEqual([a.subscription.id])
  })

  it("cannot write rows for another subscription even with raw SQL", async () => {
    const a = await subscribe()
    const b = await subscribe()
    const attempt = database.withTenant(a.subscription.id, (trx) =>
      sql`insert into quota_counters (subscription_id, period_start, used_tokens) values (${b.subscription.id}, now(), 1)`.execute(
        trx,
      ),
    )
    await expect(attempt).rejects.toThrow(/row-level security/)
  })

  it("runs the service as a role that row level security applies to", async () => {
    const result = await sql<{ user: string; superuser: boolean; bypass: boolean }>`
      select current_user as user, r.rolsuper as superuser, r.rolbypassrls as bypass
      from pg_roles r where r.rolname = current_user`.execute(database.db)
    expect(result.rows[0]).toEqual({ user: "omnimeter_app", superuser: false, bypass: false })
  })
})
