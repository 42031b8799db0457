/**
 * The rollup triggers (migration 0005) against their definition: after any mix of multi-row inserts,
 * settlements, corrections and deletions, the trigger-maintained rollups equal a recomputation from the
 * ledger (rebuildRollups), on PGlite and PostgreSQL, also under concurrent turns; and the users' day maps
 * read by their bounds (migration 0027) against the turns counted in the test.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import { entity, turn } from "../../test/support/fixtures.js"
import { ledgerQueries, rollupQueries } from "../analytics/queries.js"
import { CHANNELS } from "../core/channels.js"
import { uuidV7 } from "../core/ids.js"
import { createMeter, type Meter } from "../meter/meter.js"
import type { Database } from "./database.js"
import { type BatchTurn, consumeBatch } from "./ledger.js"
import { rebuildRollups } from "./rollups.js"

let database: Database
let meter: Meter

beforeAll(async () => {
  database = await openTestDatabase()
  meter = await createMeter({ database })
})
afterAll(async () => {
  await meter?.close()
  await database?.close()
})

async function snapshot(subscriptionId: string) {
  const buckets = await sql<Record<string, unknown>>`
    select bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens
    from channel_usage_buckets
    where subscription_id = ${subscriptionId} and (turn_count <> 0 or tokens_used <> 0 or raw_tokens <> 0)
    order by 1, 2, 3, 4`.execute(database.db)
  const hourly = await sql<Record<string, unknown>>`
    select bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens
    from channel_usage_hourly
    where subscription_id = ${subscriptionId} and (turn_count <> 0 or tokens_used <> 0 or raw_tokens <> 0)
    order by 1, 2, 3, 4`.execute(database.db)
  const users = await sql<Record<string, unknown>>`
    select (make_date(year, 1, 1) + i)::text as day, channel, chatbot_id, user_identifier
    from channel_user_days, generate_series(0, 365) as i
    where subscription_id = ${subscriptionId} and get_bit(days, i) = 1 order by 1, 2, 3, 4`.execute(
    database.db,
  )
  // Each map's stored bounds (migration 0027) against its bits, read one by one.
  const bounds = await sql<Record<string, unknown>>`
    select year, channel, chatbot_id, user_identifier, first_day, last_day,
      (select min(i) from generate_series(0, 365) as i where get_bit(days, i) = 1) as first_bit,
      (select max(i) from generate_series(0, 365) as i where get_bit(days, i) = 1) as last_bit
    from channel_user_days where subscription_id = ${subscriptionId} order by 1, 2, 3, 4`.execute(database.db)
  for (const row of bounds.rows)
    expect([row.first_day, row.last_day], JSON.stringify(row)).toEqual([row.first_bit, row.last_bit])
  return { buckets: buckets.rows, hourly: hourly.rows, users: users.rows, bounds: bounds.rows }
}

/** Asserts that the rollups equal their recomputation from the ledger, and returns them. */
async function expectConsistent(subscriptionId: string) {
  const maintained = await snapshot(subscriptionId)
  await rebuildRollups(database.db, subscriptionId)
  const rebuilt = await snapshot(subscriptionId)
  expect(maintained).toEqual(rebuilt)
  return rebuilt
}

async function subscription(): Promise<{ id: string; who: { entityId: string; entityType: string } }> {
  const who = entity("rollup")
  const sub = await meter.createSubscription({
    ...who,
    plan: "enterprise",
    tokenLimit: 1_000_000_000,
    periodStart: "2026-01-01T00:00:00Z",
  })
  return { id: sub.id, who }
}

/** Many turns in one statement, as a group commit or an import writes them. */
async function insertMany(
  subscriptionId: string,
  rows: Array<{
    at: string
    channel: string
    user: string | null
    tokens: number
    denied?: string
    chatbot?: string
  }>,
) {
  await sql`
    insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, operation_type, status,
      denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
    select ${subscriptionId}::uuid, x.channel, x.chatbot, x.user_identifier, 'chat',
      case when x.denied is null then 'estimated' else 'denied' end, x.denied, x.tokens, x.tokens,
      case when x.denied is null then x.tokens else 0 end, 1, x.at
    from jsonb_to_recordset(${JSON.stringify(rows.map((r) => ({ ...r, user_identifier: r.user })))}::jsonb)
      as x(at timestamptz, channel text, chatbot text, user_identifier text, tokens bigint, denied text)`.execute(
    database.db,
  )
}

