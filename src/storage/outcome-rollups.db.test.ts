/**
 * The outcomes rollups (migration 0019) against their definition: after multi-row inserts, settlements,
 * priced settles, corrections and deletions, the trigger-maintained tables equal a recomputation in
 * TypeScript from the raw ledger and turn_details rows, and equal the migration's backfill
 * (omnimeter_outcome_rollups_rebuild); the database's histogram buckets are the ones
 * core/latency-histogram.ts reads back. On PGlite and PostgreSQL.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, type TestDatabase } from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { latencyBucket } from "../core/latency-histogram.js"
import { createMeter, type Meter } from "../meter/meter.js"

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
const quarter = (at: Date) => new Date(Math.floor(at.getTime() / QUARTER) * QUARTER).toISOString()
const utcDay = (at: Date) => at.toISOString().slice(0, 10)
const add = (map: Map<string, number>, key: string, n: number) => map.set(key, (map.get(key) ?? 0) + n)

/** The rollups as the triggers left them, zero rows left out, keyed as strings. */
async function maintained(subscriptionId: string) {
  const buckets = await sql<Record<string, string | number>>`
    select bucket_start, channel, settled, errors, priced, cost_micros::text as cost, sentiment_count,
      sentiment_sum::text as sentiment_sum, very_negative, negative, neutral, positive, very_positive
    from outcome_buckets where subscription_id = ${subscriptionId}`.execute(database.db)
  const quarters = await sql<{ bucket_start: Date; channel: string; latency_bucket: number; turns: number }>`
    select bucket_start, channel, latency_bucket, turns from latency_quarters
    where subscription_id = ${subscriptionId} and turns <> 0`.execute(database.db)
  const days = await sql<{ day: string; channel: string; latency_bucket: number; turns: number }>`
    select day::text as day, channel, latency_bucket, turns from latency_days
    where subscription_id = ${subscriptionId} and turns <> 0`.execute(database.db)
  const sessions = await sql<{ session_id: string; channel: string; first_bucket: Date; last_bucket: Date }>`
    select session_id, channel, first_bucket, last_bucket from ledger_sessions
    where subscription_id = ${subscriptionId}`.execute(database.db)
  const touches = await sql<{
    outcome_id: string
    channel: string
    touches: number
    first_at: Date
    first_id: string
    last_at: Date
    last_id: string
  }>`select outcome_id, channel, touches, first_at, first_id, last_at, last_id from outcome_touches
     where subscription_id = ${subscriptionId}`.execute(database.db)
  const figures = new Map<string, string>()
  for (const b of buckets.rows) {
    const key = `${new Date(b.bucket_start as unknown as string).toISOString()} ${b.channel}`
    const values = [
      b.settled,
      b.errors,
      b.priced,
      Number(b.cost),
      b.sentiment_count,
      Number(b.sentiment_sum),
      b.very_negative,
      b.negative,
      b.neutral,
      b.positive,
      b.very_positive,
    ]
    if (values.some((v) => Number(v) !== 0))
      figures.set(key, values.map((v) => Math.round(Number(v) * 1e6) / 1e6).join(","))
  }
  return {
    figures,
    quarters: new Map(
      quarters.rows.map((q) => [
        `${q.bucket_start.toISOString()} ${q.channel} ${q.latency_bucket}`,
        Number(q.turns),
      ]),
    ),
    days: new Map(days.rows.map((d) => [`${d.day} ${d.channel} ${d.latency_bucket}`, Number(d.turns)])),
    touches: new Map(
      touches.rows.map((t) => [
        `${t.outcome_id} ${t.channel}`,
        `${Number(t.touches)} ${t.first_at.toISOString()} ${t.first_id} ${t.last_at.toISOString()} ${t.last_id}`,
      ]),
    ),
    sessions: new Map(
      sessions.rows.map((s) => [
        `${s.session_id} ${s.channel}`,
        `${s.first_bucket.toISOString()} ${s.last_bucket.toISOString()}`,
      ]),
    ),
  }
}

