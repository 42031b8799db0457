/**
 * The journeys statement (journeyAggregates, all in SQL) against its definition (core/journeys.ts
 * assembleJourneys over the session rows), on PGlite and PostgreSQL: random people, channels, session ids
 * and gaps, identifiers linked two to a channel, ties in time, and outcomes with and without a channel.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import { CHANNELS } from "../core/channels.js"
import { assembleJourneys, journeysFromAggregates } from "../core/journeys.js"
import type { Database } from "../storage/database.js"
import { firstConversions } from "../storage/people.js"
import { journeyAggregates, personSessions } from "./journeys.js"

let database: Database

beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => database?.close())

async function subscription(name: string): Promise<string> {
  const row = await sql<{ id: string }>`
    insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
    values (${`${name}-${process.pid}-${Math.random()}`}, 'org', 'enterprise', 1000000000, 'UTC', '2026-03-01T00:00:00Z')
    returning id`.execute(database.db)
  return row.rows[0]?.id ?? ""
}

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
    await sql
      .raw(`insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type,
        status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at) values ${rows.join(",")}`)
      .execute(database.db)
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
    const compare = async (channels: readonly (typeof CHANNELS)[number][] = CHANNELS) => {
      const expected = assembleJourneys(
        await personSessions(database.db, id, start, end, channels),
        await firstConversions(database.db, id, start, new Date(end.getTime() - 1)),
      )
      const got = journeysFromAggregates(await journeyAggregates(database.db, id, start, end, channels))
      expect(got.people).toBeGreaterThan(50)
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
  })

  it("answers nobody for no channel or no turn", async () => {
    const id = await subscription("journeys-empty")
    const none = journeysFromAggregates(await journeyAggregates(database.db, id, start, end, []))
    expect(none).toEqual(assembleJourneys([]))
    const quiet = journeysFromAggregates(await journeyAggregates(database.db, id, start, end, CHANNELS))
    expect(quiet).toEqual(assembleJourneys([]))
  })
})
