/**
 * The outcomes rollups (migration 0019) against their definition: after multi-row inserts, settlements,
 * priced settles, corrections and deletions, the trigger-maintained tables equal a recomputation in
 * TypeScript from the raw ledger and turn_details rows, and equal the migration's backfill
 * (omnimeter_outcome_rollups_rebuild); the database's histogram buckets are the ones
 * core/latency-histogram.ts reads back. Migration 0021's credits and session edges equal their recomputation
 * too, and the answer's figures read from them equal a recomputation from the raw rows for periods on and
 * off the 15-minute grid, with sessions crossing their edges. On PGlite and PostgreSQL.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, type TestDatabase } from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { CHANNELS } from "../core/channels.js"
import { latencyBucket } from "../core/latency-histogram.js"
import { createMeter, type Meter } from "../meter/meter.js"
import { type OutcomeQueryRange, outcomeCredits, rollupFigures } from "./outcomes.js"
import { dropExpiredLedgerPartitions, ensureLedgerPartitions } from "./partitions.js"
import { deriveSessions } from "./sessions.js"

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

/**
 * The rollups as the triggers left them, zero rows left out, keyed as strings; read as every reader reads
 * them, after deriving the consumed turns still queued (migration 0024).
 */
async function maintained(subscriptionId: string) {
  await deriveSessions(database.db, subscriptionId)
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

/** Migration 0021's tables as the triggers left them, zero rows left out. */
async function maintainedReads(subscriptionId: string) {
  await deriveSessions(database.db, subscriptionId)
  const credits = await sql<{
    attribution: string
    bucket_start: Date
    channel: string
    name: string
    conversions: string
    value: string
  }>`select attribution, bucket_start, channel, name, conversions::text as conversions, value::text as value
     from outcome_credits where subscription_id = ${subscriptionId}`.execute(database.db)
  const creditDays = await sql<{ key: string; conversions: string; value: string }>`
    select attribution || ' ' || day::text || ' ' || channel || ' ' || name as key, conversions::text as conversions,
      value::text as value
    from outcome_credit_days where subscription_id = ${subscriptionId}`.execute(database.db)
  const edges = await sql<{ bucket_start: Date; channel: string; starts: number; ends: number }>`
    select bucket_start, channel, starts, ends from session_edges where subscription_id = ${subscriptionId}`.execute(
    database.db,
  )
  const edgeDays = await sql<{ key: string; starts: number; ends: number }>`
    select day::text || ' ' || channel as key, starts, ends from session_edge_days
    where subscription_id = ${subscriptionId}`.execute(database.db)
  const spans = await sql<{ session_id: string; first_bucket: Date; last_bucket: Date }>`
    select session_id, first_bucket, last_bucket from session_spans where subscription_id = ${subscriptionId}`.execute(
    database.db,
  )
  const figures = (n: string, v: string) =>
    `${Math.round(Number(n) * 1e9) / 1e9} ${Math.round(Number(v) * 1e6) / 1e6}`
  return {
    credits: new Map(
      credits.rows
        .filter((c) => Number(c.conversions) !== 0 || Number(c.value) !== 0)
        .map((c) => [
          `${c.attribution} ${c.bucket_start.toISOString()} ${c.channel} ${c.name}`,
          figures(c.conversions, c.value),
        ]),
    ),
    creditDays: new Map(
      creditDays.rows
        .filter((c) => Number(c.conversions) !== 0 || Number(c.value) !== 0)
        .map((c) => [c.key, figures(c.conversions, c.value)]),
    ),
    edges: new Map(
      edges.rows
        .filter((e) => Number(e.starts) !== 0 || Number(e.ends) !== 0)
        .map((e) => [
          `${e.bucket_start.toISOString()} ${e.channel}`,
          `${Number(e.starts)} ${Number(e.ends)}`,
        ]),
    ),
    edgeDays: new Map(
      edgeDays.rows
        .filter((e) => Number(e.starts) !== 0 || Number(e.ends) !== 0)
        .map((e) => [e.key, `${Number(e.starts)} ${Number(e.ends)}`]),
    ),
    spans: new Map(
      spans.rows.map((x) => [x.session_id, `${x.first_bucket.toISOString()} ${x.last_bucket.toISOString()}`]),
    ),
  }
}

/**
 * The same from the recomputed touches and spans: each outcome's credit under each model by sorting its
 * touches here, each span's edges by counting.
 */
async function recomputedReads(subscriptionId: string, base: Awaited<ReturnType<typeof recomputed>>) {
  const outcomes = await sql<{
    id: string
    name: string
    value: string | null
    channel: string | null
    occurred_at: Date
  }>`
    select id, name, value::text as value, channel, occurred_at from outcomes where subscription_id = ${subscriptionId}`.execute(
    database.db,
  )
  const credits = new Map<string, [number, number]>()
  const creditDays = new Map<string, [number, number]>()
  const credit = (model: string, at: Date, channel: string, name: string, share: number, value: number) => {
    for (const [map, key] of [
      [credits, `${model} ${quarter(at)} ${channel} ${name}`],
      [creditDays, `${model} ${utcDay(at)} ${channel} ${name}`],
    ] as const) {
      const [n, v] = map.get(key) ?? [0, 0]
      map.set(key, [n + share, v + value * share])
    }
  }
  for (const o of outcomes.rows) {
    const value = Number(o.value ?? 0)
    const touches = [...base.touches]
      .filter(([key]) => key.startsWith(`${o.id} `))
      .map(([key, text]) => {
        const [touchCount, firstAt, firstId, lastAt, lastId] = text.split(" ")
        return {
          channel: key.slice(o.id.length + 1),
          n: Number(touchCount),
          firstAt,
          firstId,
          lastAt,
          lastId,
        }
      })
    for (const model of ["last_touch", "first_touch", "linear"]) {
      if (o.channel !== null || touches.length === 0) {
        credit(model, o.occurred_at, o.channel ?? "", o.name, 1, value)
        continue
      }
      const byFirst = [...touches].sort((a, b) =>
        `${a.firstAt} ${a.firstId}` < `${b.firstAt} ${b.firstId}` ? -1 : 1,
      )
      const byLast = [...touches].sort((a, b) =>
        `${a.lastAt} ${a.lastId}` > `${b.lastAt} ${b.lastId}` ? -1 : 1,
      )
      if (model === "last_touch") credit(model, o.occurred_at, byLast[0]?.channel ?? "", o.name, 1, value)
      else if (model === "first_touch")
        credit(model, o.occurred_at, byFirst[0]?.channel ?? "", o.name, 1, value)
      else {
        const all = touches.reduce((sum, t) => sum + t.n, 0)
        for (const t of touches) credit(model, o.occurred_at, t.channel, o.name, t.n / all, value)
      }
    }
  }
  const spans = new Map<string, [string, string]>()
  const edges = new Map<string, [number, number]>()
  const edgeDays = new Map<string, [number, number]>()
  const edge = (first: string, last: string, channel: string) => {
    for (const [map, a, b] of [
      [edges, `${first} ${channel}`, `${last} ${channel}`],
      [edgeDays, `${first.slice(0, 10)} ${channel}`, `${last.slice(0, 10)} ${channel}`],
    ] as const) {
      const [s0, e0] = map.get(a) ?? [0, 0]
      map.set(a, [s0 + 1, e0])
      const [s1, e1] = map.get(b) ?? [0, 0]
      map.set(b, [s1, e1 + 1])
    }
  }
  for (const [key, text] of base.sessions) {
    const [first = "", last = ""] = text.split(" ")
    const cut = key.lastIndexOf(" ")
    const session = key.slice(0, cut)
    edge(first, last, key.slice(cut + 1))
    const span = spans.get(session)
    spans.set(
      session,
      span ? [first < span[0] ? first : span[0], last > span[1] ? last : span[1]] : [first, last],
    )
  }
  for (const [first, last] of spans.values()) edge(first, last, "*")
  const figures = ([n, v]: [number, number]) => `${Math.round(n * 1e9) / 1e9} ${Math.round(v * 1e6) / 1e6}`
  const counts = ([a, b]: [number, number]) => `${a} ${b}`
  return {
    credits: new Map([...credits].map(([k, x]) => [k, figures(x)])),
    creditDays: new Map([...creditDays].map(([k, x]) => [k, figures(x)])),
    edges: new Map([...edges].map(([k, x]) => [k, counts(x)])),
    edgeDays: new Map([...edgeDays].map(([k, x]) => [k, counts(x)])),
    spans: new Map([...spans].map(([k, [a, b]]) => [k, `${a} ${b}`])),
  }
}

/** outcome_session_turns as kept, one string per (outcome, channel). */
async function maintainedSessionTurns(subscriptionId: string) {
  await deriveSessions(database.db, subscriptionId)
  const rows = await sql<{
    outcome_id: string
    channel: string
    turn_before: Date | null
    turn_after: Date | null
  }>`
    select outcome_id, channel, turn_before, turn_after from outcome_session_turns
    where subscription_id = ${subscriptionId}`.execute(database.db)
  return new Map(
    rows.rows.map((row) => [
      `${row.outcome_id} ${row.channel}`,
      `${row.turn_before?.toISOString() ?? "-"} ${row.turn_after?.toISOString() ?? "-"}`,
    ]),
  )
}

/**
 * The same from the raw rows: per outcome naming a session, the session's allowed turns on each channel in
 * time order, walked to the last one at or before the outcome and the first one after it.
 */
async function recomputedSessionTurns(subscriptionId: string) {
  const turns = await sql<{ session_id: string; channel: string; created_at: Date }>`
    select session_id, channel, created_at from token_usage_logs
    where subscription_id = ${subscriptionId} and status <> 'denied' and session_id is not null`.execute(
    database.db,
  )
  const outcomes = await sql<{ id: string; session_id: string; occurred_at: Date }>`
    select id, session_id, occurred_at from outcomes
    where subscription_id = ${subscriptionId} and session_id is not null`.execute(database.db)
  const bySession = new Map<string, Map<string, number[]>>()
  for (const t of turns.rows) {
    const channels = bySession.get(t.session_id) ?? new Map<string, number[]>()
    bySession.set(t.session_id, channels)
    channels.set(t.channel, [...(channels.get(t.channel) ?? []), t.created_at.getTime()])
  }
  const facts = new Map<string, string>()
  for (const o of outcomes.rows) {
    for (const [channel, times] of bySession.get(o.session_id) ?? []) {
      const sorted = [...times].sort((a, b) => a - b)
      const at = o.occurred_at.getTime()
      let before: number | undefined
      let after: number | undefined
      for (const time of sorted) {
        if (time <= at) before = time
        else if (after === undefined) after = time
      }
      const text = (ms: number | undefined) => (ms === undefined ? "-" : new Date(ms).toISOString())
      facts.set(`${o.id} ${channel}`, `${text(before)} ${text(after)}`)
    }
  }
  return facts
}

async function expectExact(subscriptionId: string) {
  const kept = await maintained(subscriptionId)
  const again = await recomputed(subscriptionId)
  expect(kept).toEqual(again)
  const reads = await maintainedReads(subscriptionId)
  expect(reads).toEqual(await recomputedReads(subscriptionId, again))
  const sessionTurns = await maintainedSessionTurns(subscriptionId)
  expect(sessionTurns).toEqual(await recomputedSessionTurns(subscriptionId))
  // The migrations' backfills compute the same.
  await database.asOwner(async (db) => {
    await sql`select omnimeter_outcome_rollups_rebuild(${subscriptionId}::uuid)`.execute(db)
    await sql`select omnimeter_outcome_reads_rebuild(${subscriptionId}::uuid)`.execute(db)
    await sql`select omnimeter_outcome_session_turns_rebuild(${subscriptionId}::uuid)`.execute(db)
  })
  expect(await maintained(subscriptionId)).toEqual(kept)
  expect(await maintainedReads(subscriptionId)).toEqual(reads)
  expect(await maintainedSessionTurns(subscriptionId)).toEqual(sessionTurns)
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

    // An outcome naming a live session before its turns: the consumed turns widen its facts after commit.
    await outcome("o-6", "u-9", "live-0", null, new Date(Date.now() - 60_000).toISOString())
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
      await sql`insert into outcomes (subscription_id, name, user_identifier, session_id, occurred_at, idempotency_key)
        values (${s.id}, 'lead', 'user-1', 'iso', now(), 'iso')`.execute(database.db)
    }
    const seen = await database.withTenant(mine.id, async (trx) => {
      const rows = await sql<{ subscription_id: string }>`
        select subscription_id from outcome_buckets union all select subscription_id from latency_quarters
        union all select subscription_id from latency_days union all select subscription_id from ledger_sessions
        union all select subscription_id from session_spans union all select subscription_id from session_edges
        union all select subscription_id from session_edge_days union all select subscription_id from outcome_credits
        union all select subscription_id from outcome_credit_days
        union all select subscription_id from outcome_session_turns`.execute(trx)
      return new Set(rows.rows.map((row) => row.subscription_id))
    })
    expect([...seen]).toEqual([mine.id])
    // Both tenants have converted-session facts: the policy, not their absence, hides the other's.
    const facts = await sql<{ n: number }>`select count(*)::int as n from outcome_session_turns
      where subscription_id in (${mine.id}, ${theirs.id})`.execute(database.db)
    expect(facts.rows[0]?.n).toBe(2)
  })
})

