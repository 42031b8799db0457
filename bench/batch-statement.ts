/**
 * Where the time of a lone turn's database work goes (issue 18, target 2): one-turn batches through
 * `consumeBatch`, one after another, as the service sends them when it is unloaded, next to `select 1` and
 * to the same batch with the ledger's rollup trigger or the counter's threshold trigger disabled (PostgreSQL
 * only: disabling a trigger needs the table's owner). Rounds alternate, so each variant sees the same load.
 *
 * Usage: npx tsx bench/batch-statement.ts [--engine postgres|pglite] [--calls 300] [--rounds 3]
 *          [--subscriptions 100] [--variants batch,select1,no-rollup,no-threshold,no-triggers]
 *          [--sql name=file.sql ...] [--restore file.sql ...] [--no-flush]
 * `--sql name=file.sql` adds a variant that runs the batch with file.sql applied (PostgreSQL: e.g. another
 * definition of a function), then applies the `--restore` files (the current definitions) after its calls.
 * `--no-flush` runs every batch in a transaction with `synchronous_commit = off` (two more round trips, the
 * same for every variant): the commit does not wait for the WAL flush, which on a shared, loaded disk is most
 * of a batch's time and hides the difference between two definitions of the statement.
 */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { uuidV7 } from "../src/core/ids.js"
import { billingPeriodAt } from "../src/core/period.js"
import { createMeter } from "../src/index.js"
import { type Database, openDatabase } from "../src/storage/database.js"
import { type BatchTurn, consumeBatch } from "../src/storage/ledger.js"
import { prepareSubscriptions } from "./support/meter-load.js"
import { loadAverage } from "./support/server.js"

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    calls: { type: "string", default: "300" },
    rounds: { type: "string", default: "3" },
    subscriptions: { type: "string", default: "100" },
    /** Turns per batch, spread over the subscriptions (1: the lone turn). */
    batch: { type: "string", default: "1" },
    variants: { type: "string", default: "batch,select1,no-rollup,no-threshold,no-triggers" },
    sql: { type: "string", multiple: true, default: [] },
    restore: { type: "string", multiple: true, default: [] },
    /** Applied once before the first call (PostgreSQL), e.g. a migration under test. */
    apply: { type: "string", multiple: true, default: [] },
    "no-flush": { type: "boolean", default: false },
  },
})
const noFlush = values["no-flush"] === true
const batchSize = Number(values.batch)
const engine = values.engine === "pglite" ? "pglite" : "postgres"
const calls = Number(values.calls)
const rounds = Number(values.rounds)
const sqlVariants = new Map(
  (values.sql ?? []).map((spec) => {
    const [name = spec, file = ""] = spec.split("=")
    return [name, readFileSync(file, "utf8")]
  }),
)
const restore = (values.restore ?? []).map((file) => readFileSync(file, "utf8"))
const variants = [...(values.variants ?? "").split(",").filter(Boolean), ...sqlVariants.keys()]
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

let database: Database
let owner: pg.Client | undefined
let drop = async () => {}
if (engine === "postgres") {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_batch_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  database = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 })
  owner = new pg.Client({ connectionString: url.toString() })
  await owner.connect()
  drop = async () => {
    await owner?.end()
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
} else {
  database = await openDatabase({ dataDir: ":memory:" })
}
const meter = await createMeter({ database })
const entities = await prepareSubscriptions(meter, Number(values.subscriptions))
const subscriptions = await database.db
  .selectFrom("subscriptions")
  .select(["id", "period_anchor"])
  .where("entity_id", "in", entities)
  .execute()

class RolledBack extends Error {}
for (const file of values.apply ?? []) await owner?.query(readFileSync(file, "utf8"))
await owner?.query("create table bench_insert (x integer); grant insert on bench_insert to omnimeter_app")
if (!owner) await sql`create temporary table bench_insert (x integer)`.execute(database.db)

let n = 0
function turns(): BatchTurn[] {
  return Array.from({ length: batchSize }, turn)
}

