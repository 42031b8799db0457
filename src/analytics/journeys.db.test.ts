/**
 * The journeys statement (journeyAggregates, all in SQL) against its definition (core/journeys.ts
 * assembleJourneys over the session rows), on PGlite and PostgreSQL: random people, channels, session ids
 * and gaps, identifiers linked two to a channel, ties in time, and outcomes with and without a channel.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { insertSubscription, openTestDatabase } from "../../test/support/database.js"
import { CHANNELS } from "../core/channels.js"
import { ManualClock } from "../core/clock.js"
import { assembleJourneys, journeysFromAggregates } from "../core/journeys.js"
import type { Database } from "../storage/database.js"
import { firstConversions } from "../storage/people.js"
import { JourneyService, journeyAggregates, personSessions } from "./journeys.js"

let database: Database

beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => database?.close())

const subscription = (name: string) => insertSubscription(database, name)

describe("the journeys statement", () => {
  const start = new Date("2026-03-01T00:00:00Z")
  const end = new Date("2026-03-08T00:00:00Z")

  it("gives the answer its definition gives from the session rows", async () => {
    const id = await subscription("journeys-sql")
    let seed = 11
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T
    const rows: string[] = []
    for (let u = 0; u < 150; u++) {
      // Times on a 10-minute grid, so sessions of different channels often start at the same instant.
      let at = start.getTime() + Math.floor(random() * 200) * 600_000
      for (let k = 0; k < 1 + Math.floor(random() * 6); k++) {
        const channel = pick(CHANNELS.slice(0, 4))
        const session = random() < 0.5 ? `'s-${u}-${k % 3}'` : "null"
        for (let n = 0; n < 1 + Math.floor(random() * 3); n++) {
          if (at < end.getTime()) {
            rows.push(
              `('${id}', '${channel}', ${session}, 'u${u}', 'chat', 'estimated', 1, 1, 1, 1, '${new Date(at).toISOString()}')`,
            )
          }
          at += pick([0, 600_000, 1_200_000, 1_800_000, 2_400_000])
        }
        at += pick([0, 600_000, 3_600_000 * 5])
      }
    }
    // In shuffled batches of a few turns, as consume writes them: the trigger's session rows see turns late
    // and out of order, and must still give the sessions of the turns.
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[rows[i], rows[j]] = [rows[j] as string, rows[i] as string]
    }
    for (let i = 0; i < rows.length; i += 7) {
      await sql
        .raw(`insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type,
          status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
          values ${rows.slice(i, i + 7).join(",")}`)
        .execute(database.db)
    }
    // A denied turn counts for nothing.
    await sql`insert into token_usage_logs (subscription_id, channel, user_identifier, operation_type, status,
        denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
      values (${id}, 'website', 'u0', 'chat', 'denied', 'rate_limited', 1, 1, 1, 1, '2026-03-02T00:00:00Z')`.execute(
      database.db,
    )
    // Persons: u0..u29 paired (u0 with u1 on every channel, ...), so one person has two identifiers a channel.
    const links: string[] = []
    for (let u = 0; u < 30; u++)
      for (const channel of CHANNELS)
        links.push(`('${id}', '${channel}', 'u${u}', 'pair-${Math.floor(u / 2)}', now())`)
    await sql
      .raw(`insert into person_identifiers (subscription_id, channel, user_identifier, person_id, linked_at)
        values ${links.join(",")}`)
      .execute(database.db)
    const outcomes: string[] = []
    for (let u = 0; u < 150; u += 4) {
      const channel = random() < 0.3 ? "null" : `'${pick(CHANNELS.slice(0, 4))}'`
      const at = new Date(start.getTime() + Math.floor(random() * 300) * 600_000 + 1234).toISOString()
      outcomes.push(`('${id}', 'buy', 'u${u}', ${channel}, '${at}', 'k${u}')`)
    }
    const compare = async (channels: readonly (typeof CHANNELS)[number][] = CHANNELS, from = start) => {
      const expected = assembleJourneys(
        await personSessions(database.db, id, from, end, channels),
        await firstConversions(database.db, id, from, new Date(end.getTime() - 1)),
      )
      const got = journeysFromAggregates(await journeyAggregates(database.db, id, from, end, channels))
      expect(got.people).toBeGreaterThan(20)
      expect(got.transitions.length).toBeGreaterThan(1)
      const { transitions, ...rest } = got
      const { transitions: expectedTransitions, ...expectedRest } = expected
      expect(rest).toEqual(expectedRest)
      expect(transitions.map(({ medianGapSeconds: _, ...t }) => t)).toEqual(
        expectedTransitions.map(({ medianGapSeconds: _, ...t }) => t),
      )
      for (const [i, t] of transitions.entries()) {
        expect(t.medianGapSeconds).toBeCloseTo(expectedTransitions[i]?.medianGapSeconds ?? Number.NaN, 6)
      }
      return got
    }
    const before = await compare()
    expect(before.convertedPeople).toBeNull()
    await sql
      .raw(`insert into outcomes (subscription_id, name, user_identifier, channel, occurred_at, idempotency_key)
        values ${outcomes.join(",")}`)
      .execute(database.db)
    const after = await compare()
    expect(after.convertedPeople).toBeGreaterThan(10)
    // A subset of channels: the statement filters like the session rows do.
    await compare(["website", "whatsapp"])
    // A period starting mid-day, after many sessions began: a session belongs to the period it starts in.
    await compare(CHANNELS, new Date("2026-03-01T13:20:00Z"))
    await compare(["whatsapp", "messenger", "instagram"], new Date("2026-03-01T13:20:00Z"))
  })

  it("keeps each identifier's sessions exact through late turns, links, corrections and deletions", async () => {
    const id = await subscription("journeys-store")
    const turn = async (user: string, channel: string, session: string | null, at: string) => {
      const row = await sql<{
        id: string
      }>`insert into token_usage_logs (subscription_id, channel, session_id,
          user_identifier, operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
        values (${id}, ${channel}, ${session}, ${user}, 'chat', 'estimated', 1, 1, 1, 1, ${at}) returning id`.execute(
        database.db,
      )
      return row.rows[0]?.id ?? ""
    }
    const link = (user: string, channel: string, person: string) =>
      sql`insert into person_identifiers (subscription_id, channel, user_identifier, person_id, linked_at)
        values (${id}, ${channel}, ${user}, ${person}, now())`.execute(database.db)
    /** Each person's session starts (ISO, by person and channel), from the journeys statement's tables. */
    const fromStore = async (from = start) => {
      const got = await journeyAggregates(database.db, id, from, end, CHANNELS)
      const turns = await personSessions(database.db, id, from, end, CHANNELS)
      // The tables and the turns give the same sessions, and the statement counts them.
      expect(got.sessions).toBe(turns.length)
      return turns
        .map((row) => `${row.person} ${row.channel} ${row.startedAt.toISOString().slice(11, 16)}`)
        .sort()
    }
    // Gap runs: 10:00 and 11:00 are two sessions; 10:20 arrives late and joins the first; 10:40 arrives
    // later still and joins the two (every turn under 30 minutes from the next).
    await turn("a", "website", null, "2026-03-02T10:00:00Z")
    await turn("a", "website", null, "2026-03-02T11:00:00Z")
    expect(await fromStore()).toEqual(["i:website:a website 10:00", "i:website:a website 11:00"])
    await turn("a", "website", null, "2026-03-02T10:20:00Z")
    expect(await fromStore()).toEqual(["i:website:a website 10:00", "i:website:a website 11:00"])
    const bridge = await turn("a", "website", null, "2026-03-02T10:40:00Z")
    expect(await fromStore()).toEqual(["i:website:a website 10:00"])
    // Exactly 30 minutes apart is a new session.
    await turn("a", "website", null, "2026-03-02T11:30:00Z")
    expect(await fromStore()).toEqual(["i:website:a website 10:00", "i:website:a website 11:30"])
    // Deleting the bridging turn splits the session again; moving the 11:30 turn to 11:20 joins it to 11:00.
    await sql`delete from token_usage_logs where id = ${bridge}`.execute(database.db)
    expect(await fromStore()).toEqual([
      "i:website:a website 10:00",
      "i:website:a website 11:00",
      "i:website:a website 11:30",
    ])
    await sql`update token_usage_logs set created_at = '2026-03-02T11:20:00Z'
      where subscription_id = ${id} and created_at = '2026-03-02T11:30:00Z'`.execute(database.db)
    expect(await fromStore()).toEqual(["i:website:a website 10:00", "i:website:a website 11:00"])
    await sql`delete from token_usage_logs where subscription_id = ${id}`.execute(database.db)
    expect(await fromStore()).toEqual([])
    expect(
      Number(
        (
          await sql<{
            n: string
          }>`select (select count(*) from journey_sessions where subscription_id = ${id})
            + (select count(*) from journey_gap_sessions where subscription_id = ${id}) as n`.execute(
            database.db,
          )
        ).rows[0]?.n,
      ),
    ).toBe(0)

    // Two identifiers on one channel: three sessions apart, one session once linked (12:00, 12:25, 12:50:
    // each turn under 30 minutes from the next), the link applying to the turns already written.
    await turn("b", "whatsapp", null, "2026-03-03T12:00:00Z")
    await turn("b", "whatsapp", null, "2026-03-03T12:50:00Z")
    await turn("c", "whatsapp", null, "2026-03-03T12:25:00Z")
    expect(await fromStore()).toEqual([
      "i:whatsapp:b whatsapp 12:00",
      "i:whatsapp:b whatsapp 12:50",
      "i:whatsapp:c whatsapp 12:25",
    ])
    await link("b", "whatsapp", "bee")
    await link("c", "whatsapp", "bee")
    expect(await fromStore()).toEqual(["p:bee whatsapp 12:00"])

    // A session belongs to the period it starts in: a run from 23:50 the day before, going on at 00:10, and
    // a session id begun the day before are not the period's; a new session at 01:00 is.
    await turn("d", "telegram", null, "2026-03-03T23:50:00Z")
    await turn("d", "telegram", null, "2026-03-04T00:10:00Z")
    await turn("d", "telegram", null, "2026-03-04T01:00:00Z")
    await turn("d", "api", "s-d", "2026-03-03T23:00:00Z")
    await turn("d", "api", "s-d", "2026-03-04T00:30:00Z")
    const day = new Date("2026-03-04T00:00:00Z")
    expect(await fromStore(day)).toEqual(["i:telegram:d telegram 01:00"])
    // Runs of linked identifiers chain across the period's start: e's run at 00:20 follows f's 23:40-00:05.
    await turn("f", "messenger", null, "2026-03-03T23:40:00Z")
    await turn("f", "messenger", null, "2026-03-04T00:05:00Z")
    await turn("e", "messenger", null, "2026-03-04T00:20:00Z")
    expect(await fromStore(day)).toContain("i:messenger:e messenger 00:20")
    await link("e", "messenger", "eff")
    await link("f", "messenger", "eff")
    expect((await fromStore(day)).filter((row) => row.includes("messenger"))).toEqual([])
    // One session id used by two identifiers, one of them the day before: two people's sessions apart,
    // one person's session begun the day before once linked.
    await turn("g", "instagram", "s-shared", "2026-03-03T20:00:00Z")
    await turn("h", "instagram", "s-shared", "2026-03-04T02:00:00Z")
    expect((await fromStore(day)).filter((row) => row.includes("instagram"))).toEqual([
      "i:instagram:h instagram 02:00",
    ])
    await link("g", "instagram", "gee")
    await link("h", "instagram", "gee")
    expect((await fromStore(day)).filter((row) => row.includes("instagram"))).toEqual([])
    // A denied turn makes no session.
    await sql`insert into token_usage_logs (subscription_id, channel, user_identifier, operation_type, status,
        denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
      values (${id}, 'website', 'z', 'chat', 'denied', 'rate_limited', 1, 1, 1, 1, '2026-03-05T00:00:00Z')`.execute(
      database.db,
    )
    expect((await fromStore(day)).filter((row) => row.includes(":z "))).toEqual([])
  })

  it("answers nobody for no channel or no turn", async () => {
    const id = await subscription("journeys-empty")
    const none = journeysFromAggregates(await journeyAggregates(database.db, id, start, end, []))
    expect(none).toEqual(assembleJourneys([]))
    const quiet = journeysFromAggregates(await journeyAggregates(database.db, id, start, end, CHANNELS))
    expect(quiet).toEqual(assembleJourneys([]))
  })
})