describe("the session spans under concurrent writes", () => {
  it("count a session written on two channels by two transactions at once once over all channels", async () => {
    const { id } = await subscription()
    const insert = (db: typeof database.db, channel: string, at: string) =>
      sql`insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type, status,
          estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
        values (${id}, ${channel}, 'both', 'u-1', 'chat', 'estimated', 10, 10, 10, 1, ${at})`.execute(db)
    let second: Promise<unknown> | undefined
    // The second transaction writes the same session while the first has written it but not committed
    // (on PostgreSQL it waits on the session's span row; PGlite runs one transaction at a time).
    await database.db.transaction().execute(async (trx) => {
      await insert(trx, "website", "2026-04-01T10:00:00Z")
      second = database.db.transaction().execute((trx2) => insert(trx2, "api", "2026-04-01T12:00:00Z"))
      await new Promise((resolve) => setTimeout(resolve, 300))
    })
    await second
    const reads = await maintainedReads(id)
    expect(reads.spans.get("both")).toBe("2026-04-01T10:00:00.000Z 2026-04-01T12:00:00.000Z")
    await expectExact(id)
  })
})

describe("the converted-session facts under concurrent writes", () => {
  it("end exact when outcomes naming sessions are recorded while the deriver applies those sessions' turns", async () => {
    const { id, who } = await subscription()
    const sessions = Array.from({ length: 12 }, (_, i) => `race-${i}`)
    // On PostgreSQL the consumed turns are queued; each round derives them while an outcome naming their
    // session is inserted, and a later turn of the session arrives after the outcome.
    for (const [i, session] of sessions.entries()) {
      const before = await meter.validateAndConsumeTokens(
        turn(who, { sessionId: session, channel: i % 2 === 0 ? "website" : "whatsapp" }),
      )
      if (!before.allowed) throw new Error("denied")
      await Promise.all([
        deriveSessions(database.db, id),
        sql`insert into outcomes (subscription_id, name, user_identifier, session_id, occurred_at, idempotency_key)
          values (${id}, 'lead', 'user-1', ${session}, now(), ${`race-${i}`})`.execute(database.db),
        meter.validateAndConsumeTokens(turn(who, { sessionId: session, channel: "telegram" })),
      ])
    }
    const facts = await maintainedSessionTurns(id)
    expect(facts).toEqual(await recomputedSessionTurns(id))
    // Every outcome has its session's turns on both of its channels, one at or before it.
    expect(facts.size).toBe(sessions.length * 2)
    expect([...facts.values()].every((text) => !text.startsWith("- "))).toBe(true)
  })

  it("see a turn derived while the outcome naming its session is not committed yet", async () => {
    // PGlite derives in the consume statement (migration 0026): no deriver runs beside a transaction.
    if (!database.capabilities.queuesSessions) return
    const { id, who } = await subscription()
    const first = await meter.validateAndConsumeTokens(turn(who, { sessionId: "held", channel: "website" }))
    if (!first.allowed) throw new Error("denied")
    await deriveSessions(database.db, id)
    let derived: Promise<unknown> | undefined
    await database.db.transaction().execute(async (trx) => {
      await sql`insert into outcomes (subscription_id, name, user_identifier, session_id, occurred_at, idempotency_key)
        values (${id}, 'lead', 'user-1', 'held', now(), 'held')`.execute(trx)
      // A turn of the session commits, queued, and the deriver applies it before the outcome commits: it
      // waits for the outcome's transaction (the sessions lock), then sees the outcome.
      const later = await meter.validateAndConsumeTokens(
        turn(who, { sessionId: "held", channel: "whatsapp" }),
      )
      if (!later.allowed) throw new Error("denied")
      derived = deriveSessions(database.db, id)
      await new Promise((resolve) => setTimeout(resolve, 300))
    })
    await derived
    const facts = await maintainedSessionTurns(id)
    expect(facts).toEqual(await recomputedSessionTurns(id))
    expect([...facts.values()].filter((text) => text.startsWith("- "))).toHaveLength(1)
  })
})

