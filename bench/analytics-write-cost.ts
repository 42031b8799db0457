/**
 * What writing the analytics rollups costs the consume path: in-process consume throughput with the rollup
 * triggers of migration 0005 disabled and enabled, in alternating rounds of one run (so both see the same
 * machine load), on PGlite and PostgreSQL. `--triggers journeys`: the journey session triggers of migration
 * 0022 instead; `--half-without-session`: every other turn without a session id (the gap runs' path).
 * Usage: npm run bench:analytics-write -- [--seconds 6 --rounds 3 --engine both] [--triggers rollups|journeys]
 *   [--half-without-session]
 */
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { createMeter } from "../src/index.js"
import { type Database, openDatabase } from "../src/storage/database.js"
import { driveMeter, prepareSubscriptions } from "./support/meter-load.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "6" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    engine: { type: "string", default: "both" },
    triggers: { type: "string", default: "rollups" },
    "half-without-session": { type: "boolean", default: false },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)
const load = { seconds, concurrency, halfWithoutSession: values["half-without-session"] }
const postgresBase = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const which = values.triggers === "journeys" ? "journey" : "rollup"
const TRIGGERS = [
  `token_usage_logs_${which}_insert`,
  `token_usage_logs_${which}_update`,
  `token_usage_logs_${which}_delete`,
]
const toggle = (on: boolean) =>
  TRIGGERS.map((name) => `alter table token_usage_logs ${on ? "enable" : "disable"} trigger ${name};`).join(
    " ",
  )

async function bench(name: string, database: Database, setTriggers: (on: boolean) => Promise<void>) {
  const meter = await createMeter({ database })
  const entities = await prepareSubscriptions(meter)
  await driveMeter(meter, entities, load) // warm-up
  const off: number[] = []
  const on: number[] = []
  for (let round = 0; round < rounds; round += 1) {
    await setTriggers(false)
    off.push((await driveMeter(meter, entities, load)).perSecond)
    await setTriggers(true)
    on.push((await driveMeter(meter, entities, load)).perSecond)
  }
  await meter.close()
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length
  const fmt = (xs: number[]) => xs.map((x) => Math.round(x)).join(", ")
  console.log(
    `${name}: without ${which} triggers ${Math.round(mean(off))}/s [${fmt(off)}], with them ${Math.round(mean(on))}/s [${fmt(on)}], change ${(((mean(on) - mean(off)) / mean(off)) * 100).toFixed(1)}% (concurrency ${concurrency}, ${rounds} x ${seconds} s each)`,
  )
}

if (values.engine !== "postgres") {
  const database = await openDatabase({ dataDir: ":memory:" })
  await bench("pglite (in-memory)", database, async (on) => {
    await sql.raw(`reset role; ${toggle(on)} set role omnimeter_app;`).execute(database.db)
  })
  await database.close()
}

if (values.engine !== "pglite") {
  const admin = new pg.Client({ connectionString: postgresBase })
  await admin.connect()
  const name = `omnimeter_bench_rollups_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(postgresBase)
  url.pathname = `/${name}`
  const owner = new pg.Client({ connectionString: url.toString() })
  try {
    const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 32 })
    await owner.connect()
    await bench("postgres", database, async (on) => void (await owner.query(toggle(on))))
    await database.close()
  } finally {
    await owner.end().catch(() => {})
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
}
