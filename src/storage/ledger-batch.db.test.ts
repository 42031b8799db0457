/**
 * Group commit at the storage seam: `consumeBatch` decides many turns in one statement. Every expectation is
 * recomputed from the ledger rows and counters the statement left behind.
 */
import { randomUUID } from "node:crypto"
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, testEngine } from "../../test/support/database.js"
import { uuidV7 } from "../core/ids.js"
import type { Database } from "./database.js"
import { GroupCommitter } from "./group-commit.js"
import { type BatchOutcome, type BatchTurn, consumeBatch, findBatchOutcomes } from "./ledger.js"
import { insertSubscription } from "./subscriptions.js"

let database: Database
const PERIOD = new Date("2026-03-01T00:00:00Z")

beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => {
  await database.close()
})

async function subscription(tokenLimit: number): Promise<string> {
  const created = await insertSubscription(database.db, {
    entityId: `batch-${randomUUID()}`,
    entityType: "organization",
    plan: "enterprise",
    tokenLimit,
    timezone: "UTC",
    periodAnchor: PERIOD,
  })
  return created.id
}

function charge(subscriptionId: string, billed: number, overrides: Partial<BatchTurn> = {}): BatchTurn {
  return {
    id: uuidV7((overrides.createdAt ?? new Date("2026-03-10T00:00:00Z")).getTime()),
    subscriptionId,
    channel: "website",
    chatbotId: "bot",
    sessionId: "s",
    userIdentifier: "u",
    operationType: "chat",
    estimatedTokens: billed,
    multiplierHundredths: 100,
    messageLength: 10,
    idempotencyKey: null,
    createdAt: new Date("2026-03-10T00:00:00Z"),
    billedTokens: billed,
    periodStart: PERIOD,
    scope: null,
    denialReason: null,
    priority: 5,
    ...overrides,
  }
}

async function state(subscriptionId: string) {
  const rows = await database.db
    .selectFrom("token_usage_logs")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .execute()
  const counter = await database.db
    .selectFrom("quota_counters")
    .select("used_tokens")
    .where("subscription_id", "=", subscriptionId)
    .executeTakeFirst()
  const charged = rows.filter((r) => r.status !== "denied")
  return {
    counter: Number(counter?.used_tokens ?? 0),
    ledgerSum: charged.reduce((sum, r) => sum + Number(r.billed_tokens), 0),
    charged: charged.length,
    denials: rows.filter((r) => r.status === "denied").map((r) => r.denial_reason),
  }
}

const kinds = (outcomes: BatchOutcome[]) => outcomes.map((o) => o.kind)

