/**
 * In-process library throughput: allowed decisions per second and the latency each turn adds, spread over
 * 100 subscriptions, on embedded PGlite and on PostgreSQL (when BENCH_POSTGRES_URL or the local default is
 * reachable). Usage: npm run bench:meter [-- --seconds 10 --concurrency 64 --keyed]
 * (--keyed: every turn carries a unique idempotency key, the path a retrying client takes.)
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import pg from "pg"
import { createMeter, type Meter } from "../src/index.js"

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

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

async function prepare(meter: Meter): Promise<string[]> {
  const entities: string[] = []
  for (let i = 0; i < subscriptionCount; i += 1) {
    const entityId = `bench-${i}`
    const sub = await meter.createSubscription({
      entityId,
      entityType: "org",
      plan: "enterprise",
      tokenLimit: 1e14,
    })
    for (const channel of ["website", "whatsapp", "api"] as const) {
      await meter.updateChannelConfig(sub.id, channel, {
        requestsPerMinute: 1_000_000,
        tokensPerMinute: 1_000_000_000,
      })
    }
    entities.push(entityId)
  }
  return entities
}

async function drive(meter: Meter, entities: string[]) {
  const channels = ["website", "whatsapp", "api"] as const
  const latencies: number[] = []
  let allowed = 0
  let denied = 0
  let n = 0
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  async function worker() {
    while (performance.now() < deadline) {
      n += 1
      const t0 = performance.now()
      const decision = await meter.validateAndConsumeTokens({
        entityId: entities[n % entities.length] ?? "bench-0",
        entityType: "org",
        estimatedTokens: 50 + (n % 200),
        operationType: "chat",
        channel: channels[n % 3] ?? "website",
        chatbotId: "bench-bot",
        sessionId: `s-${n % 5000}`,
        userIdentifier: `u-${n % 20000}`,
        messageLength: 120,
        ...(values.keyed ? { idempotencyKey: `bench-${n}` } : {}),
      })
      latencies.push(performance.now() - t0)
      if (decision.allowed) allowed += 1
      else denied += 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    allowedPerSecond: Math.round(allowed / elapsed),
    denied,
    p50: percentile(latencies, 50).toFixed(2),
    p99: percentile(latencies, 99).toFixed(2),
  }
}

async function bench(name: string, open: () => Promise<{ meter: Meter; done: () => Promise<void> }>) {
  const { meter, done } = await open()
  try {
    const entities = await prepare(meter)
    const result = await drive(meter, entities)
    console.log(
      `${name}: ${result.allowedPerSecond} allowed decisions/s, p50 ${result.p50} ms, p99 ${result.p99} ms, denied ${result.denied} (concurrency ${concurrency}, ${seconds} s)`,
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