describe("the outcomes answer's figures from the rollups", () => {
  /** The period's figures recomputed here from the raw rows and the recomputed touches. */
  async function oracle(subscriptionId: string, r: OutcomeQueryRange) {
    const ledger = await sql<{
      created_at: Date
      channel: string
      status: string
      outcome: string | null
      session_id: string | null
      billed_tokens: number
    }>`select created_at, channel, status, outcome, session_id, billed_tokens from token_usage_logs
       where subscription_id = ${subscriptionId}`.execute(database.db)
    const details = await sql<{ created_at: Date; channel: string; cost_micros: string | null }>`
      select created_at, channel, cost_micros::text as cost_micros from turn_details
      where subscription_id = ${subscriptionId}`.execute(database.db)
    const outcomes = await sql<{
      id: string
      name: string
      value: string | null
      session_id: string | null
      channel: string | null
      occurred_at: Date
    }>`select id, name, value::text as value, session_id, channel, occurred_at from outcomes
       where subscription_id = ${subscriptionId}`.execute(database.db)
    const inside = (at: Date) => at >= r.start && at < r.end
    const touches = (await recomputed(subscriptionId)).touches
    const named = new Set(
      outcomes.rows.filter((o) => inside(o.occurred_at) && o.session_id).map((o) => o.session_id),
    )
    const figures = (channels: readonly string[]) => {
      const mine = ledger.rows.filter(
        (l) => l.status !== "denied" && channels.includes(l.channel) && inside(l.created_at),
      )
      const sessions = new Set(mine.filter((l) => l.session_id !== null).map((l) => l.session_id))
      return {
        turns: mine.length,
        tokens: mine.reduce((sum, l) => sum + Number(l.billed_tokens), 0),
        settled: mine.filter((l) => l.status === "settled").length,
        errors: mine.filter((l) => l.status === "settled" && l.outcome === "error").length,
        sessions: sessions.size,
        converted: [...sessions].filter((x) => named.has(x)).length,
        cost: details.rows
          .filter((d) => d.cost_micros !== null && channels.includes(d.channel) && inside(d.created_at))
          .reduce((sum, d) => sum + Number(d.cost_micros), 0),
      }
    }
    const credits = new Map<string, [number, number]>()
    for (const o of outcomes.rows.filter((x) => inside(x.occurred_at))) {
      const mine = [...touches]
        .filter(([key]) => key.startsWith(`${o.id} `))
        .map(([key, text]) => {
          const [n, firstAt, firstId, lastAt, lastId] = text.split(" ")
          return {
            channel: key.slice(o.id.length + 1),
            n: Number(n),
            first: `${firstAt} ${firstId}`,
            last: `${lastAt} ${lastId}`,
          }
        })
      const shares = new Map<string, number>()
      if (o.channel !== null) shares.set(o.channel, 1)
      else if (mine.length > 0) {
        if (r.attribution === "last_touch")
          shares.set([...mine].sort((a, b) => (a.last > b.last ? -1 : 1))[0]?.channel ?? "", 1)
        else if (r.attribution === "first_touch")
          shares.set([...mine].sort((a, b) => (a.first < b.first ? -1 : 1))[0]?.channel ?? "", 1)
        else {
          const all = mine.reduce((sum, t) => sum + t.n, 0)
          for (const t of mine) shares.set(t.channel, t.n / all)
        }
      } else shares.set("", 1)
      for (const [channel, share] of shares) {
        if (channel !== "" && !r.channels.includes(channel as (typeof CHANNELS)[number])) continue
        const key = `${channel} ${o.name}`
        const [n, v] = credits.get(key) ?? [0, 0]
        credits.set(key, [n + share, v + Number(o.value ?? 0) * share])
      }
    }
    return { figures, credits }
  }

  async function expectPeriod(subscriptionId: string, r: OutcomeQueryRange) {
    const want = await oracle(subscriptionId, r)
    const got = await rollupFigures(database.db, r)
    for (const channel of [...r.channels, null]) {
      const w = want.figures(channel === null ? r.channels : [channel])
      const turns = got.turns.find((row) => row.channel === channel)
      const label = `${channel ?? "total"} ${r.start.toISOString()} ${r.end.toISOString()}`
      expect(
        {
          turns: turns?.turns,
          tokens: Number(turns?.tokens_used),
          settled: turns?.settled,
          errors: turns?.errors,
          sessions: turns?.sessions,
          converted: got.converted.find((row) => row.channel === channel)?.converted ?? 0,
          cost: Number(got.details.find((row) => row.channel === channel)?.cost_micros ?? 0),
        },
        label,
      ).toEqual(w)
    }
    const credits = await outcomeCredits(database.db, r)
    expect(
      new Map(
        credits.map((c) => [
          `${c.channel ?? ""} ${c.name}`,
          `${Math.round(Number(c.conversions) * 1e9) / 1e9} ${Math.round(Number(c.value) * 1e6) / 1e6}`,
        ]),
      ),
      `credits ${r.attribution} ${r.start.toISOString()}`,
    ).toEqual(
      new Map(
        [...want.credits].map(([key, [n, v]]) => [
          key,
          `${Math.round(n * 1e9) / 1e9} ${Math.round(v * 1e6) / 1e6}`,
        ]),
      ),
    )
  }

  it("equal a recomputation for periods on and off the grid, crossed by sessions, before and after a late turn", async () => {
    const { id } = await subscription()
    // Sessions on two channels over two days: some cross every period's start or end, one sleeps through
    // the middle day's period, one lives only in a sliver of an off-grid edge.
    await sql`
      insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type, status,
        denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at, settled_at,
        outcome, latency_ms)
      select ${id}::uuid, (array['website','api','telegram'])[1 + g % 3], 's-' || (g % 9), 'u-' || (g % 5), 'chat',
        case when g % 13 = 0 then 'denied' when g % 5 = 0 then 'estimated' else 'settled' end,
        case when g % 13 = 0 then 'rate_limited' end, 10, 10 + g, case when g % 13 = 0 then 0 else 10 + g end, 1,
        timestamptz '2026-03-01 08:00Z' + g * interval '17 minutes 13 seconds',
        case when g % 5 <> 0 and g % 13 <> 0 then timestamptz '2026-03-04Z' end,
        case when g % 5 <> 0 and g % 13 <> 0 then (case when g % 7 = 0 then 'error' else 'ok' end) end,
        case when g % 5 <> 0 and g % 13 <> 0 then (g * 53) % 4000 end
      from generate_series(1, 150) as g
      union all
      select ${id}::uuid, 'messenger', 'sleeper', 'u-9', 'chat', 'settled', null, 10, 10, 10, 1, at, at, 'ok', 100
      from unnest(array[timestamptz '2026-03-01 09:00Z', '2026-03-03 09:00Z']) as at
      union all
      select ${id}::uuid, 'instagram', 'sliver', 'u-8', 'chat', 'settled', null, 10, 10, 10, 1,
        timestamptz '2026-03-01 10:03Z', timestamptz '2026-03-01 10:03Z', 'ok', 100`.execute(database.db)
    await sql`
      insert into turn_details (usage_id, subscription_id, created_at, channel, cost_micros)
      select id, subscription_id, created_at, channel, extract(minute from created_at) * 7 + 1
      from token_usage_logs where subscription_id = ${id} and status = 'settled'`.execute(database.db)
    await sql`
      insert into outcomes (subscription_id, name, value, currency, user_identifier, session_id, channel, occurred_at,
        idempotency_key)
      select ${id}::uuid, (array['purchase','lead'])[1 + g % 2], (g * 3.37)::numeric(20, 6), 'USD', 'u-' || (g % 6),
        case when g % 3 = 0 then 's-' || (g % 9) when g % 3 = 1 then 'sleeper' end,
        case when g % 8 = 0 then 'api' end,
        timestamptz '2026-03-01 09:40Z' + g * interval '41 minutes 7 seconds', 'late-' || g
      from generate_series(1, 60) as g`.execute(database.db)
    await expectExact(id)
    const at = (text: string) => new Date(text)
    const periods: Array<[Date, Date]> = [
      [at("2026-03-01T10:00:00Z"), at("2026-03-02T10:00:00Z")], // on the grid, sessions crossing the start
      [at("2026-03-01T10:07:30Z"), at("2026-03-02T13:52:10Z")], // off the grid at both ends
      [at("2026-03-01T10:05:00Z"), at("2026-03-01T10:11:00Z")], // inside one quarter-hour
      [at("2026-03-01T12:00:00Z"), at("2026-03-03T00:00:00Z")], // the sleeper sleeps through it
      [at("2026-02-28T00:00:00Z"), at("2026-03-05T00:00:00Z")], // whole UTC days
    ]
    const every = [...CHANNELS]
    const some = ["website", "api", "messenger"] as const
    for (const [start, end] of periods)
      for (const channels of [every, some])
        for (const attribution of ["last_touch", "first_touch", "linear"] as const)
          await expectPeriod(id, {
            subscriptionId: id,
            start,
            end,
            channels,
            lookbackMs: 7 * 86_400_000,
            attribution,
          })

    // A late turn (an import) on a new channel just before an outcome becomes its last touch.
    const target = await sql<{
      id: string
      user_identifier: string
      session_id: string | null
      occurred_at: Date
    }>`
      select id, user_identifier, session_id, occurred_at from outcomes
      where subscription_id = ${id} and channel is null and session_id is not null order by occurred_at limit 1`.execute(
      database.db,
    )
    const o = target.rows[0]
    if (!o) throw new Error("no outcome to touch")
    const before = await outcomeCredits(database.db, {
      subscriptionId: id,
      start: o.occurred_at,
      end: new Date(o.occurred_at.getTime() + 1),
      channels: every,
      lookbackMs: 7 * 86_400_000,
      attribution: "last_touch",
    })
    expect(before.map((c) => c.channel)).not.toContain("whatsapp")
    await sql`
      insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type, status,
        estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
      values (${id}, 'whatsapp', ${o.session_id}, ${o.user_identifier}, 'chat', 'estimated', 10, 10, 10, 1,
        ${new Date(o.occurred_at.getTime() - 60_000)})`.execute(database.db)
    const after = await outcomeCredits(database.db, {
      subscriptionId: id,
      start: o.occurred_at,
      end: new Date(o.occurred_at.getTime() + 1),
      channels: every,
      lookbackMs: 7 * 86_400_000,
      attribution: "last_touch",
    })
    expect(after.map((c) => c.channel)).toEqual(["whatsapp"])
    const kept = await expectExact(id)
    expect(kept.touches.size).toBeGreaterThan(10)
    for (const [start, end] of periods.slice(0, 2))
      for (const attribution of ["last_touch", "linear"] as const)
        await expectPeriod(id, {
          subscriptionId: id,
          start,
          end,
          channels: every,
          lookbackMs: 7 * 86_400_000,
          attribution,
        })
    const reads = await maintainedReads(id)
    expect(reads.credits.size).toBeGreaterThan(20)
    expect(reads.edges.size).toBeGreaterThan(10)
  })
})