describe("a group-commit batch", () => {
  it("charges a batch mixing subscriptions each to its own counter, in one statement", async () => {
    const a = await subscription(1_000)
    const b = await subscription(1_000)
    const c = await subscription(1_000)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100),
      charge(b, 200),
      charge(a, 50),
      charge(c, 300),
      charge(b, 1),
    ])
    expect(kinds(outcomes)).toEqual(["allowed", "allowed", "allowed", "allowed", "allowed"])
    expect(await state(a)).toMatchObject({ counter: 150, ledgerSum: 150, charged: 2 })
    expect(await state(b)).toMatchObject({ counter: 201, ledgerSum: 201, charged: 2 })
    expect(await state(c)).toMatchObject({ counter: 300, ledgerSum: 300, charged: 1 })
    // Each answer reports the counter as it stood right after that turn, in arrival order.
    expect(outcomes[0]).toMatchObject({ usedTokens: 100, tokenLimit: 1_000 })
    expect(outcomes[2]).toMatchObject({ usedTokens: 150 })
    expect(outcomes[4]).toMatchObject({ usedTokens: 201 })
  })

  it("decides turn by turn in arrival order when the quota runs out mid-batch", async () => {
    const a = await subscription(250)
    const b = await subscription(1_000)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100),
      charge(b, 400),
      charge(a, 100),
      charge(a, 100),
      charge(a, 50),
      charge(a, 1),
    ])
    // 100 + 100 = 200; the third 100 would make 300 > 250: denied; 50 still fits (250); then nothing does.
    expect(kinds(outcomes)).toEqual([
      "allowed",
      "allowed",
      "allowed",
      "quota_exceeded",
      "allowed",
      "quota_exceeded",
    ])
    expect(outcomes[3]).toMatchObject({ usedTokens: 200, tokenLimit: 250 })
    expect(outcomes[4]).toMatchObject({ usedTokens: 250 })
    expect(await state(a)).toEqual({
      counter: 250,
      ledgerSum: 250,
      charged: 3,
      denials: ["quota_exceeded", "quota_exceeded"],
    })
    expect(await state(b)).toMatchObject({ counter: 400, ledgerSum: 400 })
  })

  it("answers a batch mixing plain groups with keyed, denied and out-of-scope turns as if each ran alone", async () => {
    const plain = await subscription(1_000)
    const keyed = await subscription(1_000)
    const tight = await subscription(120)
    const other = await subscription(1_000)
    const batch = [
      charge(plain, 300),
      charge(keyed, 10, { idempotencyKey: "k-1" }),
      charge(tight, 100),
      charge(plain, 200),
      charge(other, 5, { denialReason: "rate_limited" }),
      charge(keyed, 20),
      charge(tight, 30),
      charge(other, 7, { scope: plain }),
      charge(plain, 1),
    ]
    const outcomes = await consumeBatch(database.db, batch)
    // The oracle: each turn alone, in arrival order, against its own running counter.
    const used = new Map<string, number>()
    const limits = new Map([
      [plain, 1_000],
      [keyed, 1_000],
      [tight, 120],
      [other, 1_000],
    ])
    const expected = batch.map((t) => {
      if (t.scope !== null && t.scope !== t.subscriptionId) return { kind: "not_found" }
      if (t.denialReason !== null) return { kind: "denied" }
      const before = used.get(t.subscriptionId) ?? 0
      const limit = limits.get(t.subscriptionId) ?? 0
      if (before + t.billedTokens > limit) return { kind: "quota_exceeded", usedTokens: before }
      used.set(t.subscriptionId, before + t.billedTokens)
      return { kind: "allowed", usedTokens: before + t.billedTokens, tokenLimit: limit }
    })
    expect(outcomes).toMatchObject(expected)
    for (const id of [plain, keyed, tight]) {
      const after = await state(id)
      expect(after.counter).toBe(used.get(id))
      expect(after.ledgerSum).toBe(used.get(id))
    }
    expect(await state(tight)).toMatchObject({ charged: 1, denials: ["quota_exceeded"] })
    expect(await state(other)).toMatchObject({ counter: 0, charged: 0, denials: ["rate_limited"] })
  })

  it("charges a key once when it appears several times in one batch", async () => {
    const a = await subscription(10_000)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100, { idempotencyKey: "wamid.7" }),
      charge(a, 100, { idempotencyKey: "wamid.7" }),
      charge(a, 70),
      charge(a, 100, { idempotencyKey: "wamid.7" }),
    ])
    expect(kinds(outcomes)).toEqual(["allowed", "duplicate", "allowed", "duplicate"])
    expect(await state(a)).toMatchObject({ counter: 170, ledgerSum: 170, charged: 2 })
  })

  it("answers duplicate for a key an earlier batch charged, and charges the rest", async () => {
    const a = await subscription(10_000)
    await consumeBatch(database.db, [charge(a, 100, { idempotencyKey: "k1" })])
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100, { idempotencyKey: "k1" }),
      charge(a, 100, { idempotencyKey: "k2" }),
    ])
    expect(kinds(outcomes)).toEqual(["duplicate", "allowed"])
    expect(await state(a)).toMatchObject({ counter: 200, ledgerSum: 200, charged: 2 })
  })

  it("lets a key denied by quota earlier in the batch be charged by a later twin that fits", async () => {
    const a = await subscription(150)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100),
      charge(a, 100, { idempotencyKey: "retry" }),
      charge(a, 50, { idempotencyKey: "retry" }),
    ])
    expect(kinds(outcomes)).toEqual(["allowed", "quota_exceeded", "allowed"])
    expect(await state(a)).toMatchObject({ counter: 150, ledgerSum: 150, charged: 2 })
  })

  it("charges a key once when concurrent batches carry it", async () => {
    const a = await subscription(1_000_000)
    const batches = Array.from({ length: 6 }, (_, n) =>
      consumeBatch(database.db, [charge(a, 10 + n), charge(a, 100, { idempotencyKey: "shared" })]),
    )
    const outcomes = (await Promise.all(batches)).map((o) => o[1]?.kind)
    expect(outcomes.filter((k) => k === "allowed")).toHaveLength(1)
    expect(outcomes.filter((k) => k === "duplicate")).toHaveLength(5)
    const expected = 100 + [10, 11, 12, 13, 14, 15].reduce((s, n) => s + n, 0)
    expect(await state(a)).toMatchObject({ counter: expected, ledgerSum: expected, charged: 7 })
  })

  it.skipIf(testEngine === "pglite")(
    "gives the charge back when a twin key commits in another transaction while this batch waits",
    async () => {
      const a = await subscription(1_000_000)
      const first = charge(a, 100, { idempotencyKey: "twin" })
      // Another instance's batch: it holds the counter row lock and an uncommitted row with the key.
      const other = await database.db.connection().execute(async (connection) => {
        await sql`begin`.execute(connection)
        await consumeBatch(connection, [first])
        const waiting = consumeBatch(database.db, [charge(a, 40), charge(a, 100, { idempotencyKey: "twin" })])
        await new Promise((resolve) => setTimeout(resolve, 300))
        await sql`commit`.execute(connection)
        return waiting
      })
      expect(kinds(other)).toEqual(["allowed", "duplicate"])
      expect(other[0]).toMatchObject({ usedTokens: 140 })
      expect(await state(a)).toMatchObject({ counter: 140, ledgerSum: 140, charged: 2 })
    },
  )

  it("records denials given before the quota, and charges nothing for them", async () => {
    const a = await subscription(1_000)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100, { denialReason: "rate_limited" }),
      charge(a, 100),
      charge(a, 100, { denialReason: "channel_disabled" }),
    ])
    expect(kinds(outcomes)).toEqual(["denied", "allowed", "denied"])
    expect(await state(a)).toEqual({
      counter: 100,
      ledgerSum: 100,
      charged: 1,
      denials: expect.arrayContaining(["rate_limited", "channel_disabled"]),
    })
  })

  it("writes every turn, charge or denial, under the id it was given, whose time is its created_at", async () => {
    const a = await subscription(150)
    const turns = [
      charge(a, 100),
      charge(a, 100, { idempotencyKey: "wamid.ids" }),
      charge(a, 40, { denialReason: "rate_limited" }),
      charge(a, 50),
    ]
    expect(kinds(await consumeBatch(database.db, turns))).toEqual([
      "allowed",
      "quota_exceeded",
      "denied",
      "allowed",
    ])
    const rows = await sql<{ id: string; status: string; same_time: boolean }>`
      select id, status, omnimeter_uuid7_time(id) = created_at as same_time from token_usage_logs
      where subscription_id = ${a}
    `.execute(database.db)
    expect(new Set(rows.rows.map((r) => r.id))).toEqual(new Set(turns.map((t) => t.id)))
    expect(rows.rows.every((r) => r.same_time)).toBe(true)
  })

  it("refuses a turn without an id, writing nothing", async () => {
    const a = await subscription(1_000)
    await expect(
      consumeBatch(database.db, [charge(a, 100, { id: null as unknown as string })]),
    ).rejects.toThrow(/every turn needs its id/)
    expect(await state(a)).toEqual({ counter: 0, ledgerSum: 0, charged: 0, denials: [] })
  })

  it("reads back what a batch decided by the turns' ids, and nothing for turns it did not write", async () => {
    const a = await subscription(250)
    await consumeBatch(database.db, [charge(a, 10, { idempotencyKey: "wamid.before" })])
    const turns = [
      charge(a, 100),
      charge(a, 200),
      charge(a, 30, { denialReason: "channel_disabled" }),
      charge(a, 10, { idempotencyKey: "wamid.before" }),
      charge(randomUUID(), 10),
    ]
    const decided = await consumeBatch(database.db, turns)
    expect(kinds(decided)).toEqual(["allowed", "quota_exceeded", "denied", "duplicate", "not_found"])
    const neverRun = charge(a, 5)
    const found = await findBatchOutcomes(database.db, [...turns, neverRun])
    expect(found).toEqual([
      { kind: "allowed", usageId: turns[0]?.id, usedTokens: 110, tokenLimit: 250 },
      { kind: "quota_exceeded", usedTokens: 110, tokenLimit: 250, reserved: false },
      { kind: "denied" },
      undefined, // a duplicate writes no row; run again, it is a duplicate again
      undefined,
      undefined,
    ])
    // Run again with the same ids, the turns without a row change nothing; a charged one cannot be charged again.
    expect(
      kinds(
        await consumeBatch(
          database.db,
          [turns[3], turns[4]].flatMap((t) => (t ? [t] : [])),
        ),
      ),
    ).toEqual(["duplicate", "not_found"])
    await expect(
      consumeBatch(
        database.db,
        [turns[0]].flatMap((t) => (t ? [t] : [])),
      ),
    ).rejects.toMatchObject({
      code: "23505",
    })
    expect(await state(a)).toMatchObject({ counter: 110, ledgerSum: 110, charged: 2 })
  })

  it("answers a keyed denial whose twin was charged as a duplicate, and records no denial", async () => {
    const a = await subscription(100)
    expect(
      kinds(await consumeBatch(database.db, [charge(a, 100, { idempotencyKey: "wamid.twin" })])),
    ).toEqual(["allowed"])
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100, { idempotencyKey: "wamid.twin", denialReason: "rate_limited" }),
      charge(a, 100, { idempotencyKey: "wamid.twin" }),
      charge(a, 100, { idempotencyKey: "wamid.other", denialReason: "rate_limited" }),
      charge(a, 100, { idempotencyKey: "wamid.other" }),
    ])
    expect(kinds(outcomes)).toEqual(["duplicate", "duplicate", "denied", "quota_exceeded"])
    expect(await state(a)).toEqual({
      counter: 100,
      ledgerSum: 100,
      charged: 1,
      denials: expect.arrayContaining(["rate_limited", "quota_exceeded"]),
    })
    // The probe leaves no key behind for a turn it denied.
    const keys = await sql<{ key: string }>`
      select idempotency_key as key from usage_idempotency_keys where subscription_id = ${a}
    `.execute(database.db)
    expect(keys.rows.map((r) => r.key)).toEqual(["wamid.twin"])
  })

  it("answers not_found for a turn outside its scope or of an unknown subscription, writing nothing", async () => {
    const a = await subscription(1_000)
    const b = await subscription(1_000)
    const outcomes = await consumeBatch(database.db, [
      charge(a, 100, { scope: b }),
      charge(randomUUID(), 100),
      charge(b, 100, { scope: b }),
    ])
    expect(kinds(outcomes)).toEqual(["not_found", "not_found", "allowed"])
    expect(await state(a)).toEqual({ counter: 0, ledgerSum: 0, charged: 0, denials: [] })
  })

  it("does not let a failing turn fail its batch-mates", async () => {
    const a = await subscription(10_000)
    const committer = new GroupCommitter((turns: BatchTurn[]) => consumeBatch(database.db, turns))
    const results = await Promise.allSettled([
      committer.submit(charge(a, 100)),
      // A negative estimate breaks a CHECK constraint: the batch statement fails as a whole.
      committer.submit(charge(a, -5)),
      committer.submit(charge(a, 200)),
    ])
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"])
    expect(await state(a)).toMatchObject({ counter: 300, ledgerSum: 300, charged: 2 })
  })

  it("never grants past the limit when many batches race on one subscription", async () => {
    const a = await subscription(10_000)
    const committer = new GroupCommitter((turns: BatchTurn[]) => consumeBatch(database.db, turns), {
      maxBatch: 16,
      maxInFlight: 4,
    })
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, (_, n) => committer.submit(charge(a, 37 + (n % 29)))),
    )
    const granted = outcomes.reduce((sum, o, n) => sum + (o.kind === "allowed" ? 37 + (n % 29) : 0), 0)
    expect(granted).toBeLessThanOrEqual(10_000)
    expect(granted).toBeGreaterThan(10_000 - 66)
    expect(await state(a)).toMatchObject({ counter: granted, ledgerSum: granted })
  })
})
