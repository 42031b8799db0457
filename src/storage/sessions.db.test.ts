/**
 * The session tables after the commit (migration 0024): on PostgreSQL a consume queues its allowed turns
 * instead of deriving ledger_sessions, session_spans, session_edges, journey_sessions and
 * journey_gap_sessions in its transaction; a reader derives its subscription first, the background job
 * drains the rest, and the queue outlives a restart. On PGlite a consume derives them in its own statement
 * (migration 0026) and a queue left by an older version is drained when the database opens; the queue's
 * deriver is still tested there on turns queued as that version did (omnimeter.sessions_inline off). The
 * tables are checked against a recomputation in TypeScript from the raw ledger rows (spans per session and
 * channel, each identifier's earliest turn per session, its runs of turns without a session less than 30
 * minutes apart), and against the migrations' set-based rebuilds. On PGlite and PostgreSQL.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Kysely } from "kysely"
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createScratchPostgres,
  openTestDatabase,
  type TestDatabase,
  testEngine,
} from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { journeyAggregates } from "../analytics/journeys.js"
import type { Channel } from "../core/channels.js"
import { createMeter, type Meter } from "../meter/meter.js"
import { type Database, openDatabase } from "./database.js"
import { insertImportedTurns } from "./ledger.js"
import { rollupFigures } from "./outcomes.js"
import type { DB } from "./schema.js"
import { deriveSessions, SessionDeriveJob } from "./sessions.js"

let database: TestDatabase
let meter: Meter

beforeAll(async () => {
  database = await openTestDatabase()
  meter = await createMeter({ database })
})
afterAll(async () => {
  await meter?.close()
  await database?.close()
})

const QUARTER = 15 * 60_000
const GAP = 30 * 60_000
const quarter = (at: Date) => new Date(Math.floor(at.getTime() / QUARTER) * QUARTER).toISOString()

async function subscriptionFor(who: { entityId: string; entityType: string }, tokenLimit = 1_000_000_000) {
  const sub = await meter.createSubscription({
    ...who,
    plan: "enterprise",
    tokenLimit,
    periodStart: "2026-01-01T00:00:00Z",
  })
  return sub.id
}

/**
 * Runs `fn` with the embedded database's connection queuing sessions as before migration 0026 (PostgreSQL
 * always queues): the queue an older version leaves.
 */
async function queuingAsBefore0026<T>(db: Kysely<DB>, fn: () => Promise<T>): Promise<T> {
  if (testEngine === "postgres") return fn()
  await sql`set omnimeter.sessions_inline = off`.execute(db)
  try {
    return await fn()
  } finally {
    await sql`set omnimeter.sessions_inline = on`.execute(db)
  }
}

async function queued(db: Kysely<DB>, subscriptionId: string): Promise<number> {
  const result = await sql<{ n: number }>`
    select count(*)::int as n from session_queue where subscription_id = ${subscriptionId}`.execute(db)
  return Number(result.rows[0]?.n)
}

/** The derived tables as stored, keyed as strings (read without deriving first). */
async function stored(db: Kysely<DB>, subscriptionId: string) {
  const spans = await sql<{ session_id: string; channel: string; first_bucket: Date; last_bucket: Date }>`
    select session_id, channel, first_bucket, last_bucket from ledger_sessions
    where subscription_id = ${subscriptionId}`.execute(db)
  const named = await sql<{ user_identifier: string; channel: string; session_id: string; started_at: Date }>`
    select user_identifier, channel, session_id, started_at from journey_sessions
    where subscription_id = ${subscriptionId}`.execute(db)
  const runs = await sql<{ user_identifier: string; channel: string; started_at: Date; ended_at: Date }>`
    select user_identifier, channel, started_at, ended_at from journey_gap_sessions
    where subscription_id = ${subscriptionId}`.execute(db)
  const edges = await sql<{ bucket_start: Date; channel: string; starts: string; ends: string }>`
    select bucket_start, channel, starts, ends from session_edges
    where subscription_id = ${subscriptionId} and (starts <> 0 or ends <> 0)`.execute(db)
  return {
    spans: new Map(
      spans.rows.map((s) => [
        `${s.session_id} ${s.channel}`,
        `${s.first_bucket.toISOString()} ${s.last_bucket.toISOString()}`,
      ]),
    ),
    named: new Map(
      named.rows.map((s) => [
        `${s.user_identifier} ${s.channel} ${s.session_id}`,
        s.started_at.toISOString(),
      ]),
    ),
    runs: new Set(
      runs.rows.map(
        (r) => `${r.user_identifier} ${r.channel} ${r.started_at.toISOString()} ${r.ended_at.toISOString()}`,
      ),
    ),
    edges: new Map(
      edges.rows.map((e) => [
        `${e.bucket_start.toISOString()} ${e.channel}`,
        `${Number(e.starts)} ${Number(e.ends)}`,
      ]),
    ),
  }
}