/** The same, recomputed here from the raw rows: TypeScript arithmetic, not the SQL of the triggers. */
async function recomputed(subscriptionId: string) {
  const ledger = await sql<{
    created_at: Date
    channel: string
    status: string
    outcome: string | null
    latency_ms: number | null
    session_id: string | null
    id: string
    user_identifier: string | null
  }>`select id, created_at, channel, status, outcome, latency_ms, session_id, user_identifier
     from token_usage_logs where subscription_id = ${subscriptionId}`.execute(database.db)
  const outcomes = await sql<{
    id: string
    user_identifier: string
    session_id: string | null
    channel: string | null
    occurred_at: Date
  }>`select id, user_identifier, session_id, channel, occurred_at from outcomes
     where subscription_id = ${subscriptionId}`.execute(database.db)
  // Attribution facts: the session's allowed turns in the 7 days up to the outcome, else the user's.
  const touches = new Map<string, string>()
  for (const o of outcomes.rows) {
    if (o.channel !== null) continue
    const at = o.occurred_at.getTime()
    const window = ledger.rows.filter(
      (l) =>
        l.status !== "denied" &&
        l.created_at.getTime() <= at &&
        l.created_at.getTime() >= at - 7 * 86_400_000,
    )
    const bySession = window.filter((l) => o.session_id !== null && l.session_id === o.session_id)
    const chosen =
      bySession.length > 0 ? bySession : window.filter((l) => l.user_identifier === o.user_identifier)
    const order = (a: (typeof chosen)[number], b: (typeof chosen)[number]) =>
      a.created_at.getTime() - b.created_at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
    for (const channel of new Set(chosen.map((l) => l.channel))) {
      const mine = chosen.filter((l) => l.channel === channel).sort(order)
      const first = mine[0]
      const last = mine.at(-1)
      if (!first || !last) continue
      touches.set(
        `${o.id} ${channel}`,
        `${mine.length} ${first.created_at.toISOString()} ${first.id} ${last.created_at.toISOString()} ${last.id}`,
      )
    }
  }
  const details = await sql<{
    created_at: Date
    channel: string
    cost_micros: string | null
    sentiment: string | null
  }>`select created_at, channel, cost_micros::text as cost_micros, sentiment::text as sentiment
     from turn_details where subscription_id = ${subscriptionId}`.execute(database.db)
  const sums = new Map<string, number[]>()
  const at = (key: string) => {
    let row = sums.get(key)
    if (!row) {
      row = Array.from({ length: 11 }, () => 0)
      sums.set(key, row)
    }
    return row
  }
  const quarters = new Map<string, number>()
  const days = new Map<string, number>()
  const spans = new Map<string, [string, string]>()
  for (const l of ledger.rows) {
    if (l.status === "settled") {
      const row = at(`${quarter(l.created_at)} ${l.channel}`)
      row[0] = (row[0] ?? 0) + 1
      if (l.outcome === "error") row[1] = (row[1] ?? 0) + 1
      if (l.latency_ms !== null) {
        add(quarters, `${quarter(l.created_at)} ${l.channel} ${latencyBucket(l.latency_ms)}`, 1)
        add(days, `${utcDay(l.created_at)} ${l.channel} ${latencyBucket(l.latency_ms)}`, 1)
      }
    }
    if (l.status !== "denied" && l.session_id !== null) {
      const key = `${l.session_id} ${l.channel}`
      const q = quarter(l.created_at)
      const span = spans.get(key)
      spans.set(key, span ? [q < span[0] ? q : span[0], q > span[1] ? q : span[1]] : [q, q])
    }
  }
  for (const d of details.rows) {
    if (d.cost_micros === null && d.sentiment === null) continue
    const row = at(`${quarter(d.created_at)} ${d.channel}`)
    const bump = (i: number, n: number) => {
      row[i] = (row[i] ?? 0) + n
    }
    if (d.cost_micros !== null) {
      bump(2, 1)
      bump(3, Number(d.cost_micros))
    }
    if (d.sentiment !== null) {
      const s = Number(d.sentiment)
      bump(4, 1)
      bump(5, s)
      bump(s < -0.6 ? 6 : s < -0.2 ? 7 : s <= 0.2 ? 8 : s <= 0.6 ? 9 : 10, 1)
    }
  }
  const figures = new Map<string, string>()
  for (const [key, row] of sums)
    if (row.some((v) => v !== 0)) figures.set(key, row.map((v) => Math.round(v * 1e6) / 1e6).join(","))
  return {
    figures,
    quarters,
    days,
    touches,
    sessions: new Map([...spans].map(([key, [first, last]]) => [key, `${first} ${last}`])),
  }
}

async function expectExact(subscriptionId: string) {
  const kept = await maintained(subscriptionId)
  expect(kept).toEqual(await recomputed(subscriptionId))
  // The migration's backfill computes the same.
  await database.asOwner((db) =>
    sql`select omnimeter_outcome_rollups_rebuild(${subscriptionId}::uuid)`.execute(db),
  )
  expect(await maintained(subscriptionId)).toEqual(kept)
  return kept
}

async function subscription() {
  const who = entity("outcome-rollup")
  const sub = await meter.createSubscription({
    ...who,
    plan: "enterprise",
    tokenLimit: 1_000_000_000,
    periodStart: "2026-01-01T00:00:00Z",
  })
  return { id: sub.id, who }
}

