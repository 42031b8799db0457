/**
 * In-process library throughput: allowed decisions per second and the latency each turn adds, spread over
 * 100 subscriptions, on embedded PGlite and on PostgreSQL (when BENCH_POSTGRES_URL or the local default is
 * reachable). Usage: npm run bench:meter [-- --seconds 10 --concurrency 64 --keyed]
 * (--keyed: every turn carries a unique idempotency key, the path a retrying client takes.)
 */
import { parseArgs } from "node:util"
import pg from "pg"
import { createMeter, type Meter } from "../src/index.js"
import { driveMeter, prepareSubscriptions } from "./support/meter-load.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    concurrency: { type: "string", default: "64" },
    subscriptions: { type: "string", default: "100" },
    /** Group commit: most batches in flight on PostgreSQL (PGlite always runs one). */
    "in-flight": { type: "string", default: "4" },
    "max-batch": { type: "string", default: "256" },
    only: { type: "string" },
    keyed: { type: "boolean", default: false },
  },
})
const groupCommit = { maxBatch: Number(values["max-batch"]) }
const inFlight = Number(values["in-flight"])
const seconds = Number(values.seconds)
const concurrency = Number(values.concurrency)
const subscriptionCount = Number(values.subscriptions)
const postgresBase = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

async function bench(name: string, open: () => Promise<{ meter: Meter; done: () => Promise<void> }>) {
  const { meter, done } = await open()
  try {
    const entities = await prepareSubscriptions(meter, subscriptionCount)
    const result = await driveMeter(meter, entities, { seconds, concurrency, keyed: values.keyed ?? false })
    console.log(
      `${name}: ${Math.round(result.perSecond)} allowed decisions/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, denied ${result.denied} (concurrency ${concurrency}, ${seconds} s)`,
    )
  } finally {
    await done()
  }
}

if (values.only !== "postgres") {
  await bench("pglite (in-memory)", async () => {
    const meter = await createMeter({ dataDir: ":memory:", groupCommit })
    return { meter, done: () => meter.close() }
  })
}

const admin = new pg.Client({ connectionString: postgresBase })
const reachable = await admin.connect().then(
  () => true,
  () => false,
)
if (values.only === "pglite") {
  await admin.end().catch(() => {})
} else if (reachable) {
  const name = `omnimeter_bench_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(postgresBase)
  url.pathname = `/${name}`
  await bench("postgres", async () => {
    const meter = await createMeter({
      databaseUrl: url.toString(),
      poolSize: 32,
      groupCommit: { ...groupCommit, maxInFlight: inFlight },
    })
    return { meter, done: () => meter.close() }
  })
  await admin.query(`drop database ${name} with (force)`)
  await admin.end()
} else {
  console.log(`postgres: skipped, ${postgresBase} unreachable`)
}
