/**
 * The breakdown's query, before and after (issue 16), A/B in one run on the same data: the data of
 * bench/drilldown.ts (one subscription, N turns over 90 days, 3 chatbots, 5,000 end users, 3% denied), then
 * for each dimension the 30-day breakdown (first page of 50, by tokens) with the query issue 16 shipped
 * ("before": one aggregate with count(distinct ...)), with candidate formulations (hash aggregates over a
 * materialized CTE; (item, user, session) triples, then count(distinct) over them) and with a bare scan
 * of the same rows (the floor), round robin. Every candidate's answer is compared with "before" first.
 *
 * Usage: npx tsx bench/breakdown-ab.ts [--turns 200000] [--repeat 5] [--database-url postgres://...]
 * (PGlite in memory unless a database URL is given; that database is migrated and keeps the bench's
 * subscription and turns: give it a database made for the run, and drop it after. Deleting 200,000 turns
 * through the rollup triggers takes far longer than the bench.)
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { type Kysely, type RawBuilder, sql } from "kysely"
import {
  BREAKDOWN_DIMENSIONS,
  type BreakdownDimension,
  type BreakdownPage,
  breakdown,
  breakdownWhere,
} from "../src/analytics/breakdown.js"
import type { QueryRange } from "../src/analytics/queries.js"
import { CHANNELS } from "../src/core/channels.js"
import { openDatabase } from "../src/storage/database.js"
import type { DB } from "../src/storage/schema.js"

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "200000" },
    repeat: { type: "string", default: "5" },
    "database-url": { type: "string" },
  },
})
const turns = Number(values.turns)
const repeat = Number(values.repeat)
const url = values["database-url"]
const database = await openDatabase(url ? { databaseUrl: url } : { dataDir: ":memory:" })
const db = database.db

const entity = `bench-breakdown-${Date.now()}`
const created = await sql<{ id: string }>`
  insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
  values (${entity}, 'org', 'enterprise', 1000000000000, 'UTC', now() - interval '100 days')
  returning id`.execute(db)
const id = created.rows[0]?.id ?? ""
const slices = 30
const loadStart = performance.now()
for (let k = 0; k < slices; k += 1) {
  const count = Math.floor(turns / slices)
  await sql`
    insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, session_id,
      operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
      created_at)
    select ${id}::uuid, (array['website','whatsapp','messenger','telegram','api'])[1 + (g % 5)],
      (array['support-bot','sales-bot','faq-bot'])[1 + (g % 3)], 'user-' || (g * 7919 % 5000),
      's-' || (g * 7919 % 5000) || '-' || (g / 50), 'chat',
      case when g % 33 = 0 then 'denied' else 'settled' end,
      case when g % 33 = 0 then 'rate_limited' end, 200, 200, case when g % 33 = 0 then 0 else 240 end, 1.2,
      now() - interval '90 days' + (${k}::float8 + g::float8 / ${count}::float8) * interval '3 days'
    from generate_series(1, ${count}) as g`.execute(db)
}
// PGlite runs as the app role (RLS on), so ANALYZE needs the owner's role for a moment; PostgreSQL is
// reached as the URL's user, and its driver takes one statement at a time.
if (url) await sql`analyze token_usage_logs`.execute(db)
else await sql.raw("reset role; analyze token_usage_logs; set role omnimeter_app;").execute(db)
console.log(`loaded ${turns} turns in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`)

const now = Date.now()
const range: QueryRange = {
  subscriptionId: id,
  start: new Date(now - 30 * 86_400_000),
  end: new Date(now),
  channels: CHANNELS,
}
const page = { sort: "tokens_used", order: "desc", limit: 50, offset: 0 } as const

const COLUMN: Record<BreakdownDimension, RawBuilder<unknown>> = {
  chatbot: sql.ref("chatbot_id"),
  user: sql.ref("user_identifier"),
  session: sql.ref("session_id"),
}

function pageOf(rows: Record<string, string | number | Date | null>[]): BreakdownPage {
  return {
    totalItems: Number(rows[0]?.total_items ?? 0),
    items: rows.map((row) => ({
      key: row.key as string | null,
      tokensUsed: Number(row.tokens_used),
      rawTokens: Number(row.raw_tokens),
      messageCount: Number(row.message_count),
      deniedCount: Number(row.denied_count),
      turns: Number(row.turns),
      uniqueUsers: Number(row.unique_users),
      uniquePeople: 0, // the variants here predate unique_people (issue 15); see comparable()
      sessions: Number(row.sessions),
      lastActivityAt: new Date(row.last_activity_at as string),
    })),
  }
}

/** The query issue 16 shipped first: one aggregate, distinct users and sessions with count(distinct). */
async function before(database: Kysely<DB>, by: BreakdownDimension): Promise<BreakdownPage> {
  const result = await sql<Record<string, string | number | Date | null>>`
    with items as (
      select nullif(${COLUMN[by]}, '') as key,
        coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0)::bigint as tokens_used,
        coalesce(sum(raw_tokens) filter (where status <> 'denied'), 0)::bigint as raw_tokens,
        count(*) filter (where status <> 'denied')::bigint as message_count,
        count(*) filter (where status = 'denied')::bigint as denied_count,
        count(*)::bigint as turns,
        count(distinct nullif(user_identifier, '')) filter (where status <> 'denied')::bigint as unique_users,
        count(distinct nullif(session_id, ''))::bigint as sessions,
        max(created_at) as last_activity_at
      from token_usage_logs
      where ${breakdownWhere(range)}
      group by 1
    )
    select *, count(*) over ()::bigint as total_items from items
    order by tokens_used desc nulls last, key asc nulls first
    limit ${page.limit} offset ${page.offset}`.execute(database)
  return pageOf(result.rows)
}

