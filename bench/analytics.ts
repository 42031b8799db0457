/**
 * Analytics at scale (issue 4). Loads N turns over 90 days across 1,000 subscriptions, one of them large,
 * through the ledger's normal insert path (server-side multi-row INSERT ... SELECT in batches of time slices,
 * oldest first and in time order as live traffic appends them, so the rollup triggers maintain the rollups
 * exactly as they do for live turns), then times the comprehensive,
 * comparison and trends answers of the large subscription from the rollups and, in the same run, the same
 * answers from the raw ledger, and checks that both agree.
 *
 * Usage: npm run bench:analytics -- [--engine postgres|pglite] [--turns 5000000] [--large 1000000]
 *   [--subscriptions 1000] [--repeat 15] [--ledger-repeat 3] [--database name --keep]
 * `--database` reuses (or creates and keeps, with --keep) a named PostgreSQL database so that a load can be
 * measured again without reloading.
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { AnalyticsService } from "../src/analytics/service.js"
import { systemClock } from "../src/core/clock.js"
import { addDays, todayIn } from "../src/core/time-zones.js"
import { type Database, openDatabase } from "../src/storage/database.js"

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    turns: { type: "string", default: "5000000" },
    large: { type: "string", default: "1000000" },
    subscriptions: { type: "string", default: "1000" },
    days: { type: "string", default: "90" },
    repeat: { type: "string", default: "15" },
    "ledger-repeat": { type: "string", default: "3" },
    database: { type: "string" },
    keep: { type: "boolean", default: false },
    batch: { type: "string", default: "100000" },
  },
})
const totalTurns = Number(values.turns)
const largeTurns = Math.min(Number(values.large), totalTurns)
const subscriptionCount = Number(values.subscriptions)
const days = Number(values.days)
const repeat = Number(values.repeat)
const ledgerRepeat = Number(values["ledger-repeat"])
const batchSize = Number(values.batch)
const postgresBase = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const LARGE_ZONE = "America/New_York"

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

interface BenchDatabase {
  database: Database
  /** Refreshes the planner's statistics as the tables' owner (autovacuum would, a while after a load). */
  analyze: () => Promise<void>
  cleanup: () => Promise<void>
}

async function openBenchDatabase(): Promise<BenchDatabase> {
  if (values.engine === "pglite") {
    const database = await openDatabase({ dataDir: ":memory:" })
    return {
      database,
      analyze: async () =>
        void (await sql.raw("reset role; analyze; set role omnimeter_app;").execute(database.db)),
      cleanup: () => database.close(),
    }
  }
  const admin = new pg.Client({ connectionString: postgresBase })
  await admin.connect()
  const name = values.database ?? `omnimeter_bench_analytics_${process.pid}`
  const exists = await admin.query("select 1 from pg_database where datname = $1", [name])
  if (exists.rowCount === 0) await admin.query(`create database ${name}`)
  const url = new URL(postgresBase)
  url.pathname = `/${name}`
  const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 })
  return {
    database,
    analyze: async () => {
      const owner = new pg.Client({ connectionString: url.toString() })
      await owner.connect()
      await owner.query("analyze")
      await owner.end()
    },
    cleanup: async () => {
      await database.close()
      if (!values.keep) await admin.query(`drop database ${name} with (force)`)
      await admin.end()
    },
  }
}

/**
 * One time slice of the ledger, `count` turns between `sliceStart` and `sliceEnd` days ago, in time order
 * as live traffic appends them: a `largeShare` of them for the large subscription, the rest spread over the
 * small ones. A user mostly talks on one channel, in sessions of several turns; 1% are denied, 2% not yet
 * settled.
 */