describe("the stored journeys answers", () => {
  const query = { from: "2026-03-01", to: "2026-03-07", tz: "UTC" }
  const turn = (id: string, user: string, channel: string, at: string) =>
    sql`insert into token_usage_logs (subscription_id, channel, user_identifier, operation_type, status,
        estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
      values (${id}, ${channel}, ${user}, 'chat', 'estimated', 1, 1, 1, 1, ${at})`.execute(database.db)
  const link = (id: string, user: string, channel: string, person: string) =>
    sql`insert into person_identifiers (subscription_id, channel, user_identifier, person_id, linked_at)
      values (${id}, ${channel}, ${user}, ${person}, now())`.execute(database.db)

  it("serve an answer up to 5 minutes old, a change of links never, and fresh=true computes now", async () => {
    const id = await subscription("journeys-stored")
    const clock = new ManualClock(Date.parse("2026-03-08T12:00:00Z"))
    // Every answer is stored (a zero threshold), as the slow answers of a big subscription are.
    const journeys = new JourneyService({ database, clock, storeAfterMs: 0 })
    await turn(id, "a", "website", "2026-03-02T10:00:00Z")
    await turn(id, "b", "whatsapp", "2026-03-02T11:00:00Z")
    const first = await journeys.journeys(id, query)
    expect([first.people, first.sessions]).toEqual([2, 2])
    expect(first.computedAt.toISOString()).toBe("2026-03-08T12:00:00.000Z")

    // A new turn is not in the stored answer while it is at most 5 minutes old; fresh=true has it.
    await turn(id, "b", "website", "2026-03-03T09:00:00Z")
    clock.set(Date.parse("2026-03-08T12:05:00Z"))
    const stored = await journeys.journeys(id, query)
    expect([stored.people, stored.sessions]).toEqual([2, 2])
    expect(stored.computedAt.toISOString()).toBe("2026-03-08T12:00:00.000Z")
    const fresh = await journeys.journeys(id, query, undefined, { fresh: true })
    expect([fresh.people, fresh.sessions]).toEqual([3, 3])
    expect(fresh.computedAt.toISOString()).toBe("2026-03-08T12:05:00.000Z")
    // fresh=true stored what it computed; past the bound, the read computes again.
    await turn(id, "c", "telegram", "2026-03-03T10:00:00Z")
    clock.set(Date.parse("2026-03-08T12:10:00.001Z"))
    const aged = await journeys.journeys(id, query)
    expect([aged.people, aged.sessions]).toEqual([4, 4])

    // Links apply to past turns: a link made now is in the next answer, stored or not.
    await link(id, "b", "whatsapp", "bee")
    await link(id, "b", "website", "bee")
    const linked = await journeys.journeys(id, query)
    expect([linked.people, linked.sessions]).toEqual([3, 4])
    expect(linked.transitions).toEqual([
      expect.objectContaining({ from: "whatsapp", to: "website", count: 1 }),
    ])
    // Another request (other channels) is stored apart.
    const some = await journeys.journeys(id, { ...query, channels: "telegram" })
    expect([some.people, some.sessions]).toEqual([1, 1])
  })

  it("are re-derived in the background before they reach the bound, and stale ones at once", async () => {
    const id = await subscription("journeys-refresh")
    const clock = new ManualClock(Date.parse("2026-03-08T12:00:00Z"))
    const journeys = new JourneyService({ database, clock, storeAfterMs: 0 })
    await turn(id, "a", "website", "2026-03-02T10:00:00Z")
    await journeys.journeys(id, query)
    await turn(id, "a", "api", "2026-03-02T12:00:00Z")
    const mine = () =>
      sql<{
        computed_at: Date
      }>`select computed_at from journey_answers where subscription_id = ${id}`.execute(database.db)
    // Not yet 3 minutes old: nothing to re-derive (of this subscription).
    clock.set(Date.parse("2026-03-08T12:02:00Z"))
    await journeys.refreshStored(1000)
    expect(new Date((await mine()).rows[0]?.computed_at ?? 0).toISOString()).toBe("2026-03-08T12:00:00.000Z")
    clock.set(Date.parse("2026-03-08T12:03:30Z"))
    await journeys.refreshStored(1000)
    expect(new Date((await mine()).rows[0]?.computed_at ?? 0).toISOString()).toBe("2026-03-08T12:03:30.000Z")
    const read = await journeys.journeys(id, query)
    expect([read.sessions, read.computedAt.toISOString()]).toEqual([2, "2026-03-08T12:03:30.000Z"])
    // A link makes it stale at once; the job re-derives it with the link.
    await link(id, "a", "website", "ay")
    await link(id, "a", "api", "ay")
    const stale = await sql<{ stale: boolean }>`select computed_at = '-infinity' as stale from journey_answers
      where subscription_id = ${id}`.execute(database.db)
    expect(stale.rows).toEqual([{ stale: true }])
    await journeys.refreshStored(1000)
    const rederived = await journeys.journeys(id, query)
    expect([rederived.people, rederived.computedAt.toISOString()]).toEqual([1, "2026-03-08T12:03:30.000Z"])
    // Not read for a day: removed.
    clock.set(Date.parse("2026-03-09T12:04:00Z"))
    await journeys.refreshStored(1000)
    expect((await mine()).rows).toEqual([])
  })

  it("are each tenant's own", async () => {
    const mineId = await subscription("journeys-tenant-a")
    const otherId = await subscription("journeys-tenant-b")
    const clock = new ManualClock(Date.parse("2026-03-08T12:00:00Z"))
    const journeys = new JourneyService({ database, clock, storeAfterMs: 0 })
    await turn(mineId, "a", "website", "2026-03-02T10:00:00Z")
    await journeys.journeys(mineId, query, { subscriptionId: mineId })
    await expect(journeys.journeys(mineId, query, { subscriptionId: otherId })).rejects.toMatchObject({
      code: "subscription_not_found",
    })
    const seen = await database.withTenant(otherId, (db) =>
      sql<{ n: string }>`select count(*) as n from journey_answers`.execute(db),
    )
    expect(Number(seen.rows[0]?.n)).toBe(0)
    const own = await database.withTenant(mineId, (db) =>
      sql<{ n: string }>`select count(*) as n from journey_answers`.execute(db),
    )
    expect(Number(own.rows[0]?.n)).toBe(1)
  })
})
