/**
 * The partitioned ledger (migration 0007): monthly partitions, the default partition, settlement and
 * idempotency across months, retention, and the migration of an existing ledger. Every expectation is read
 * back from the catalog, the ledger, the key table, the counters and the rollups.
 */
import { randomUUID } from "node:crypto"
import { PGlite } from "@electric-sql/pglite"
import { Kysely, type Migration, type MigrationProvider, Migrator, PostgresDialect, sql } from "kysely"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createScratchPostgres,
  openTestDatabase,
  scratchPool,
  testEngine,
} from "../../test/support/database.js"
import { uuidV7 } from "../core/ids.js"
import type { Database } from "./database.js"
import { type BatchTurn, consumeBatch, type ImportedTurn, insertImportedTurns, settleTurn } from "./ledger.js"
import { migrateToLatest, SqlFileMigrationProvider } from "./migrator.js"
import {
  dropExpiredLedgerPartitions,
  ensureLedgerPartitions,
  LedgerMaintenanceJob,
  listLedgerPartitions,
} from "./partitions.js"
import { PGliteDialect } from "./pglite-dialect.js"
import type { DB } from "./schema.js"
import { insertSubscription } from "./subscriptions.js"

let database: Database

beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => {
  await database.close()
})

async function subscription(db: Kysely<DB> = database.db): Promise<string> {
  const created = await insertSubscription(db, {
    entityId: `partition-${randomUUID()}`,
    entityType: "organization",
    plan: "enterprise",
    tokenLimit: 1_000_000,
    timezone: "UTC",
    periodAnchor: new Date("2020-01-01T00:00:00Z"),
  })
  return created.id
}

/** The UTC month start of an instant: these tests charge each turn to its calendar month. */
function monthOf(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1))
}

function turn(subscriptionId: string, at: string, overrides: Partial<BatchTurn> = {}): BatchTurn {
  const createdAt = new Date(at)
  return {
    id: uuidV7((overrides.createdAt ?? createdAt).getTime()),
    subscriptionId,
    channel: "website",
    chatbotId: "bot",
    sessionId: "s",
    userIdentifier: "u",
    operationType: "chat",
    estimatedTokens: 10,
    multiplierHundredths: 100,
    messageLength: 10,
    idempotencyKey: null,
    createdAt,
    billedTokens: 10,
    periodStart: monthOf(createdAt),
    scope: null,
    denialReason: null,
    priority: 5,
    ...overrides,
  }
}

function imported(subscriptionId: string, at: string, overrides: Partial<ImportedTurn> = {}): ImportedTurn {
  const createdAt = new Date(at)
  return {
    subscriptionId,
    channel: "api",
    chatbotId: null,
    sessionId: null,
    userIdentifier: "importer",
    operationType: "chat",
    rawTokens: 7,
    billedTokens: 7,
    multiplierHundredths: 100,
    idempotencyKey: null,
    createdAt,
    periodStart: monthOf(createdAt),
    ...overrides,
  }
}

async function allowedId(db: Kysely<DB>, t: BatchTurn): Promise<string> {
  const [outcome] = await consumeBatch(db, [t])
  if (outcome?.kind !== "allowed") throw new Error(`expected an allowed turn, got ${outcome?.kind}`)
  return outcome.usageId
}

/** The partition (table name) holding a ledger row. */
async function partitionOf(db: Kysely<DB>, usageId: string): Promise<string | undefined> {
  const result = await sql<{ part: string }>`
    select tableoid::regclass::text as part from token_usage_logs where id = ${usageId}`.execute(db)
  return result.rows[0]?.part
}

async function counter(db: Kysely<DB>, subscriptionId: string, periodStart: Date): Promise<number> {
  const row = await db
    .selectFrom("quota_counters")
    .select("used_tokens")
    .where("subscription_id", "=", subscriptionId)
    .where("period_start", "=", periodStart)
    .executeTakeFirst()
  return Number(row?.used_tokens ?? 0)
}

async function rollups(db: Kysely<DB>, subscriptionId: string) {
  const buckets = await db
    .selectFrom("channel_usage_buckets")
    .select(["bucket_start", "channel", "denial_reason", "turn_count", "tokens_used", "raw_tokens"])
    .where("subscription_id", "=", subscriptionId)
    .orderBy("bucket_start")
    .orderBy("channel")
    .orderBy("denial_reason")
    .execute()
  const users = await db
    .selectFrom("channel_user_days")
    .select(["year", "channel", "user_identifier", sql<string>`days::text`.as("days")])
    .where("subscription_id", "=", subscriptionId)
    .orderBy("year")
    .orderBy("channel")
    .orderBy("user_identifier")
    .execute()
  return { buckets: buckets.map((b) => ({ ...b, bucket_start: b.bucket_start.toISOString() })), users }
}