async function insertSlice(
  database: Database,
  count: number,
  sliceStart: number,
  sliceEnd: number,
  largeShare: number,
  largeId: string,
) {
  await sql`
    insert into token_usage_logs (subscription_id, channel, user_identifier, session_id, operation_type, status,
      denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, period_start, created_at,
      settled_at)
    select case when r.large then ${largeId}::uuid else (s.ids)[1 + floor(r.r5 * ${subscriptionCount - 1}::int)::int] end,
      c.channel, 'user-' || r.u, 's-' || r.u || '-' || (r.g % 7), 'chat',
      case when r.r3 < 0.01 then 'denied' when r.r3 < 0.03 then 'estimated' else 'settled' end,
      case when r.r3 < 0.01 then (array['rate_limited', 'quota_exceeded', 'message_too_long'])[1 + (r.g % 3)] end,
      c.raw, c.raw, case when r.r3 < 0.01 then 0 else ceil(c.raw * c.multiplier) end, c.multiplier,
      case when r.r3 < 0.01 then null else now() - interval '200 days' end, r.at, r.at
    from (
      select g, large, floor(power(random(), 2) * case when large then 20000 else 300 end)::int as u,
        random() as r2, random() as r3, random() as r4, random() as r5,
        now() - interval '1 day' * (${sliceStart}::float8 - random() * (${sliceStart}::float8 - ${sliceEnd}::float8)) as at
      from (select g, random() < ${largeShare}::float8 as large from generate_series(1, ${count}) as g) as picked
    ) as r
    cross join (
      select array(select id from subscriptions where entity_id like 'bench-analytics-%'
        and entity_id <> 'bench-analytics-large' order by id) as ids
    ) as s
    cross join lateral (
      select ch.channel, ch.multiplier, ch.base + floor(r.r4 * 600)::int as raw
      from (values (0, 'website', 1.00, 80), (1, 'whatsapp', 1.20, 60), (2, 'messenger', 1.10, 70),
        (3, 'instagram', 1.15, 50), (4, 'telegram', 1.05, 90), (5, 'api', 0.90, 300))
        as ch(i, channel, multiplier, base)
      where ch.i = case when r.r2 < 0.85 then r.u % 6 else floor(r.r2 * 6)::int % 6 end
    ) as c
    order by r.at
  `.execute(database.db)
}

async function load(database: Database): Promise<string> {
  const existing = await sql<{ id: string; turns: number }>`
    select s.id, (select count(*) from token_usage_logs t where t.subscription_id = s.id)::bigint as turns
    from subscriptions s where entity_id = 'bench-analytics-large'`.execute(database.db)
  const found = existing.rows[0]
  if (found && found.turns > 0) {
    console.log(`reusing the loaded database (large subscription: ${found.turns} turns)`)
    return found.id
  }
  const started = performance.now()
  await sql`
    insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
    select case when g = 0 then 'bench-analytics-large' else 'bench-analytics-' || g end, 'org', 'enterprise',
      1000000000000000, case when g = 0 then ${LARGE_ZONE}
        else (array['UTC', 'Asia/Kolkata', 'Europe/Berlin', 'Asia/Kathmandu'])[1 + g % 4] end,
      now() - interval '200 days'
    from generate_series(0, ${subscriptionCount - 1}) as g`.execute(database.db)
  const large = await sql<{ id: string }>`
    select id from subscriptions where entity_id = 'bench-analytics-large'`.execute(database.db)
  const largeId = large.rows[0]?.id
  if (!largeId) throw new Error("large subscription missing")
  // Oldest slice first, each slice a little busier than the one before (usage grows by half over the period).
  const slices = Math.max(1, Math.ceil(totalTurns / batchSize))
  const weights = Array.from({ length: slices }, (_, k) => 1 + (0.5 * k) / Math.max(1, slices - 1))
  const weightSum = weights.reduce((sum, w) => sum + w, 0)
  let written = 0
  for (let k = 0; k < slices; k += 1) {
    const count =
      k === slices - 1 ? totalTurns - written : Math.round((totalTurns * (weights[k] ?? 1)) / weightSum)
    const sliceStart = days * (1 - k / slices)
    await insertSlice(
      database,
      count,
      sliceStart,
      days * (1 - (k + 1) / slices),
      largeTurns / totalTurns,
      largeId,
    )
    written += count
    if ((k + 1) % 10 === 0) console.log(`  ${written} turns loaded, ${seconds(performance.now() - started)}`)
  }
  const elapsed = performance.now() - started
  console.log(
    `loaded ${totalTurns} turns (${largeTurns} in the large subscription) across ${subscriptionCount} subscriptions in ${seconds(elapsed)}: ${Math.round(totalTurns / (elapsed / 1000))} turns/s, rollups included`,
  )
  return largeId
}

