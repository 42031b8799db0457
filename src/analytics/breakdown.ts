/**
 * The breakdown of a period's turns by chatbot, end user or session: per item its tokens, turns, users,
 * denials and last activity, sorted and paged by offset.
 *
 * Read from the ledger (the subscription's rows of the period, through its (subscription_id, created_at)
 * index): end users and sessions are too many to keep in rollups, and an item's distinct sessions and exact
 * last activity are not in them either (so not even the breakdown by chatbot can be read from the rollups
 * alone, though they are keyed by chatbot). The cost grows with the period's turns; a page past the first
 * re-runs the aggregate.
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import { PERSON_KEY_SQL } from "../storage/people.js"
import type { DB } from "../storage/schema.js"
import type { QueryRange } from "./queries.js"

export const BREAKDOWN_DIMENSIONS = ["chatbot", "user", "session"] as const
export type BreakdownDimension = (typeof BREAKDOWN_DIMENSIONS)[number]

export const BREAKDOWN_SORTS = [
  "tokens_used",
  "message_count",
  "denied_count",
  "turns",
  "unique_users",
  "sessions",
  "last_activity_at",
  "key",
] as const
export type BreakdownSort = (typeof BREAKDOWN_SORTS)[number]

/** One chatbot, end user or session over the period. */
export interface BreakdownItem {
  /** The chatbot id, user identifier or session id; null for the turns that named none. */
  key: string | null
  tokensUsed: number
  rawTokens: number
  messageCount: number
  deniedCount: number
  turns: number
  uniqueUsers: number
  /** Distinct people of the same turns (see analytics-schemas.ts unique_people). */
  uniquePeople: number
  sessions: number
  lastActivityAt: Date
}

export interface BreakdownPage {
  items: BreakdownItem[]
  totalItems: number
}

const COLUMN: Record<BreakdownDimension, RawBuilder<unknown>> = {
  chatbot: sql.ref("l.chatbot_id"),
  user: sql.ref("l.user_identifier"),
  session: sql.ref("l.session_id"),
}

const SORT_COLUMN: Record<BreakdownSort, RawBuilder<unknown>> = {
  tokens_used: sql.ref("tokens_used"),
  message_count: sql.ref("message_count"),
  denied_count: sql.ref("denied_count"),
  turns: sql.ref("turns"),
  unique_users: sql.ref("unique_users"),
  sessions: sql.ref("sessions"),
  last_activity_at: sql.ref("last_activity_at"),
  key: sql.ref("key"),
}

/** The turns of `range`: its subscription, period, channels and filters. */
export function breakdownWhere(range: QueryRange): RawBuilder<unknown> {
  const channels = sql.join(range.channels.map((channel) => sql.lit(channel)))
  return sql`subscription_id = ${range.subscriptionId} and created_at >= ${range.start}
    and created_at < ${range.end} and channel in (${channels})
    and ${range.chatbotId === undefined ? sql`true` : sql`chatbot_id = ${range.chatbotId}`}
    and ${range.userIdentifier === undefined ? sql`true` : sql`user_identifier = ${range.userIdentifier}`}`
}

interface BreakdownRow {
  key: string | null
  tokens_used: number | string
  raw_tokens: number | string
  message_count: number | string
  denied_count: number | string
  turns: number | string
  unique_users: number | string
  unique_people: number | string
  sessions: number | string
  last_activity_at: Date | string
  total_items: number | string
}

/**
 * One page of the breakdown of `range` by `by`. Ties are broken by key, so offsets page stably; an empty
 * key ('') counts with the turns that named none (null).
 * @example await breakdown(db, range, { by: "chatbot", sort: "tokens_used", order: "desc", limit: 50, offset: 0 })
 */
export async function breakdown(
  db: Kysely<DB>,
  range: QueryRange,
  page: { by: BreakdownDimension; sort: BreakdownSort; order: "asc" | "desc"; limit: number; offset: number },
): Promise<BreakdownPage> {
  const direction = page.order === "asc" ? sql`asc` : sql`desc`
  const where = breakdownWhere(range)
  // Two steps: one hash aggregate of the period's turns to (item, user, channel, session) groups ("triples"),
  // then each item over its groups, joined to the people's links for unique_people. Counting distinct users and sessions over the triples (a few per session) instead of
  // over every turn took the breakdown to 0.42-0.68 of the single aggregate's time at 200,000 turns on
  // PGlite, and to 1.09-1.34 of it on PostgreSQL, whose sorts are cheap (bench/breakdown-ab.ts,
  // bench/RESULTS.md): kept for the embedded default, where the seconds were.
  const result = await sql<BreakdownRow>`
    with triples as (
      select nullif(${COLUMN[page.by]}, '') as key, nullif(l.user_identifier, '') as user_identifier, l.channel,
        nullif(session_id, '') as session_key,
        coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0)::bigint as tokens_used,
        coalesce(sum(raw_tokens) filter (where status <> 'denied'), 0)::bigint as raw_tokens,
        count(*) filter (where status <> 'denied')::bigint as message_count,
        count(*)::bigint as turns,
        max(created_at) as last_activity_at
      from token_usage_logs as l
      where ${where}
      group by 1, 2, 3, 4
    ),
    items as (
      select key, sum(tokens_used)::bigint as tokens_used, sum(raw_tokens)::bigint as raw_tokens,
        sum(message_count)::bigint as message_count,
        (sum(turns) - sum(message_count))::bigint as denied_count, sum(turns)::bigint as turns,
        count(distinct l.user_identifier) filter (where message_count > 0)::bigint as unique_users,
        count(distinct ${PERSON_KEY_SQL})
          filter (where message_count > 0 and l.user_identifier is not null)::bigint as unique_people,
        count(distinct session_key)::bigint as sessions,
        max(last_activity_at) as last_activity_at
      from triples as l
      left join person_identifiers p on p.subscription_id = ${range.subscriptionId} and p.channel = l.channel
        and p.user_identifier = l.user_identifier
      group by key
    )
    select *, count(*) over ()::bigint as total_items from items
    order by ${SORT_COLUMN[page.sort]} ${direction} nulls last, key asc nulls first
    limit ${page.limit} offset ${page.offset}`.execute(db)
  const first = result.rows[0]
  let totalItems = first === undefined ? 0 : Number(first.total_items)
  if (first === undefined && page.offset > 0) {
    // Past the end: the window function saw no row, so count the items on their own.
    const counted = await sql<{ n: number | string }>`
      select count(*)::bigint as n
      from (select coalesce(${COLUMN[page.by]}, '') from token_usage_logs as l where ${where} group by 1) k`.execute(
      db,
    )
    totalItems = Number(counted.rows[0]?.n ?? 0)
  }
  return {
    totalItems,
    items: result.rows.map((row) => ({
      key: row.key,
      tokensUsed: Number(row.tokens_used),
      rawTokens: Number(row.raw_tokens),
      messageCount: Number(row.message_count),
      deniedCount: Number(row.denied_count),
      turns: Number(row.turns),
      uniqueUsers: Number(row.unique_users),
      uniquePeople: Number(row.unique_people),
      sessions: Number(row.sessions),
      lastActivityAt: new Date(row.last_activity_at),
    })),
  }
}