describe("the partitioned ledger", () => {
  it("creates the current month's partition and the next two at migration, beside a default partition", async () => {
    const names = (await listLedgerPartitions(database.db)).map((p) => p.name)
    const now = new Date()
    for (let ahead = 0; ahead <= 2; ahead += 1) {
      const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + ahead, 1))
      const name = `token_usage_logs_p${month.getUTCFullYear()}${String(month.getUTCMonth() + 1).padStart(2, "0")}`
      expect(names).toContain(name)
    }
    expect(names).toContain("token_usage_logs_default")
    const policies = await sql<{ n: number }>`
      select count(*)::int as n from pg_policies where tablename = 'token_usage_logs'`.execute(database.db)
    expect(policies.rows[0]?.n).toBe(1)
  })

  it("puts each row in the partition of its UTC month, to the millisecond at the boundary", async () => {
    expect(await ensureLedgerPartitions(database.db, new Date("2031-03-10T00:00:00Z"))).toBe(3)
    // A second pass finds everything in place.
    expect(await ensureLedgerPartitions(database.db, new Date("2031-03-10T00:00:00Z"))).toBe(0)
    const sub = await subscription()
    const march = await allowedId(database.db, turn(sub, "2031-03-31T23:59:59.999Z"))
    const april = await allowedId(database.db, turn(sub, "2031-04-01T00:00:00.000Z"))
    expect(await partitionOf(database.db, march)).toBe("token_usage_logs_p203103")
    expect(await partitionOf(database.db, april)).toBe("token_usage_logs_p203104")
  })

  it("sends a row of a month without a partition to the default partition, and maintenance moves it to its own", async () => {
    const sub = await subscription()
    const written = await insertImportedTurns(database.db, [
      imported(sub, "2019-06-15T10:00:00Z", { idempotencyKey: "old-import" }),
      imported(sub, "2090-01-02T10:00:00Z"),
    ])
    expect(written).toBe(2)
    const ids = await database.db
      .selectFrom("token_usage_logs")
      .select(["id", "created_at"])
      .where("subscription_id", "=", sub)
      .orderBy("created_at")
      .execute()
    const [past, future] = ids
    if (!past || !future) throw new Error("rows missing")
    expect(await partitionOf(database.db, past.id)).toBe("token_usage_logs_default")
    expect(await partitionOf(database.db, future.id)).toBe("token_usage_logs_default")
    const before = await rollups(database.db, sub)

    const created = await ensureLedgerPartitions(database.db, new Date("2031-03-10T00:00:00Z"))
    expect(created).toBe(2)
    expect(await partitionOf(database.db, past.id)).toBe("token_usage_logs_p201906")
    expect(await partitionOf(database.db, future.id)).toBe("token_usage_logs_p209001")
    const inDefault = await sql<{
      n: number
    }>`select count(*)::int as n from token_usage_logs where tableoid = 'token_usage_logs_default'::regclass`.execute(
      database.db,
    )
    expect(inDefault.rows[0]?.n).toBe(0)
    // Moving rows between partitions is not a new turn: the rollups count each row once still.
    expect(await rollups(database.db, sub)).toEqual(before)
    expect(before.buckets.map((b) => b.turn_count)).toEqual([1, 1])
    // The moved row keeps its key.
    expect(
      await insertImportedTurns(database.db, [
        imported(sub, "2031-03-02T00:00:00Z", { idempotencyKey: "old-import" }),
      ]),
    ).toBe(0)
  })

  it("settles rows of different months by id and moves each month's counter", async () => {
    const sub = await subscription()
    const march = await allowedId(database.db, turn(sub, "2031-03-20T12:00:00Z"))
    const may = await allowedId(database.db, turn(sub, "2031-05-20T12:00:00Z"))
    const old = await allowedId(database.db, turn(sub, "2019-06-20T12:00:00Z"))
    for (const [usageId, actual] of [
      [march, 25],
      [may, 4],
      [old, 13],
    ] as const) {
      const outcome = await settleTurn(database.db, {
        usageId,
        actualTokens: actual,
        settledAt: new Date("2031-06-01T00:00:00Z"),
        outcome: "ok",
        latencyMs: 5,
      })
      expect(outcome.kind).toBe("settled")
    }
    expect(await counter(database.db, sub, new Date("2031-03-01T00:00:00Z"))).toBe(25)
    expect(await counter(database.db, sub, new Date("2031-05-01T00:00:00Z"))).toBe(4)
    expect(await counter(database.db, sub, new Date("2019-06-01T00:00:00Z"))).toBe(13)
    const again = await settleTurn(database.db, {
      usageId: may,
      actualTokens: 99,
      settledAt: new Date("2031-06-01T00:00:00Z"),
      outcome: "ok",
      latencyMs: 5,
    })
    expect(again.kind).toBe("already_settled")
    const missing = await settleTurn(database.db, {
      usageId: randomUUID(),
      actualTokens: 1,
      settledAt: new Date("2031-06-01T00:00:00Z"),
      outcome: null,
      latencyMs: null,
    })
    expect(missing.kind).toBe("not_found")
    const rollup = await rollups(database.db, sub)
    expect(rollup.buckets.map((b) => b.tokens_used)).toEqual([13, 25, 4])
  })

  it("keeps an idempotency key unique per subscription across months, in live turns and imports", async () => {
    const sub = await subscription()
    const other = await subscription()
    await allowedId(database.db, turn(sub, "2031-03-15T00:00:00Z", { idempotencyKey: "k-1" }))
    const [retry] = await consumeBatch(database.db, [
      turn(sub, "2031-04-15T00:00:00Z", { idempotencyKey: "k-1" }),
    ])
    expect(retry?.kind).toBe("duplicate")
    // Within one batch across two months, and through the exact per-turn path (a denial in the batch).
    const batch = await consumeBatch(database.db, [
      turn(sub, "2031-03-16T00:00:00Z", { idempotencyKey: "k-2" }),
      turn(sub, "2031-05-16T00:00:00Z", { idempotencyKey: "k-2" }),
      turn(sub, "2031-05-16T00:00:00Z", { denialReason: "rate_limited", idempotencyKey: "k-3" }),
    ])
    expect(batch.map((o) => o.kind)).toEqual(["allowed", "duplicate", "denied"])
    expect(
      await insertImportedTurns(database.db, [
        imported(sub, "2031-05-01T00:00:00Z", { idempotencyKey: "k-1" }),
        imported(sub, "2031-04-01T00:00:00Z", { idempotencyKey: "k-3" }),
      ]),
    ).toBe(1)
    // Another subscription's key space is its own.
    await allowedId(database.db, turn(other, "2031-04-15T00:00:00Z", { idempotencyKey: "k-1" }))
    const charged = await database.db
      .selectFrom("token_usage_logs")
      .select(["idempotency_key", "status"])
      .where("subscription_id", "=", sub)
      .where("status", "<>", "denied")
      .orderBy("idempotency_key")
      .execute()
    expect(charged.map((r) => r.idempotency_key)).toEqual(["k-1", "k-2", "k-3"])
    const keys = await database.db
      .selectFrom("usage_idempotency_keys")
      .select(["idempotency_key"])
      .where("subscription_id", "=", sub)
      .orderBy("idempotency_key")
      .execute()
    expect(keys.map((k) => k.idempotency_key)).toEqual(["k-1", "k-2", "k-3"])
    expect(await counter(database.db, sub, new Date("2031-03-01T00:00:00Z"))).toBe(20)
    expect(await counter(database.db, sub, new Date("2031-04-01T00:00:00Z"))).toBe(7)
  })

  it("hides other subscriptions' keys and rows from a subscription's transaction", async () => {
    const sub = await subscription()
    const other = await subscription()
    await allowedId(database.db, turn(other, "2031-03-15T00:00:00Z", { idempotencyKey: "secret" }))
    const seen = await database.withTenant(sub, async (trx) => ({
      keys: await trx.selectFrom("usage_idempotency_keys").select("idempotency_key").execute(),
      rows: await trx.selectFrom("token_usage_logs").select("id").execute(),
    }))
    expect(seen).toEqual({ keys: [], rows: [] })
    // The service's role reaches the ledger only through the parent (and its policy), not a partition.
    await expect(sql`select count(*) from token_usage_logs_p203103`.execute(database.db)).rejects.toThrow(
      /permission denied/,
    )
  })

  it("retention drops exactly the months older than it, with their keys, and keeps rollups and counters", async () => {
    const now = new Date("2040-03-20T00:00:00Z")
    await ensureLedgerPartitions(database.db, new Date("2040-01-05T00:00:00Z"))
    const sub = await subscription()
    const january = await allowedId(database.db, turn(sub, "2040-01-31T23:00:00Z", { idempotencyKey: "jan" }))
    const february = await allowedId(
      database.db,
      turn(sub, "2040-02-01T00:00:00Z", { idempotencyKey: "feb" }),
    )
    const march = await allowedId(database.db, turn(sub, "2040-03-19T00:00:00Z", { idempotencyKey: "mar" }))
    // A row in the default partition, older than the retention (maintenance has not moved it yet).
    expect(
      await insertImportedTurns(database.db, [
        imported(sub, "2039-07-01T00:00:00Z", { idempotencyKey: "jul" }),
      ]),
    ).toBe(1)
    const before = await rollups(database.db, sub)
    const namesBefore = (await listLedgerPartitions(database.db)).map((p) => p.name)
    // keep one full month before the current one: February and March stay, January and older go.
    const expectedGone = namesBefore.filter(
      (n) => /^token_usage_logs_p\d{6}$/.test(n) && n < "token_usage_logs_p204002",
    )
    expect(expectedGone).toContain("token_usage_logs_p204001")
    expect(expectedGone).toContain("token_usage_logs_p203103")

    const dropped = await dropExpiredLedgerPartitions(database.db, 1, now)
    expect(dropped).toBe(expectedGone.length)
    const namesAfter = (await listLedgerPartitions(database.db)).map((p) => p.name)
    expect(namesAfter).toEqual(namesBefore.filter((n) => !expectedGone.includes(n)))
    expect(namesAfter).toEqual(
      expect.arrayContaining([
        "token_usage_logs_default",
        "token_usage_logs_p204002",
        "token_usage_logs_p204003",
      ]),
    )

    expect(await partitionOf(database.db, january)).toBeUndefined()
    expect(await partitionOf(database.db, february)).toBe("token_usage_logs_p204002")
    expect(await partitionOf(database.db, march)).toBe("token_usage_logs_p204003")
    const left = await database.db
      .selectFrom("usage_idempotency_keys")
      .select("idempotency_key")
      .where("subscription_id", "=", sub)
      .orderBy("idempotency_key")
      .execute()
    expect(left.map((k) => k.idempotency_key)).toEqual(["feb", "mar"])
    // Analytics of the dropped months stays: the rollups and the counters are untouched.
    expect(await rollups(database.db, sub)).toEqual(before)
    expect(await counter(database.db, sub, new Date("2040-01-01T00:00:00Z"))).toBe(10)
    expect(await counter(database.db, sub, new Date("2039-07-01T00:00:00Z"))).toBe(7)
    // A kept month's key still deduplicates; a dropped month's key is free again.
    const [feb] = await consumeBatch(database.db, [
      turn(sub, "2040-03-19T01:00:00Z", { idempotencyKey: "feb" }),
    ])
    expect(feb?.kind).toBe("duplicate")
    const [jan] = await consumeBatch(database.db, [
      turn(sub, "2040-03-19T01:00:00Z", { idempotencyKey: "jan" }),
    ])
    expect(jan?.kind).toBe("allowed")
    // Nothing more to drop on a second pass; and a retention under one month is refused.
    expect(await dropExpiredLedgerPartitions(database.db, 1, now)).toBe(0)
    await expect(dropExpiredLedgerPartitions(database.db, 0, now)).rejects.toThrow(RangeError)
  })

  it("the maintenance job creates the months ahead and applies the retention in one pass", async () => {
    const job = new LedgerMaintenanceJob({
      database,
      clock: { now: () => Date.parse("2040-06-10T00:00:00Z") },
      retentionMonths: 2,
    })
    // Creates June, July and August; drops February and March (ended before April = June - 2 months).
    expect(await job.runOnce()).toBe(5)
    const names = (await listLedgerPartitions(database.db)).map((p) => p.name)
    expect(names).toEqual(
      expect.arrayContaining([
        "token_usage_logs_p204006",
        "token_usage_logs_p204007",
        "token_usage_logs_p204008",
      ]),
    )
    expect(names).not.toContain("token_usage_logs_p204002")
    expect(names).not.toContain("token_usage_logs_p204003")
    const off = new LedgerMaintenanceJob({
      database,
      clock: { now: () => Date.parse("2040-06-10T00:00:00Z") },
      retentionMonths: 0,
    })
    expect(await off.runOnce()).toBe(0)
    expect((await listLedgerPartitions(database.db)).map((p) => p.name)).toEqual(names)
  })
})