/** Candidate: hash aggregates only, distinct users and sessions as (item, user) and (item, session) groups. */
async function materialized(database: Kysely<DB>, by: BreakdownDimension): Promise<BreakdownPage> {
  const result = await sql<Record<string, string | number | Date | null>>`
    with turns as materialized (
      select coalesce(${COLUMN[by]}, '') as key, nullif(user_identifier, '') as user_key,
        nullif(session_id, '') as session_key, status <> 'denied' as allowed, billed_tokens, raw_tokens,
        created_at
      from token_usage_logs
      where ${breakdownWhere(range)}
    ),
    sums as (
      select key,
        coalesce(sum(billed_tokens) filter (where allowed), 0)::bigint as tokens_used,
        coalesce(sum(raw_tokens) filter (where allowed), 0)::bigint as raw_tokens,
        count(*) filter (where allowed)::bigint as message_count,
        count(*) filter (where not allowed)::bigint as denied_count,
        count(*)::bigint as turns,
        max(created_at) as last_activity_at
      from turns group by key
    ),
    users as (
      select key, count(*)::bigint as unique_users
      from (select key, user_key from turns where allowed and user_key is not null group by key, user_key) u
      group by key
    ),
    sessions as (
      select key, count(*)::bigint as sessions
      from (select key, session_key from turns where session_key is not null group by key, session_key) s
      group by key
    ),
    items as (
      select nullif(sums.key, '') as key, tokens_used, raw_tokens, message_count, denied_count, turns,
        coalesce(unique_users, 0)::bigint as unique_users, coalesce(sessions, 0)::bigint as sessions,
        last_activity_at
      from sums left join users using (key) left join sessions using (key)
    )
    select *, count(*) over ()::bigint as total_items from items
    order by tokens_used desc nulls last, key asc nulls first
    limit ${page.limit} offset ${page.offset}`.execute(database)
  return pageOf(result.rows)
}

/** Today's `breakdown`, written out: (item, user, session) triples, then per item over the triples. */
async function triples(database: Kysely<DB>, by: BreakdownDimension): Promise<BreakdownPage> {
  const result = await sql<Record<string, string | number | Date | null>>`
    with triples as (
      select nullif(${COLUMN[by]}, '') as key, nullif(user_identifier, '') as user_key,
        nullif(session_id, '') as session_key,
        coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0)::bigint as tokens_used,
        coalesce(sum(raw_tokens) filter (where status <> 'denied'), 0)::bigint as raw_tokens,
        count(*) filter (where status <> 'denied')::bigint as message_count,
        count(*)::bigint as turns, max(created_at) as last_activity_at
      from token_usage_logs
      where ${breakdownWhere(range)}
      group by 1, 2, 3
    ),
    items as (
      select key, sum(tokens_used)::bigint as tokens_used, sum(raw_tokens)::bigint as raw_tokens,
        sum(message_count)::bigint as message_count, (sum(turns) - sum(message_count))::bigint as denied_count,
        sum(turns)::bigint as turns,
        count(distinct user_key) filter (where message_count > 0)::bigint as unique_users,
        count(distinct session_key)::bigint as sessions, max(last_activity_at) as last_activity_at
      from triples group by key
    )
    select *, count(*) over ()::bigint as total_items from items
    order by tokens_used desc nulls last, key asc nulls first
    limit ${page.limit} offset ${page.offset}`.execute(database)
  return pageOf(result.rows)
}

/** The floor: reading the period's turns once, with no grouping. */
async function scan(database: Kysely<DB>): Promise<void> {
  await sql`select count(*), sum(billed_tokens), max(created_at) from token_usage_logs
    where ${breakdownWhere(range)}`.execute(database)
}

const median = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] ?? 0
const variants: [string, (by: BreakdownDimension) => Promise<unknown>][] = [
  ["before: count(distinct)", (by) => before(db, by)],
  ["hash aggregates, materialized", (by) => materialized(db, by)],
  ["triples, then count(distinct): breakdown()", (by) => breakdown(db, range, { by, ...page })],
  ["scan only (the floor)", () => scan(db)],
]
console.log(`| by | items | ${variants.map(([name]) => name).join(" | ")} |`)
console.log(`| --- | ---: | ${variants.map(() => "---:").join(" | ")} |`)
/** A page without unique_people, which only breakdown() computes (no link exists in this data). */
const comparable = (answer: unknown) => {
  const page = answer as BreakdownPage
  return JSON.stringify({ ...page, items: page.items.map(({ uniquePeople: _people, ...item }) => item) })
}
for (const by of BREAKDOWN_DIMENSIONS) {
  const reference = comparable(await before(db, by))
  if (comparable(await triples(db, by)) !== reference) throw new Error(`by ${by}: triples disagree`)
  for (const [name, run] of variants.slice(1, 3)) {
    if (comparable(await run(by)) !== reference) throw new Error(`by ${by}: ${name} disagrees`)
  }
  const ms = variants.map(() => [] as number[])
  // Round robin: each round runs every variant once, so load changes hit them alike.
  for (let i = 0; i < repeat; i += 1) {
    for (const [k, [, run]] of variants.entries()) {
      const start = performance.now()
      await run(by)
      ms[k]?.push(performance.now() - start)
    }
  }
  const base = median(ms[0] ?? [])
  const cells = ms.map(
    (m, k) => `${median(m).toFixed(0)} ms${k === 0 ? "" : ` (${(median(m) / base).toFixed(2)})`}`,
  )
  console.log(`| ${by} | ${JSON.parse(reference).totalItems} | ${cells.join(" | ")} |`)
}

await database.close()