describe("rollup triggers", () => {
  it("a multi-row insert adds every row to its 15-minute bucket and records each user once per UTC day", async () => {
    const { id } = await subscription()
    await insertMany(id, [
      { at: "2026-02-01T10:00:00Z", channel: "website", user: "a", tokens: 10 },
      { at: "2026-02-01T10:14:59Z", channel: "website", user: "a", tokens: 20 },
      { at: "2026-02-01T10:15:00Z", channel: "website", user: "b", tokens: 5 },
      { at: "2026-02-01T23:59:59Z", channel: "api", user: "a", tokens: 7 },
      { at: "2026-02-02T00:00:00Z", channel: "api", user: "a", tokens: 1 },
      { at: "2026-02-02T00:00:00Z", channel: "api", user: "", tokens: 1 },
      { at: "2026-02-02T00:00:00Z", channel: "api", user: null, tokens: 1 },
      { at: "2026-02-02T00:01:00Z", channel: "api", user: "c", tokens: 9, denied: "rate_limited" },
    ])
    const rollups = await expectConsistent(id)
    expect(rollups.buckets).toHaveLength(5)
    expect(rollups.buckets[0]).toMatchObject({
      channel: "website",
      denial_reason: "",
      turn_count: 2,
      tokens_used: 30,
    })
    expect(rollups.users).toEqual([
      { day: "2026-02-01", channel: "api", chatbot_id: "", user_identifier: "a" },
      { day: "2026-02-01", channel: "website", chatbot_id: "", user_identifier: "a" },
      { day: "2026-02-01", channel: "website", chatbot_id: "", user_identifier: "b" },
      { day: "2026-02-02", channel: "api", chatbot_id: "", user_identifier: "a" },
    ])
  })

  it("a consume batch's rollups equal their recomputation, also with a plain insert between batches in one transaction", async () => {
    const a = await subscription()
    const b = await subscription()
    const charge = (subscriptionId: string, at: string, extra: Partial<BatchTurn> = {}): BatchTurn => ({
      id: uuidV7(Date.parse(at)),
      subscriptionId,
      channel: "website",
      chatbotId: "bot",
      sessionId: null,
      userIdentifier: "u1",
      operationType: "chat",
      estimatedTokens: 40,
      multiplierHundredths: 150,
      messageLength: null,
      idempotencyKey: null,
      createdAt: new Date(at),
      billedTokens: 60,
      periodStart: new Date("2026-02-01T00:00:00Z"),
      scope: null,
      denialReason: null,
      priority: 5,
      ...extra,
    })
    await consumeBatch(database.db, [
      charge(a.id, "2026-02-03T10:14:59Z"),
      charge(a.id, "2026-02-03T10:15:00Z", { chatbotId: null, userIdentifier: "" }),
      charge(b.id, "2026-02-03T10:59:59Z", { channel: "api", userIdentifier: null }),
      charge(a.id, "2026-02-03T23:59:59Z", { channel: "api", userIdentifier: "u2" }),
      charge(b.id, "2026-02-04T00:00:00Z", { userIdentifier: "u1" }),
      charge(a.id, "2026-02-04T00:00:01Z", { denialReason: "rate_limited" }),
    ])
    // In one transaction: a ledger insert between batches is rolled up once, and so is each batch.
    await database.db.transaction().execute(async (trx) => {
      await consumeBatch(trx, [charge(a.id, "2026-02-05T08:00:00Z")])
      await sql`insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, operation_type,
        status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
        values (${a.id}, 'website', 'bot', 'u3', 'chat', 'estimated', 5, 5, 5, 1, '2026-02-05T08:00:00Z')`.execute(
        trx,
      )
      await consumeBatch(trx, [charge(b.id, "2026-02-05T08:00:00Z", { idempotencyKey: "k" })])
      await consumeBatch(trx, [charge(b.id, "2026-02-05T08:01:00Z")])
    })
    const rollupsA = await expectConsistent(a.id)
    const rollupsB = await expectConsistent(b.id)
    expect(rollupsA.buckets.map((row) => row.turn_count)).toEqual([1, 1, 1, 1, 2])
    expect(rollupsB.users).toHaveLength(2)
  })

  it("settlement moves the bucket's tokens by the difference", async () => {
    const { id, who } = await subscription()
    const decision = await meter.validateAndConsumeTokens(
      turn(who, { estimatedTokens: 100, channel: "whatsapp" }),
    )
    if (!decision.allowed) throw new Error("denied")
    await meter.settle(decision.usageId, { actualTokens: 40 })
    const rollups = await expectConsistent(id)
    expect(rollups.buckets).toEqual([
      expect.objectContaining({ turn_count: 1, tokens_used: 48, raw_tokens: 40 }),
    ])
  })

  it("a correction of who, where or when moves the turn and forgets a user with no other turn that day", async () => {
    const { id } = await subscription()
    await insertMany(id, [
      { at: "2026-03-01T10:00:00Z", channel: "website", user: "a", tokens: 10 },
      { at: "2026-03-01T11:00:00Z", channel: "website", user: "b", tokens: 10 },
      { at: "2026-03-01T12:00:00Z", channel: "website", user: "b", tokens: 10 },
    ])
    await sql`update token_usage_logs set user_identifier = 'z', created_at = created_at + interval '2 days'
      where subscription_id = ${id} and user_identifier in ('a', 'b') and created_at < '2026-03-01T11:30:00Z'`.execute(
      database.db,
    )
    const rollups = await expectConsistent(id)
    expect(rollups.users).toEqual([
      { day: "2026-03-01", channel: "website", chatbot_id: "", user_identifier: "b" },
      { day: "2026-03-03", channel: "website", chatbot_id: "", user_identifier: "z" },
    ])
    await sql`update token_usage_logs set status = 'denied', denial_reason = 'quota_exceeded', billed_tokens = 0
      where subscription_id = ${id} and user_identifier = 'b'`.execute(database.db)
    expect((await expectConsistent(id)).users).toEqual([
      { day: "2026-03-03", channel: "website", chatbot_id: "", user_identifier: "z" },
    ])
  })

  it("each chatbot has its own buckets and user days, and a correction of the chatbot moves the turn", async () => {
    const { id } = await subscription()
    await insertMany(id, [
      { at: "2026-05-01T10:00:00Z", channel: "website", user: "a", tokens: 10, chatbot: "sales" },
      { at: "2026-05-01T10:01:00Z", channel: "website", user: "a", tokens: 20, chatbot: "support" },
      { at: "2026-05-01T10:02:00Z", channel: "website", user: "b", tokens: 30 },
    ])
    const rollups = await expectConsistent(id)
    expect(rollups.buckets.map((b) => [b.chatbot_id, b.tokens_used])).toEqual([
      ["", 30],
      ["sales", 10],
      ["support", 20],
    ])
    await sql`update token_usage_logs set chatbot_id = 'support'
      where subscription_id = ${id} and chatbot_id = 'sales'`.execute(database.db)
    const moved = await expectConsistent(id)
    expect(moved.buckets.map((b) => [b.chatbot_id, b.turn_count, b.tokens_used])).toEqual([
      ["", 1, 30],
      ["support", 2, 30],
    ])
    expect(moved.users).toEqual([
      { day: "2026-05-01", channel: "website", chatbot_id: "", user_identifier: "b" },
      { day: "2026-05-01", channel: "website", chatbot_id: "support", user_identifier: "a" },
    ])
  })

  it("deleting turns subtracts them and drops emptied buckets", async () => {
    const { id } = await subscription()
    await insertMany(id, [
      { at: "2026-04-01T10:00:00Z", channel: "telegram", user: "a", tokens: 10 },
      { at: "2026-04-01T10:05:00Z", channel: "telegram", user: "a", tokens: 11 },
      { at: "2026-04-01T20:00:00Z", channel: "telegram", user: "b", tokens: 12 },
    ])
    await sql`delete from token_usage_logs where subscription_id = ${id} and raw_tokens in (10, 12)`.execute(
      database.db,
    )
    const rollups = await expectConsistent(id)
    expect(rollups.buckets).toEqual([expect.objectContaining({ turn_count: 1, tokens_used: 11 })])
    expect(rollups.users).toEqual([
      { day: "2026-04-01", channel: "telegram", chatbot_id: "", user_identifier: "a" },
    ])
    const emptied = await sql<{ n: number }>`select count(*)::int as n from channel_usage_buckets
      where subscription_id = ${id} and turn_count = 0`.execute(database.db)
    expect(emptied.rows[0]?.n).toBe(0)
  })

  it("erasing a user's turns of several days in one statement forgets each of those days, and keeps the map's bounds", async () => {
    const { id } = await subscription()
    await insertMany(id, [
      { at: "2026-04-02T10:00:00Z", channel: "telegram", user: "erased", tokens: 1 },
      { at: "2026-04-05T10:00:00Z", channel: "telegram", user: "erased", tokens: 2 },
      { at: "2026-04-09T10:00:00Z", channel: "telegram", user: "erased", tokens: 3 },
      { at: "2026-04-20T10:00:00Z", channel: "telegram", user: "erased", tokens: 4 },
      { at: "2026-04-05T11:00:00Z", channel: "telegram", user: "kept", tokens: 5 },
    ])
    // The first, a middle and the last day at once: the map keeps April 9 only.
    await sql`delete from token_usage_logs where subscription_id = ${id} and raw_tokens in (1, 2, 4)`.execute(
      database.db,
    )
    const rollups = await expectConsistent(id)
    expect(rollups.users).toEqual([
      { day: "2026-04-05", channel: "telegram", chatbot_id: "", user_identifier: "kept" },
      { day: "2026-04-09", channel: "telegram", chatbot_id: "", user_identifier: "erased" },
    ])
    expect(rollups.bounds.map((b) => [b.user_identifier, b.first_day, b.last_day])).toEqual([
      ["erased", 98, 98],
      ["kept", 94, 94],
    ])
  })

  it("concurrent turns on one bucket are all counted", async () => {
    const { id, who } = await subscription()
    const decisions = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        meter.validateAndConsumeTokens(
          turn(who, {
            estimatedTokens: 10 + i,
            channel: i % 2 ? "api" : "website",
            userIdentifier: `u${i % 7}`,
          }),
        ),
      ),
    )
    const allowed = decisions.filter((d) => d.allowed).length
    const rollups = await expectConsistent(id)
    const turns = rollups.buckets.reduce((sum, b) => sum + Number(b.turn_count), 0)
    expect(turns).toBe(60)
    expect(allowed).toBeGreaterThan(0)
  })

  it("a tenant sees only its own rollup rows", async () => {
    const mine = await subscription()
    const theirs = await subscription()
    await insertMany(mine.id, [{ at: "2026-05-01T10:00:00Z", channel: "api", user: "m", tokens: 3 }])
    await insertMany(theirs.id, [{ at: "2026-05-01T10:00:00Z", channel: "api", user: "t", tokens: 4 }])
    const seen = await database.withTenant(mine.id, async (trx) => {
      const buckets = await sql<{ subscription_id: string }>`
        select subscription_id from channel_usage_buckets union all
        select subscription_id from channel_usage_hourly union all
        select subscription_id from channel_user_days`.execute(trx)
      return new Set(buckets.rows.map((row) => row.subscription_id))
    })
    expect([...seen]).toEqual([mine.id])
  })

  it("the channel_usage_analytics view sums the buckets per local day in the subscription's timezone", async () => {
    const who = entity("view")
    const sub = await meter.createSubscription({
      ...who,
      plan: "enterprise",
      timezone: "Asia/Kathmandu",
      periodStart: "2026-01-01T00:00:00Z",
    })
    await insertMany(sub.id, [
      { at: "2026-06-01T18:14:59Z", channel: "website", user: "a", tokens: 5 }, // 23:59:59 on June 1
      { at: "2026-06-01T18:15:00Z", channel: "website", user: "a", tokens: 7 }, // 00:00 on June 2
      { at: "2026-06-01T18:16:00Z", channel: "website", user: "a", tokens: 1, denied: "rate_limited" },
    ])
    const rows = await sql<Record<string, unknown>>`
      select usage_date::text as usage_date, tokens_used, message_count, denied_count from channel_usage_analytics
      where subscription_id = ${sub.id} order by usage_date`.execute(database.db)
    expect(rows.rows).toEqual([
      { usage_date: "2026-06-01", tokens_used: 5, message_count: 1, denied_count: 0 },
      { usage_date: "2026-06-02", tokens_used: 7, message_count: 1, denied_count: 1 },
    ])
  })
})