/** The same three session tables recomputed here from the raw ledger rows (TypeScript, not the SQL). */
async function recomputed(db: Kysely<DB>, subscriptionId: string) {
  const ledger = await sql<{
    created_at: Date
    channel: string
    session_id: string | null
    user_identifier: string | null
  }>`select created_at, channel, session_id, user_identifier from token_usage_logs
     where subscription_id = ${subscriptionId} and status <> 'denied'`.execute(db)
  const spans = new Map<string, [string, string]>()
  const named = new Map<string, number>()
  const gapTurns = new Map<string, number[]>()
  for (const l of ledger.rows) {
    if (l.session_id !== null) {
      const key = `${l.session_id} ${l.channel}`
      const q = quarter(l.created_at)
      const span = spans.get(key)
      spans.set(key, span ? [q < span[0] ? q : span[0], q > span[1] ? q : span[1]] : [q, q])
    }
    if (l.user_identifier === null) continue
    if (l.session_id !== null) {
      const key = `${l.user_identifier} ${l.channel} ${l.session_id}`
      named.set(key, Math.min(named.get(key) ?? Number.POSITIVE_INFINITY, l.created_at.getTime()))
    } else {
      const key = `${l.user_identifier} ${l.channel}`
      gapTurns.set(key, [...(gapTurns.get(key) ?? []), l.created_at.getTime()])
    }
  }
  const runs = new Set<string>()
  for (const [key, times] of gapTurns) {
    times.sort((a, b) => a - b)
    let first = times[0] as number
    let last = first
    for (const t of times.slice(1)) {
      if (t - last >= GAP) {
        runs.add(`${key} ${new Date(first).toISOString()} ${new Date(last).toISOString()}`)
        first = t
      }
      last = t
    }
    runs.add(`${key} ${new Date(first).toISOString()} ${new Date(last).toISOString()}`)
  }
  return {
    spans: new Map([...spans].map(([k, [a, b]]) => [k, `${a} ${b}`])),
    named: new Map([...named].map(([k, t]) => [k, new Date(t).toISOString()])),
    runs,
  }
}

/** Derived and stored equals the recomputation, and the migrations' rebuilds change nothing. */
async function expectExact(db: Kysely<DB>, subscriptionId: string, owner: TestDatabase["asOwner"]) {
  const kept = await stored(db, subscriptionId)
  const { edges, ...sessions } = kept
  expect(sessions).toEqual(await recomputed(db, subscriptionId))
  await owner(async (o) => {
    await sql`select omnimeter_outcome_rollups_rebuild(${subscriptionId}::uuid)`.execute(o)
    await sql`select omnimeter_outcome_reads_rebuild(${subscriptionId}::uuid)`.execute(o)
    await sql`select omnimeter_journey_sessions_rebuild(array(
        select distinct row(subscription_id, channel, user_identifier)::omnimeter_identifier_key
        from token_usage_logs where subscription_id = ${subscriptionId}::uuid and user_identifier is not null))`.execute(
      o,
    )
  })
  expect(await stored(db, subscriptionId)).toEqual({ ...sessions, edges })
}

