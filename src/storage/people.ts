/**
 * People across channels (migration 0017): which (channel, user_identifier) pairs belong to one person.
 * Runs in the caller's transaction and scope (row level security applies).
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import type { Channel } from "../core/channels.js"
import type { DB } from "./schema.js"

export interface Identifier {
  channel: Channel
  userIdentifier: string
}

export interface PersonLink extends Identifier {
  personId: string
  linkedAt: Date
}

/** The person's identifiers, in channel and identifier order. */
export async function findPersonIdentifiers(
  db: Kysely<DB>,
  subscriptionId: string,
  personId: string,
): Promise<PersonLink[]> {
  const rows = await db
    .selectFrom("person_identifiers")
    .select(["channel", "user_identifier", "person_id", "linked_at"])
    .where("subscription_id", "=", subscriptionId)
    .where("person_id", "=", personId)
    .orderBy("channel")
    .orderBy("user_identifier")
    .execute()
  return rows.map((row) => ({
    channel: row.channel as Channel,
    userIdentifier: row.user_identifier,
    personId: row.person_id,
    linkedAt: row.linked_at,
  }))
}

/** The owners of the given identifiers, where they have one. */
export async function findOwners(
  db: Kysely<DB>,
  subscriptionId: string,
  identifiers: readonly Identifier[],
): Promise<PersonLink[]> {
  if (identifiers.length === 0) return []
  const rows = await db
    .selectFrom("person_identifiers")
    .select(["channel", "user_identifier", "person_id", "linked_at"])
    .where("subscription_id", "=", subscriptionId)
    .where((eb) =>
      eb.or(
        identifiers.map((identifier) =>
          eb.and([
            eb("channel", "=", identifier.channel),
            eb("user_identifier", "=", identifier.userIdentifier),
          ]),
        ),
      ),
    )
    .execute()
  return rows.map((row) => ({
    channel: row.channel as Channel,
    userIdentifier: row.user_identifier,
    personId: row.person_id,
    linkedAt: row.linked_at,
  }))
}

/**
 * Makes `identifiers` the person's whole set: unlinks the ones left out and links the new ones. The
 * caller has checked no identifier belongs to another person; the primary key still refuses a race.
 */
export async function replacePersonIdentifiers(
  db: Kysely<DB>,
  subscriptionId: string,
  personId: string,
  identifiers: readonly Identifier[],
  now: Date,
): Promise<void> {
  await db
    .deleteFrom("person_identifiers")
    .where("subscription_id", "=", subscriptionId)
    .where("person_id", "=", personId)
    .execute()
  if (identifiers.length === 0) return
  await db
    .insertInto("person_identifiers")
    .values(
      identifiers.map((identifier) => ({
        subscription_id: subscriptionId,
        channel: identifier.channel,
        user_identifier: identifier.userIdentifier,
        person_id: personId,
        linked_at: now,
      })),
    )
    .execute()
}

/** The person an identifier is linked to, or null: what experiment assignment asks on the hot path. */
export async function findPersonOf(
  db: Kysely<DB>,
  subscriptionId: string,
  channel: Channel,
  userIdentifier: string,
): Promise<string | null> {
  const row = await db
    .selectFrom("person_identifiers")
    .select("person_id")
    .where("subscription_id", "=", subscriptionId)
    .where("channel", "=", channel)
    .where("user_identifier", "=", userIdentifier)
    .executeTakeFirst()
  return row?.person_id ?? null
}

/** The SQL of a ledger row's person key, as core/experiments.ts personKey writes it. */
export const PERSON_KEY_SQL = sql<string>`coalesce('p:' || p.person_id, 'i:' || l.channel || ':' || l.user_identifier)`

/**
 * The first conversion of each person in [start, end], as rows (person, occurred_at). An outcome's person:
 * the one its (channel, user_identifier) is linked to; an outcome without a channel belongs to its
 * identifier on every channel (an unlinked identifier is a person per channel), or to the person any of them
 * is linked to.
 */
export function firstConversionsSql(subscriptionId: string, start: Date, end: Date): RawBuilder<unknown> {
  return sql`
    select person, min(occurred_at) as occurred_at from (
      select coalesce('p:' || p.person_id, 'i:' || c.channel || ':' || o.user_identifier) as person, o.occurred_at
      from outcomes o
      cross join lateral unnest(case when o.channel is null
        then array['website', 'whatsapp', 'messenger', 'instagram', 'telegram', 'api']
        else array[o.channel] end) as c (channel)
      left join person_identifiers p
        on p.subscription_id = o.subscription_id and p.channel = c.channel and p.user_identifier = o.user_identifier
      where o.subscription_id = ${subscriptionId} and o.occurred_at >= ${start} and o.occurred_at <= ${end}
    ) x group by person`
}

/**
 * The first conversion of each person in [start, end] ({@link firstConversionsSql}), or undefined when the
 * subscription recorded no outcome there (then no conversion figures are given at all).
 */
export async function firstConversions(
  db: Kysely<DB>,
  subscriptionId: string,
  start: Date,
  end: Date,
): Promise<Map<string, Date> | undefined> {
  const result = await sql<{ person: string; occurred_at: Date | string }>`${firstConversionsSql(
    subscriptionId,
    start,
    end,
  )}`.execute(db)
  if (result.rows.length === 0) return undefined
  return new Map(
    result.rows.map((row) => [
      row.person,
      row.occurred_at instanceof Date ? row.occurred_at : new Date(row.occurred_at),
    ]),
  )
}