async function p50(label: string, times: number, fn: () => Promise<unknown>): Promise<number> {
  await fn() // warm-up
  const samples: number[] = []
  for (let i = 0; i < times; i += 1) {
    const t0 = performance.now()
    await fn()
    samples.push(performance.now() - t0)
  }
  samples.sort((a, b) => a - b)
  const median = samples[Math.floor(samples.length / 2)] ?? 0
  console.log(`  ${label}: p50 ${median.toFixed(1)} ms (min ${samples[0]?.toFixed(1)}, n=${times})`)
  return median
}

const { database, analyze, cleanup } = await openBenchDatabase()
try {
  const largeId = await load(database)
  await analyze()
  const sizes = await sql<{ name: string; rows: number; size: string }>`
    select relname as name, n_live_tup::bigint as rows, pg_size_pretty(pg_total_relation_size(relid)) as size
    from pg_stat_user_tables
    where relname in ('token_usage_logs', 'channel_usage_buckets', 'channel_usage_hourly', 'channel_user_days') order by relname`
    .execute(database.db)
    .catch(() => ({ rows: [] }))
  for (const row of sizes.rows) console.log(`  ${row.name}: ~${row.rows} rows, ${row.size}`)

  const rollups = new AnalyticsService({ database, clock: systemClock })
  const ledger = new AnalyticsService({ database, clock: systemClock, source: "ledger" })
  const to = todayIn(LARGE_ZONE, new Date())
  const period = { from: addDays(to, -(days - 1)), to }
  const fortnight = { from: addDays(to, -13), to, granularity: "hourly" as const }
  const calls: Array<[string, (s: AnalyticsService) => Promise<unknown>]> = [
    [`comprehensive, ${days} days`, (s) => s.comprehensive(largeId, period)],
    [`comparison, ${days} days`, (s) => s.comparison(largeId, period)],
    [`trends daily, ${days} days`, (s) => s.trends(largeId, "whatsapp", period)],
    ["trends hourly, 14 days", (s) => s.trends(largeId, "whatsapp", fortnight)],
  ]
  const strip = (body: unknown) => ({ ...(body as Record<string, unknown>), generatedAt: null })
  console.log(`large subscription (${LARGE_ZONE}), ${values.engine}:`)
  for (const [label, call] of calls) {
    const fromRollups = await p50(`${label}, rollups`, repeat, () => call(rollups))
    const fromLedger = await p50(`${label}, raw ledger`, ledgerRepeat, () => call(ledger))
    const same = JSON.stringify(strip(await call(rollups))) === JSON.stringify(strip(await call(ledger)))
    console.log(
      `  ${label}: ledger/rollups = ${(fromLedger / fromRollups).toFixed(1)}x, answers identical: ${same}`,
    )
  }
  const small = await sql<{ id: string }>`
    select id from subscriptions where entity_id = 'bench-analytics-1'`.execute(database.db)
  const smallId = small.rows[0]?.id
  if (smallId) {
    console.log("a small subscription:")
    await p50(`comprehensive, ${days} days, rollups`, repeat, () => rollups.comprehensive(smallId, period))
    await p50(`comprehensive, ${days} days, raw ledger`, ledgerRepeat, () =>
      ledger.comprehensive(smallId, period),
    )
  }
} finally {
  await cleanup()
}