describe("the session tables after the commit", () => {
  it("queue on PostgreSQL and are derived in the consume statement on the embedded database", () => {
    expect(database.capabilities.queuesSessions).toBe(testEngine === "postgres")
  })

  it.runIf(testEngine === "pglite")(
    "on the embedded database, a consume's session rows exist right after it and nothing is queued",
    async () => {
      const who = entity("inline")
      const id = await subscriptionFor(who, 150)
      const d = await meter.validateAndConsumeTokens(turn(who, { sessionId: "i-1", userIdentifier: "u-i" }))
      expect(d.allowed).toBe(true)
      const denied = await meter.validateAndConsumeTokens(turn(who, { sessionId: "i-2" }))
      expect(denied.allowed).toBe(false)
      expect(await queued(database.db, id)).toBe(0)
      const after = await stored(database.db, id)
      expect([...after.spans.keys()]).toEqual(["i-1 website"])
      expect([...after.named.keys()]).toEqual(["u-i website i-1"])
      expect(await deriveSessions(database.db, id)).toBe(0)
      await expectExact(database.db, id, database.asOwner)
    },
  )

  it.runIf(testEngine === "postgres")(
    "on PostgreSQL, a consume leaves its turn queued and no session row until it is derived",
    async () => {
      const who = entity("queued")
      const id = await subscriptionFor(who, 150)
      const d = await meter.validateAndConsumeTokens(turn(who, { sessionId: "q-1", userIdentifier: "u-q" }))
      expect(d.allowed).toBe(true)
      // A denial (over the 150-token limit) is never queued: it counts for no session.
      const denied = await meter.validateAndConsumeTokens(turn(who, { sessionId: "q-2" }))
      expect(denied.allowed).toBe(false)
      expect(await queued(database.db, id)).toBe(1)
      expect((await stored(database.db, id)).spans.size).toBe(0)
      expect((await stored(database.db, id)).named.size).toBe(0)

      expect(await deriveSessions(database.db, id)).toBe(1)
      expect(await queued(database.db, id)).toBe(0)
      const after = await stored(database.db, id)
      expect([...after.spans.keys()]).toEqual(["q-1 website"])
      expect([...after.named.keys()]).toEqual(["u-q website q-1"])
      await expectExact(database.db, id, database.asOwner)
    },
  )

  it("an answer read right after a consume returned includes that turn", async () => {
    const who = entity("read-after")
    const id = await subscriptionFor(who)
    const start = new Date(Date.now() - 3_600_000)
    const end = new Date(Date.now() + 3_600_000)
    const channels: Channel[] = ["website", "whatsapp"]
    for (const [i, channel] of (["website", "whatsapp", "website"] as const).entries()) {
      await meter.validateAndConsumeTokens(
        turn(who, { channel, sessionId: `r-${i % 2}`, userIdentifier: `u-${i}` }),
      )
      const figures = await rollupFigures(database.db, {
        subscriptionId: id,
        start,
        end,
        channels,
        lookbackMs: 7 * 86_400_000,
        attribution: "last_touch",
      })
      // r-0 on website, r-1 on whatsapp: one session after the first turn, two after the second and third.
      expect(figures.turns.find((row) => row.channel === null)?.sessions).toBe(i === 0 ? 1 : 2)
      const journeys = await journeyAggregates(database.db, id, start, end, channels)
      expect(journeys.people).toBe(i + 1)
      expect(journeys.sessions).toBe(i + 1)
      expect(await queued(database.db, id)).toBe(0)
    }
    await expectExact(database.db, id, database.asOwner)
  })

  it("concurrent appliers and readers take each queued turn once and end exact", async () => {
    const who = entity("concurrent")
    const id = await subscriptionFor(who)
    // Turns with and without sessions, several identifiers and channels, written by 40 concurrent consumes.
    await queuingAsBefore0026(database.db, () =>
      Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          meter.validateAndConsumeTokens(
            turn(who, {
              channel: (["website", "whatsapp", "telegram"] as const)[i % 3],
              sessionId: i % 4 === 0 ? undefined : `c-${i % 5}`,
              userIdentifier: `u-${i % 6}`,
            }),
          ),
        ),
      ),
    )
    expect(await queued(database.db, id)).toBe(40)
    const job = new SessionDeriveJob({ database, turnsPerStatement: 7 })
    const taken = await Promise.all([
      job.runOnce(),
      deriveSessions(database.db, id),
      job.runOnce(),
      deriveSessions(database.db, id),
      deriveSessions(database.db, id),
    ])
    // Each queued turn was applied by exactly one of them (the earlier tests left nothing queued).
    expect(taken.reduce((a, b) => a + b, 0)).toBe(40)
    expect(await queued(database.db, id)).toBe(0)
    await expectExact(database.db, id, database.asOwner)
  })

  it("imports are derived at once; settles, corrections and deletions of consumed turns end exact", async () => {
    const who = entity("paths")
    const id = await subscriptionFor(who)
    // An import of history, with and without sessions, through the same write as consume: its turns
    // are derived at once, so a backfill leaves no queue behind it.
    const base = Date.parse("2026-02-01T10:00:00Z")
    await insertImportedTurns(
      database.db,
      Array.from({ length: 12 }, (_, i) => ({
        subscriptionId: id,
        channel: (i % 2 === 0 ? "website" : "api") as Channel,
        chatbotId: null,
        sessionId: i % 3 === 0 ? null : `imp-${i % 4}`,
        userIdentifier: `u-${i % 3}`,
        operationType: "chat",
        rawTokens: 10,
        billedTokens: 10,
        multiplierHundredths: 100,
        idempotencyKey: null,
        createdAt: new Date(base + i * 11 * 60_000),
        periodStart: new Date("2026-02-01T00:00:00Z"),
      })),
    )
    expect(await queued(database.db, id)).toBe(0)
    expect((await stored(database.db, id)).spans.has("imp-1 api")).toBe(true)
    const decisions = []
    for (let i = 0; i < 6; i++) {
      decisions.push(
        await meter.validateAndConsumeTokens(
          turn(who, { sessionId: i < 4 ? `p-${i % 2}` : undefined, userIdentifier: `u-${i % 2}` }),
        ),
      )
    }
    // Settled while still queued (PostgreSQL): the settlement is the settle's; the sessions stay the queue's.
    for (const d of decisions.slice(0, 3)) if (d.allowed) await meter.settle(d.usageId, { actualTokens: 40 })
    // A correction moving one turn to another session, and a deletion of another (before deriving them, on
    // PostgreSQL; after, on PGlite).
    const moved = decisions[1]
    const gone = decisions[4]
    if (!moved?.allowed || !gone?.allowed) throw new Error("denied")
    await sql`update token_usage_logs set session_id = 'p-moved' where id = ${moved.usageId}`.execute(
      database.db,
    )
    await sql`delete from token_usage_logs where id = ${gone.usageId}`.execute(database.db)
    expect(await queued(database.db, id)).toBe(database.capabilities.queuesSessions ? 6 : 0)
    await deriveSessions(database.db, id)
    expect(await queued(database.db, id)).toBe(0)
    const kept = await stored(database.db, id)
    expect(kept.spans.has("p-moved website")).toBe(true)
    expect(kept.spans.has("imp-1 api")).toBe(true)
    await expectExact(database.db, id, database.asOwner)
  })
})

