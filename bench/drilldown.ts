/**
 * Drill-down costs (issue 16): one subscription with N turns over 90 days (3 chatbots, 5,000 end users,
 * sessions of a few turns, 3% denied), loaded through the ledger's insert path so the rollup triggers run.
 * Times (median of --repeat) the 30-day comprehensive answer unfiltered, filtered by chatbot (rollups) and by
 * end user (ledger), the breakdown by chatbot, user and session (ledger), the turn log's first page, and an
 * export of every turn through TurnLogService.stream (rows, time, and the process's peak RSS growth).
 *
 * Usage: npx tsx bench/drilldown.ts [--turns 200000] [--repeat 5]   (PGlite, in memory)
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import { AnalyticsService } from "../src/analytics/service.js"
import { systemClock } from "../src/core/clock.js"
import { openDatabase } from "../src/storage/database.js"
import { TurnLogService } from "../src/turns/turn-log.js"

const { values } = parseArgs({
  options: { turns: { type: "string", default: "200000" }, repeat: { type: "string", default: "5" } },
})
const turns = Number(values.turns)
const repeat = Number(values.repeat)
const database = await openDatabase({ dataDir: ":memory:" })
const db = database.db

const created = await sql<{ id: string }>`
  insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
  values ('bench-drilldown', 'org', 'enterprise', 1000000000000, 'UTC', now() - interval '100 days')
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
await sql.raw("reset role; analyze; set role omnimeter_app;").execute(db)
console.log(`loaded ${turns} turns in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`)

async function time(label: string, run: () => Promise<unknown>): Promise<void> {
  const ms: number[] = []
  for (let i = 0; i < repeat; i += 1) {
    const start = performance.now()
    await run()
    ms.push(performance.now() - start)
  }
  ms.sort((a, b) => a - b)
  console.log(`${label.padEnd(48)} median ${(ms[Math.floor(ms.length / 2)] ?? 0).toFixed(0)} ms`)
}

const analytics = new AnalyticsService({ database, clock: systemClock })
const log = new TurnLogService({ database })
await time("comprehensive, 30 days, unfiltered", () => analytics.comprehensive(id, {}))
await time("comprehensive, 30 days, chatbot_id (rollups)", () =>
  analytics.comprehensive(id, { chatbotId: "sales-bot" }),
)
await time("comprehensive, 30 days, user_identifier (ledger)", () =>
  analytics.comprehensive(id, { userIdentifier: "user-42" }),
)
for (const by of ["chatbot", "user", "session"] as const) {
  await time(`breakdown by ${by}, 30 days, first page of 50`, () => analytics.breakdown(id, { by }))
}
await time("turn log, first page of 50", () => log.list(id, {}, { limit: 50 }))
await time("turn log, denied only, first page of 50", () =>
  log.list(id, { decision: "denied" }, { limit: 50 }),
)

const rssBefore = process.memoryUsage().rss
let peak = rssBefore
let rows = 0
const exportStart = performance.now()
for await (const _turn of log.stream(id, {})) {
  rows += 1
  if (rows % 10_000 === 0) peak = Math.max(peak, process.memoryUsage().rss)
}
console.log(
  `export of every turn: ${rows} rows in ${((performance.now() - exportStart) / 1000).toFixed(1)} s, peak RSS growth ${((peak - rssBefore) / 2 ** 20).toFixed(0)} MiB`,
)
await database.close()