/** Only the migrations up to and including `last`. */
class MigrationsUpTo implements MigrationProvider {
  constructor(private readonly last: string) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    const all = await new SqlFileMigrationProvider().getMigrations()
    return Object.fromEntries(Object.entries(all).filter(([name]) => name <= this.last))
  }
}

async function ownerDatabase(): Promise<{ db: Kysely<DB>; close: () => Promise<void> }> {
  if (testEngine === "pglite") {
    const pglite = new PGlite(undefined, { parsers: { 20: (value: string) => Number(value) } })
    const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) })
    return { db, close: () => db.destroy() }
  }
  const scratch = await createScratchPostgres()
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format ?? "text"),
  }
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({ pool: scratchPool({ connectionString: scratch.url, max: 2, types }) }),
  })
  return {
    db,
    close: async () => {
      await db.destroy()
      await scratch.drop()
    },
  }
}

describe("migration 0007 on an existing ledger", () => {
  it("moves every row into its month's partition with its key, keeping rollups, settlement and idempotency", async () => {
    const owner = await ownerDatabase()
    try {
      const result = await new Migrator({
        db: owner.db as Kysely<unknown>,
        provider: new MigrationsUpTo("0006_alerts"),
      }).migrateToLatest()
      expect(result.error).toBeUndefined()
      const db = owner.db
      const sub = await subscription(db)
      const outcomes = await consumeBatch(db, [
        turn(sub, "2025-09-10T00:00:00Z", { idempotencyKey: "sept" }),
        turn(sub, "2025-10-31T23:59:59Z"),
        turn(sub, "2026-11-01T00:00:00Z", { idempotencyKey: "nov" }),
        turn(sub, "2026-11-02T00:00:00Z", { denialReason: "rate_limited", idempotencyKey: "denied-key" }),
      ])
      expect(outcomes.map((o) => o.kind)).toEqual(["allowed", "allowed", "allowed", "denied"])
      const [sept] = outcomes
      if (sept?.kind !== "allowed") throw new Error("expected an allowed turn")
      const before = await db.selectFrom("token_usage_logs").selectAll().orderBy("id").execute()
      const rollupsBefore = await rollups(db, sub)

      await migrateToLatest(db as Kysely<unknown>)

      const after = await db.selectFrom("token_usage_logs").selectAll().orderBy("id").execute()
      expect(after).toEqual(before)
      const parts = await sql<{ created_at: Date; part: string }>`
        select created_at, tableoid::regclass::text as part from token_usage_logs order by created_at`.execute(
        db,
      )
      expect(parts.rows.map((r) => r.part)).toEqual([
        "token_usage_logs_p202509",
        "token_usage_logs_p202510",
        "token_usage_logs_p202611",
        "token_usage_logs_p202611",
      ])
      const keys = await db
        .selectFrom("usage_idempotency_keys")
        .select(["idempotency_key", "usage_id"])
        .orderBy("idempotency_key")
        .execute()
      expect(keys.map((k) => k.idempotency_key)).toEqual(["nov", "sept"])
      expect(keys.find((k) => k.idempotency_key === "sept")?.usage_id).toBe(sept.usageId)
      expect(await rollups(db, sub)).toEqual(rollupsBefore)

      // The triggers are back on the new table: a new turn reaches the rollups; a retry is a duplicate.
      const [retry] = await consumeBatch(db, [turn(sub, "2026-11-03T00:00:00Z", { idempotencyKey: "sept" })])
      expect(retry?.kind).toBe("duplicate")
      const [denied] = await consumeBatch(db, [
        turn(sub, "2026-11-03T00:00:00Z", { idempotencyKey: "denied-key" }),
      ])
      expect(denied?.kind).toBe("allowed")
      const settled = await settleTurn(db, {
        usageId: sept.usageId,
        actualTokens: 30,
        settledAt: new Date("2026-11-03T00:00:00Z"),
        outcome: "ok",
        latencyMs: 1,
      })
      expect(settled.kind).toBe("settled")
      const rollupsAfter = await rollups(db, sub)
      const turns = rollupsAfter.buckets.reduce((sum, b) => sum + Number(b.turn_count), 0)
      const tokens = rollupsAfter.buckets.reduce((sum, b) => sum + Number(b.tokens_used), 0)
      expect(turns).toBe(5)
      // 30 (settled) + 10 + 10 + 0 (denied) + 10
      expect(tokens).toBe(60)
    } finally {
      await owner.close()
    }
  })
})