describe("unique users from the day maps", () => {
  it("decides a map by its first and last day, and ANDs only a map that spans the range, across a new year too", async () => {
    const { id } = await subscription()
    const days: Array<[string, string, string]> = [
      // One range inside a year (whole days June 10-20, edges from the ledger on the 9th and the 21st).
      ["gap", "website", "2026-06-01T08:00:00Z"],
      ["gap", "website", "2026-06-30T08:00:00Z"],
      ["mid", "website", "2026-06-01T08:00:00Z"],
      ["mid", "website", "2026-06-15T08:00:00Z"],
      ["mid", "website", "2026-06-30T08:00:00Z"],
      ["first-in", "whatsapp", "2026-06-12T08:00:00Z"],
      ["first-in", "whatsapp", "2026-06-30T08:00:00Z"],
      ["last-in", "whatsapp", "2026-06-01T08:00:00Z"],
      ["last-in", "whatsapp", "2026-06-18T08:00:00Z"],
      ["at-bounds", "api", "2026-06-10T00:00:00Z"],
      ["at-bounds", "api", "2026-06-20T23:59:59Z"],
      ["edge-only", "api", "2026-06-09T13:00:00Z"],
      ["edge-only", "api", "2026-06-05T13:00:00Z"],
      ["edge-before", "api", "2026-06-09T11:00:00Z"],
      ["edge-after", "telegram", "2026-06-21T05:00:00Z"],
      ["edge-after-out", "telegram", "2026-06-21T07:00:00Z"],
      // A range across the new year (whole days December 28 to January 3).
      ["december", "website", "2026-12-20T08:00:00Z"],
      ["january", "website", "2027-01-10T08:00:00Z"],
      ["both-sides", "website", "2026-12-20T08:00:00Z"],
      ["both-sides", "website", "2027-01-10T08:00:00Z"],
      ["old-year", "messenger", "2026-03-01T08:00:00Z"],
      ["old-year", "messenger", "2026-12-30T08:00:00Z"],
      ["new-year", "messenger", "2027-01-02T08:00:00Z"],
      ["new-year", "messenger", "2027-03-01T08:00:00Z"],
    ]
    await insertMany(
      id,
      days.map(([user, channel, at]) => ({ at, channel, user, tokens: 1 })),
    )
    const ranges = [
      { start: "2026-06-09T12:00:00Z", end: "2026-06-21T06:00:00Z" },
      { start: "2026-12-28T00:00:00Z", end: "2027-01-04T00:00:00Z" },
      { start: "2026-06-10T00:00:00Z", end: "2027-01-04T00:00:00Z" },
    ].map((r) => ({ subscriptionId: id, start: new Date(r.start), end: new Date(r.end), channels: CHANNELS }))
    // The same counts from the turns themselves, in JavaScript.
    const expected = ranges.map((range) => {
      const seen = days.filter(([, , at]) => {
        const t = Date.parse(at)
        return t >= range.start.getTime() && t < range.end.getTime()
      })
      const usersOn = (channel?: string) =>
        new Set(seen.filter(([, c]) => channel === undefined || c === channel).map(([u]) => u)).size
      return [
        { channel: null, users: usersOn(), people: usersOn() },
        ...CHANNELS.map((channel) => ({ channel, users: usersOn(channel), people: usersOn(channel) })),
      ]
    })
    expect(expected[0]?.[0]?.users).toBe(6) // mid, first-in, last-in, at-bounds, edge-only, edge-after
    expect(expected[1]?.[0]?.users).toBe(2) // old-year, new-year
    const fromMaps = await rollupQueries.uniqueUsers(database.db, ranges)
    expect(fromMaps).toEqual(expected)
    expect(await ledgerQueries.uniqueUsers(database.db, ranges)).toEqual(expected)
    // Each kind of map is there: "gap" and "mid" span the first range's days (only "mid" has one inside).
    const maps = await sql<{ user_identifier: string; year: number; first_day: number; last_day: number }>`
      select user_identifier, year, first_day, last_day from channel_user_days
      where subscription_id = ${id} and user_identifier in ('gap', 'mid', 'both-sides') order by 1, 2`.execute(
      database.db,
    )
    expect(maps.rows).toEqual([
      { user_identifier: "both-sides", year: 2026, first_day: 353, last_day: 353 },
      { user_identifier: "both-sides", year: 2027, first_day: 9, last_day: 9 },
      { user_identifier: "gap", year: 2026, first_day: 151, last_day: 180 },
      { user_identifier: "mid", year: 2026, first_day: 151, last_day: 180 },
    ])
  })
})
