/**
 * The breakdown's query, before and after (issue 16), A/B in one run on the same data: the data of
 * bench/drilldown.ts (one subscription, N turns over 90 days, 3 chatbots, 5,000 end users, 3% denied), then
 * for each dimension the 30-day breakdown (first page of 50, by tokens) with the query issue 16 shipped
 * ("before": one aggregate with count(distinct ...)) and with today's `breakdown` (hash aggregates only),
 * alternating A, B, A, B... Both answers are compared item by item before timing.
 *
 * Usage: npx tsx bench/breakdown-ab.ts [--turns 200000] [--repeat 5] [--database-url postgres://...]
 * (PGlite in memory unless a database URL is given; that database is migrated and gets one subscription.)
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
await sql.raw("reset role; analyze token_usage_logs; set role omnimeter_app;").execute(db)
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
  return {
    totalItems: Number(result.rows[0]?.total_items ?? 0),
    items: result.rows.map((row) => ({
      key: row.key as string | null,
      tokensUsed: Number(row.tokens_used),
      rawTokens: Number(row.raw_tokens),
      messageCount: Number(row.message_count),
      deniedCount: Number(row.denied_count),
      turns: Number(row.turns),
      uniqueUsers: Number(row.unique_users),
      sessions: Number(row.sessions),
      lastActivityAt: new Date(row.last_activity_at as string),
    })),
  }
}

const median = (ms: number[]) => [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] ?? 0
const rows: string[] = []
for (const by of BREAKDOWN_DIMENSIONS) {
  const a = await before(db, by)
  const b = await breakdown(db, range, { by, ...page })
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`by ${by}: the two queries disagree`)
  const msA: number[] = []
  const msB: number[] = []
  for (let i = 0; i < repeat; i += 1) {
    let start = performance.now()
    await before(db, by)
    msA.push(performance.now() - start)
    start = performance.now()
    await breakdown(db, range, { by, ...page })
    msB.push(performance.now() - start)
  }
  const [ma, mb] = [median(msA), median(msB)]
  rows.push(
    `| ${by} | ${a.totalItems} | ${ma.toFixed(0)} ms | ${mb.toFixed(0)} ms | ${(mb / ma).toFixed(2)} |`,
  )
}
console.log(
  "| by | items | before (count distinct), median | after (hash aggregates), median | after / before |",
)
console.log("| --- | ---: | ---: | ---: | ---: |")
for (const row of rows) console.log(row)

if (url) {
  // Leave the shared database as it was: the bench's turns and subscription go (rollups follow by trigger).
  await sql`delete from token_usage_logs where subscription_id = ${id}`.execute(db)
  await sql`delete from subscriptions where id = ${id}`.execute(db).catch((error: unknown) => {
    console.warn(`subscription ${id} left in place: ${String(error)}`)
  })
}
await database.close()