function turn(): BatchTurn {
  n += 1
  const subscription = subscriptions[n % subscriptions.length]
  if (!subscription) throw new Error("no subscription")
  const now = new Date()
  return {
    id: uuidV7(now.getTime()),
    subscriptionId: subscription.id,
    channel: (["website", "whatsapp", "api"] as const)[n % 3] ?? "website",
    chatbotId: "bench-bot",
    sessionId: `s-${n % 5000}`,
    userIdentifier: `u-${n % 20000}`,
    operationType: "chat",
    estimatedTokens: 50 + (n % 200),
    multiplierHundredths: 100,
    messageLength: 120,
    idempotencyKey: null,
    createdAt: now,
    billedTokens: 50 + (n % 200),
    periodStart: billingPeriodAt(new Date(subscription.period_anchor), now).start,
    scope: null,
    denialReason: null,
    priority: 5,
  }
}

async function toggle(table: string, trigger: string, enabled: boolean): Promise<void> {
  await owner?.query(`alter table ${table} ${enabled ? "enable" : "disable"} trigger ${trigger}`)
}

/** One batch as the service commits it, or (--no-flush) without waiting for its commit's WAL flush. */
function batch(): Promise<unknown> {
  if (!noFlush) return consumeBatch(database.db, turns())
  return database.db.transaction().execute(async (trx) => {
    await sql`set local synchronous_commit = off`.execute(trx)
    return consumeBatch(trx, turns())
  })
}

const run: Record<string, () => Promise<unknown>> = {
  batch,
  select1: () => sql`select 1`.execute(database.db),
  // A committed one-row insert into a table without indexes or triggers: the floor of any durable write.
  insert1: () => sql`insert into bench_insert values (1)`.execute(database.db),
  // The batch without its commit's WAL flush (and with two more round trips: begin, rollback).
  "rolled-back": () =>
    database.db
      .transaction()
      .execute(async (trx) => {
        await consumeBatch(trx, turns())
        throw new RolledBack()
      })
      .catch((error: unknown) => {
        if (!(error instanceof RolledBack)) throw error
      }),
  "no-rollup": batch,
  "no-threshold": batch,
  "no-triggers": batch,
}
const setup: Record<string, (on: boolean) => Promise<void>> = {
  "no-rollup": (on) => toggle("token_usage_logs", "token_usage_logs_rollup_insert", !on),
  "no-threshold": (on) => toggle("quota_counters", "quota_counters_thresholds", !on),
  "no-triggers": async (on) => {
    await toggle("token_usage_logs", "token_usage_logs_rollup_insert", !on)
    await toggle("quota_counters", "quota_counters_thresholds", !on)
  },
}

for (const [name, text] of sqlVariants) {
  run[name] = batch
  setup[name] = async (on) => {
    if (on) await owner?.query(text)
    else for (const file of restore) await owner?.query(file)
  }
}

const samples = new Map<string, number[]>(variants.map((v) => [v, []]))
for (let i = 0; i < 100; i += 1) await run.batch?.() // warm-up: plans cached, buckets and counters exist
console.log(
  `${engine}, ${subscriptions.length} subscriptions, ${batchSize} turns per batch${noFlush ? ", synchronous_commit off" : ""}, load ${loadAverage()}`,
)
for (let round = 0; round < rounds; round += 1) {
  for (const variant of variants) {
    const fn = run[variant]
    if (!fn) throw new Error(`unknown variant ${variant}`)
    if (engine === "pglite" && setup[variant]) continue
    await setup[variant]?.(true)
    const list = samples.get(variant) ?? []
    for (let i = 0; i < 20; i += 1) await fn()
    for (let i = 0; i < calls; i += 1) {
      const started = performance.now()
      await fn()
      list.push(performance.now() - started)
    }
    await setup[variant]?.(false)
  }
}
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
console.log("| variant | min | p10 | p50 | p90 |\n| --- | --- | --- | --- | --- |")
for (const [variant, list] of samples) {
  if (list.length === 0) continue
  const sorted = [...list].sort((a, b) => a - b)
  const f = (x: number) => `${x.toFixed(3)} ms`
  console.log(
    `| ${variant} | ${f(sorted[0] ?? Number.NaN)} | ${f(pct(sorted, 10))} | ${f(pct(sorted, 50))} | ${f(pct(sorted, 90))} |`,
  )
}
console.log(`load at the end ${loadAverage()}`)
await meter.close()
await database.close()
await drop()
