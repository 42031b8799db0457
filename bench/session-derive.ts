/**
 * What deriving the session tables after the commit costs (issue 18, migration 0024): `--turns` turns are
 * consumed through `consumeBatch` (batches of `--batch`, spread over `--subscriptions`, with sessions and
 * identifiers as the latency benchmark's turns have), which queues them; then SessionDeriveJob drains the
 * queue, and this prints the turns derived per second, the drain's wall time, and the same for a reader's
 * catch-up (`deriveSessions` of one subscription). Sessions repeat (5,000 session ids, 20,000 identifiers),
 * so most turns change no session row, as in a live conversation.
 *
 * Usage: npx tsx bench/session-derive.ts [--engine postgres|pglite] [--turns 20000] [--batch 50]
 *          [--subscriptions 100]
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { uuidV7 } from "../src/core/ids.js"
import { billingPeriodAt } from "../src/core/period.js"
import { createMeter } from "../src/index.js"
import { type Database, openDatabase } from "../src/storage/database.js"
import { type BatchTurn, consumeBatch } from "../src/storage/ledger.js"
import { deriveSessions, SessionDeriveJob } from "../src/storage/sessions.js"
import { prepareSubscriptions } from "./support/meter-load.js"
import { loadAverage } from "./support/server.js"

const { values } = parseArgs({
  options: {
    engine: { type: "string", default: "postgres" },
    turns: { type: "string", default: "20000" },
    batch: { type: "string", default: "50" },
    subscriptions: { type: "string", default: "100" },
  },
})
const engine = values.engine === "pglite" ? "pglite" : "postgres"
const total = Number(values.turns)
const batchSize = Number(values.batch)
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

let database: Database
let drop = async () => {}
if (engine === "postgres") {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_derive_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  database = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 })
  drop = async () => {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
} else {
  database = await openDatabase({ dataDir: ":memory:" })
  // The embedded database derives in the consume since migration 0026; this measures the deriver on the
  // queue a version before it left (what an upgraded data directory drains when it opens).
  await sql`set omnimeter.sessions_inline = off`.execute(database.db)
}
const meter = await createMeter({ database })
const entities = await prepareSubscriptions(meter, Number(values.subscriptions))
const subscriptions = await database.db
  .selectFrom("subscriptions")
  .select(["id", "period_anchor"])
  .where("entity_id", "in", entities)
  .execute()

let n = 0
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
    sessionId: n % 4 === 0 ? null : `s-${n % 5000}`,
    userIdentifier: `u-${n % 20000}`,
    operationType: "chat",
    estimatedTokens: 50,
    multiplierHundredths: 100,
    messageLength: 120,
    idempotencyKey: null,
    createdAt: now,
    billedTokens: 50,
    periodStart: billingPeriodAt(new Date(subscription.period_anchor), now).start,
    scope: null,
    denialReason: null,
    priority: 5,
  }
}

async function queued(): Promise<number> {
  const result = await sql<{ n: number }>`select count(*)::int as n from session_queue`.execute(database.db)
  return Number(result.rows[0]?.n)
}

async function fill(count: number): Promise<number> {
  const started = performance.now()
  for (let done = 0; done < count; done += batchSize) {
    await consumeBatch(database.db, Array.from({ length: Math.min(batchSize, count - done) }, turn))
  }
  return performance.now() - started
}

try {
  console.log(
    `engine ${engine}, ${total} turns in batches of ${batchSize}, ${subscriptions.length} subscriptions`,
  )
  // The background job's drain.
  const written = await fill(total)
  const before = await queued()
  const job = new SessionDeriveJob({ database })
  const load = loadAverage()
  const started = performance.now()
  let derived = 0
  for (;;) {
    const pass = await job.runOnce()
    derived += pass
    if (pass === 0) break
  }
  const ms = performance.now() - started
  console.log(
    `consume (queueing): ${((total / written) * 1000).toFixed(0)} turns/s; queued ${before}; ` +
      `job drained ${derived} in ${ms.toFixed(0)} ms = ${((derived / ms) * 1000).toFixed(0)} turns/s ` +
      `(load ${load})`,
  )
  // A reader's catch-up: one subscription's queue of total / subscriptions turns.
  await fill(total)
  const one = subscriptions[0]?.id as string
  const mine = Number(
    (
      await sql<{
        n: number
      }>`select count(*)::int as n from session_queue where subscription_id = ${one}`.execute(database.db)
    ).rows[0]?.n,
  )
  const readStarted = performance.now()
  const taken = await deriveSessions(database.db, one)
  const readMs = performance.now() - readStarted
  const emptyStarted = performance.now()
  for (let i = 0; i < 200; i++) await deriveSessions(database.db, one)
  const emptyMs = (performance.now() - emptyStarted) / 200
  const selectStarted = performance.now()
  for (let i = 0; i < 200; i++) await sql`select 1`.execute(database.db)
  const selectMs = (performance.now() - selectStarted) / 200
  console.log(
    `reader catch-up: ${taken} of ${mine} queued turns in ${readMs.toFixed(1)} ms; ` +
      `with nothing queued ${emptyMs.toFixed(3)} ms a call, select 1 ${selectMs.toFixed(3)} ms ` +
      `(load ${loadAverage()})`,
  )
} finally {
  await meter.close()
  await database.close()
  await drop()
}