describe("the outcomes rollups under retention", () => {
  it("keep a dropped month's figures, as the analytics rollups do", async () => {
    const { id } = await subscription()
    await ensureLedgerPartitions(database.db, new Date("2041-01-05T00:00:00Z"))
    // January's sessions stay inside January; February's turns stay after retention.
    await sql`
      insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type, status,
        estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at, settled_at, outcome, latency_ms)
      select ${id}::uuid, (array['website','api'])[1 + g % 2], 'r-' || (g % 4) || '-' || (g / 40), 'u-' || (g % 3),
        'chat', 'settled', 10, 10, 10, 1, at, at, 'ok', 100 + g
      from (select g, timestamptz '2041-01-02Z' + g * interval '5 hours 3 minutes' as at
        from generate_series(1, 100) as g) as x`.execute(database.db)
    await sql`
      insert into turn_details (usage_id, subscription_id, created_at, channel, cost_micros)
      select id, subscription_id, created_at, channel, 17 from token_usage_logs where subscription_id = ${id}`.execute(
      database.db,
    )
    await sql`
      insert into outcomes (subscription_id, name, value, currency, user_identifier, session_id, occurred_at,
        idempotency_key)
      select ${id}::uuid, 'purchase', g, 'USD', 'u-' || (g % 3), case when g % 2 = 0 then 'r-' || (g % 4) || '-0' end,
        timestamptz '2041-01-03Z' + g * interval '9 hours', 'ret-' || g
      from generate_series(1, 20) as g`.execute(database.db)
    const january: OutcomeQueryRange = {
      subscriptionId: id,
      start: new Date("2041-01-01T00:00:00Z"),
      end: new Date("2041-02-01T00:00:00Z"),
      channels: [...CHANNELS],
      lookbackMs: 7 * 86_400_000,
      attribution: "last_touch",
    }
    const answer = async () => ({
      figures: await rollupFigures(database.db, january),
      credits: await outcomeCredits(database.db, january),
    })
    const before = { rollups: await maintained(id), reads: await maintainedReads(id), answer: await answer() }
    expect(before.answer.figures.turns.at(-1)?.sessions).toBeGreaterThan(4)
    expect(before.answer.figures.converted.at(-1)?.converted).toBeGreaterThan(0)

    // Keep one full month before March: January's partition goes.
    expect(
      await dropExpiredLedgerPartitions(database.db, 1, new Date("2041-03-20T00:00:00Z")),
    ).toBeGreaterThan(0)
    const left = await sql<{ n: number }>`
      select count(*)::int as n from token_usage_logs where subscription_id = ${id}`.execute(database.db)
    expect(left.rows[0]?.n).toBe(0)
    expect({
      rollups: await maintained(id),
      reads: await maintainedReads(id),
      answer: await answer(),
    }).toEqual(before)
  })
})