describe("the outcomes rollups", () => {
  it("follow imports, settlements, priced settles, corrections and deletions exactly", async () => {
    const { id, who } = await subscription()
    await sql`insert into model_prices (model, currency, effective_from, input_per_million, output_per_million)
      values ('rollup-model', 'USD', '2020-01-01', 0.5, 1.25) on conflict do nothing`.execute(database.db)
    // Outcomes recorded before the turns that touch them are imported, and after.
    const outcome = (key: string, user: string, session: string | null, channel: string | null, at: string) =>
      sql`insert into outcomes (subscription_id, name, user_identifier, session_id, channel, occurred_at,
          idempotency_key) values (${id}, 'purchase', ${user}, ${session}, ${channel}, ${at}, ${key})`.execute(
        database.db,
      )
    await outcome("o-1", "u-0", "s-2", null, "2026-02-02T06:00:00Z")
    await outcome("o-2", "u-1", null, null, "2026-02-02T08:00:00Z")
    await outcome("o-3", "u-3", "s-none", null, "2026-02-03T00:00:00Z")
    await outcome("o-4", "u-2", null, "api", "2026-02-02T01:00:00Z")
    // An import-like multi-row insert of settled, estimated and denied turns, over two UTC days.
    await sql`
      insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type, status,
        denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at, settled_at,
        outcome, latency_ms)
      select ${id}::uuid, (array['website','api','telegram'])[1 + g % 3], 's-' || (g % 7), 'u-' || (g % 4), 'chat',
        case when g % 11 = 0 then 'denied' when g % 4 = 0 then 'estimated' else 'settled' end,
        case when g % 11 = 0 then 'rate_limited' end, 10, 10, case when g % 11 = 0 then 0 else 10 end, 1,
        timestamptz '2026-02-01 22:00Z' + g * interval '7 minutes',
        case when g % 4 <> 0 and g % 11 <> 0 then timestamptz '2026-02-03Z' end,
        case when g % 4 <> 0 and g % 11 <> 0 then (case when g % 9 = 0 then 'error' else 'ok' end) end,
        case when g % 4 <> 0 and g % 11 <> 0 and g % 13 <> 0 then (g * 37) % 6000 end
      from generate_series(1, 60) as g`.execute(database.db)
    await sql`
      insert into turn_details (usage_id, subscription_id, created_at, channel, sentiment, cost_micros)
      select id, subscription_id, created_at, channel, case when raw_tokens > 0 then (extract(minute from created_at) / 30 - 1)::numeric(5, 4) end,
        case when status = 'settled' then extract(minute from created_at) * 3 end
      from token_usage_logs where subscription_id = ${id}`.execute(database.db)
    await outcome("o-5", "u-2", "s-5", null, "2026-02-02T05:00:00Z")
    const first = await expectExact(id)
    expect(first.touches.size).toBeGreaterThan(3)

    // Consume with a sentiment, then settle with a price: the details row is inserted, then upserted.
    for (const [i, channel] of (["website", "whatsapp", "website"] as const).entries()) {
      const d = await meter.validateAndConsumeTokens(
        turn(who, { channel, sessionId: `live-${i % 2}`, model: "rollup-model", sentiment: 0.5 - i * 0.4 }),
      )
      if (!d.allowed) throw new Error("denied")
      await meter.settle(d.usageId, {
        inputTokens: 100 + i,
        outputTokens: 40,
        latencyMs: 250 * (i + 1),
        outcome: i === 2 ? "error" : "ok",
      })
    }
    await expectExact(id)

    // A correction moving turns to another session, channel and day, and deletions.
    await sql`update token_usage_logs set session_id = 's-moved', channel = 'messenger',
        created_at = created_at + interval '1 day'
      where subscription_id = ${id} and session_id = 's-3'`.execute(database.db)
    await sql`delete from token_usage_logs where subscription_id = ${id} and session_id in ('s-1', 's-2')`.execute(
      database.db,
    )
    await sql`delete from turn_details where subscription_id = ${id} and channel = 'api'`.execute(database.db)
    const kept = await expectExact(id)
    expect(kept.sessions.has("s-1 website")).toBe(false)
    expect([...kept.sessions.keys()].some((key) => key.startsWith("s-moved messenger"))).toBe(true)
    expect(kept.quarters.size).toBeGreaterThan(5)
  })

  it("puts a latency in the bucket core/latency-histogram.ts reads back", async () => {
    const result = await sql<{ ms: number; bucket: number }>`
      select ms, omnimeter_latency_bucket(ms) as bucket
      from (select generate_series(0, 3000) as ms union all select (1.37 ^ g)::int from generate_series(1, 60) as g) x
      where ms < 2147483647`.execute(database.db)
    const wrong = result.rows.filter((row) => row.bucket !== latencyBucket(row.ms))
    expect(wrong).toEqual([])
  })

  it("a tenant sees only its own outcomes rollup rows", async () => {
    const mine = await subscription()
    const theirs = await subscription()
    for (const s of [mine, theirs]) {
      const d = await meter.validateAndConsumeTokens(turn(s.who, { sessionId: "iso" }))
      if (!d.allowed) throw new Error("denied")
      await meter.settle(d.usageId, { actualTokens: 5, latencyMs: 100 })
    }
    const seen = await database.withTenant(mine.id, async (trx) => {
      const rows = await sql<{ subscription_id: string }>`
        select subscription_id from outcome_buckets union all select subscription_id from latency_quarters
        union all select subscription_id from latency_days union all select subscription_id from ledger_sessions`.execute(
        trx,
      )
      return new Set(rows.rows.map((row) => row.subscription_id))
    })
    expect([...seen]).toEqual([mine.id])
  })
})
