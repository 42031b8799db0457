/**
 * What the quota-threshold trigger (migration 0006) costs the consume path: the in-process meter load of
 * bench/meter-inprocess.ts, run in alternating rounds with the trigger disabled and enabled on the same
 * database, so both see the same machine noise. Every turn moves a counter (the trigger fires) and almost
 * none crosses a threshold (the common case); one subscription in ten has a limit small enough that its
 * thresholds are crossed during the run. Usage: npx tsx bench/alerts-trigger.ts [--seconds 5 --rounds 3]
 */
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { createMeter, type Database, openDatabase } from "../src/index.js"
import { driveMeter, type LoadResult, prepareSubscriptions } from "./support/meter-load.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)
const postgresBase = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/**
 * The trigger's own execution time, as PostgreSQL reports it (EXPLAIN ANALYZE's per-trigger timing) for a
 * counter update like the consume statement's, and that update's execution time: medians of `samples`.
 * Immune to the machine's load in a way throughput is not.
 */
async function triggerTiming(
  database: Database,
  samples = 400,
): Promise<{ trigger: number; update: number }> {
  const sub = await sql<{ id: string }>`select id from subscriptions order by id limit 1`.execute(database.db)
  const id = sub.rows[0]?.id ?? ""
  const triggerTimes: number[] = []
  const updateTimes: number[] = []
  for (let i = 0; i < samples; i += 1) {
    const result = await sql<{ "QUERY PLAN": unknown }>`explain (analyze, format json)
      insert into quota_counters as q (subscription_id, period_start, used_tokens)
      values (${id}, '2026-11-01T00:00:00Z', 1)
      on conflict (subscription_id, period_start) do update set used_tokens = q.used_tokens + excluded.used_tokens`.execute(
      database.db,
    )
    const raw = result.rows[0]?.["QUERY PLAN"]
    const plan = (typeof raw === "string" ? JSON.parse(raw) : raw) as {
      "Execution Time": number
      Triggers?: { "Trigger Name": string; Time: number }[]
    }[]
    const top = plan[0]
    if (!top) continue
    updateTimes.push(top["Execution Time"])
    const trigger = top.Triggers?.find((t) => t["Trigger Name"] === "quota_counters_thresholds")
    triggerTimes.push(trigger?.Time ?? 0)
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
  return { trigger: median(triggerTimes), update: median(updateTimes) }
}

async function compare(name: string, database: Database, setTrigger: (enabled: boolean) => Promise<void>) {
  const meter = await createMeter({ database })
  const entities = await prepareSubscriptions(meter, 100, (i) => (i % 10 === 0 ? 2_000_000 : 1e14))
  await setTrigger(true)
  const timing = await triggerTiming(database)
  await setTrigger(false)
  const without = await triggerTiming(database)
  console.log(
    `${name}: trigger execution ${timing.trigger.toFixed(3)} ms per counter move (median); counter upsert ${timing.update.toFixed(3)} ms with the trigger, ${without.update.toFixed(3)} ms without`,
  )
  if (rounds === 0) {
    await meter.close()
    return
  }
  const results: Record<"off" | "on", LoadResult[]> = { off: [], on: [] }
  for (let round = 0; round < rounds; round += 1) {
    for (const state of round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const)) {
      await setTrigger(state === "on")
      results[state].push(await driveMeter(meter, entities, { seconds, concurrency }))
    }
  }
  const alerts = await sql<{ n: number }>`select count(*)::int as n from alerts`.execute(database.db)
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  for (const state of ["off", "on"] as const) {
    const r = results[state]
    console.log(
      `${name} trigger ${state}: ${Math.round(mean(r.map((x) => x.perSecond)))} allowed/s (rounds: ${r.map((x) => Math.round(x.perSecond)).join(", ")}), p50 ${mean(r.map((x) => x.p50)).toFixed(2)} ms, p99 ${mean(r.map((x) => x.p99)).toFixed(2)} ms`,
    )
  }
  const ratio = mean(results.on.map((x) => x.perSecond)) / mean(results.off.map((x) => x.perSecond))
  console.log(
    `${name}: with/without trigger throughput ratio ${ratio.toFixed(3)}; alerts raised ${alerts.rows[0]?.n}`,
  )
  await meter.close()
}

const toggle = (enabled: boolean) =>
  `ALTER TABLE quota_counters ${enabled ? "ENABLE" : "DISABLE"} TRIGGER quota_counters_thresholds`

{
  const database = await openDatabase({ dataDir: ":memory:" })
  // PGlite's one connection runs as omnimeter_app; the table owner may toggle triggers.
  await compare("pglite", database, async (enabled) => {
    await sql.raw(`RESET ROLE; ${toggle(enabled)}; SET ROLE omnimeter_app`).execute(database.db)
  })
  await database.close()
}

const admin = new pg.Client({ connectionString: postgresBase })
if (
  await admin.connect().then(
    () => true,
    () => false,
  )
) {
  const name = `omnimeter_bench_alerts_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(postgresBase)
  url.pathname = `/${name}`
  const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 32 })
  const owner = new pg.Client({ connectionString: url.toString() })
  await owner.connect()
  await compare("postgres", database, async (enabled) => void (await owner.query(toggle(enabled))))
  await owner.end()
  await database.close()
  await admin.query(`drop database ${name} with (force)`)
  await admin.end()
} else {
  console.log(`postgres: skipped, ${postgresBase} unreachable`)
}