describe("the session queue across a restart", () => {
  it("keeps the turns a stopped process left queued, and drains them at the next start", async () => {
    let open: () => Promise<Database>
    let cleanup: () => Promise<void>
    if (testEngine === "pglite") {
      const dir = await mkdtemp(join(tmpdir(), "omnimeter-queue-"))
      open = () => openDatabase({ dataDir: dir })
      cleanup = () => rm(dir, { recursive: true, force: true })
    } else {
      const scratch = await createScratchPostgres({ template: undefined })
      open = () => openDatabase({ databaseUrl: scratch.url, poolSize: 4 })
      cleanup = scratch.drop
    }
    try {
      const who = entity("restart")
      const first = await open()
      const firstMeter = await createMeter({ database: first })
      const sub = await firstMeter.createSubscription({ ...who, plan: "enterprise", tokenLimit: 1_000_000 })
      // On PGlite, the queue a version before migration 0026 left.
      await queuingAsBefore0026(first.db, async () => {
        for (let i = 0; i < 3; i++) {
          await firstMeter.validateAndConsumeTokens(turn(who, { sessionId: `s-${i}`, userIdentifier: "u" }))
        }
      })
      expect(await queued(first.db, sub.id)).toBe(3)
      await firstMeter.close()
      await first.close()

      const second = await open()
      try {
        if (testEngine === "pglite") {
          // The embedded database drained it as it opened: no job runs beside it.
          expect(await queued(second.db, sub.id)).toBe(0)
        } else {
          expect(await queued(second.db, sub.id)).toBe(3)
          expect(await new SessionDeriveJob({ database: second }).runOnce()).toBe(3)
          expect(await queued(second.db, sub.id)).toBe(0)
        }
        const kept = await stored(second.db, sub.id)
        expect({ spans: kept.spans, named: kept.named, runs: kept.runs }).toEqual(
          await recomputed(second.db, sub.id),
        )
      } finally {
        await second.close()
      }
    } finally {
      await cleanup()
    }
  }, 180_000)
})

describe("a meter that opened its own database", () => {
  it.runIf(testEngine === "postgres")(
    "drains its session queue by itself, with no reader and no job of the host's",
    async () => {
      const scratch = await createScratchPostgres({ template: undefined })
      const own = await createMeter({ databaseUrl: scratch.url, poolSize: 2 })
      const observer = await openDatabase({ databaseUrl: scratch.url, poolSize: 1 })
      try {
        const who = entity("own-database")
        const sub = await own.createSubscription({ ...who, plan: "enterprise", tokenLimit: 1_000_000 })
        for (let i = 0; i < 3; i++) {
          const decision = await own.validateAndConsumeTokens(
            turn(who, { sessionId: `s-${i}`, userIdentifier: "u" }),
          )
          expect(decision.allowed).toBe(true)
        }
        await expect.poll(() => queued(observer.db, sub.id), { timeout: 15_000 }).toBe(0)
        const kept = await stored(observer.db, sub.id)
        expect({ spans: kept.spans, named: kept.named, runs: kept.runs }).toEqual(
          await recomputed(observer.db, sub.id),
        )
      } finally {
        await own.close()
        await observer.close()
        await scratch.drop()
      }
    },
    120_000,
  )
})
