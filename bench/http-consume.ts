/**
 * POST /api/tokens/consume over HTTP, next to a bare Fastify route measured in the same run. Each server runs
 * in its own process; this process is the load generator (autocannon). Spread over 100 subscriptions, or one
 * hot one. PostgreSQL mode uses Redis for rate limits: a private redis-server on port 18550 when one can be
 * started, else REDIS_URL. Server RSS is sampled every second while the load runs.
 *
 * Usage: npx tsx bench/http-consume.ts [--seconds 10] [--connections 64] [--mode postgres|pglite] [--hot]
 *          [--no-redis] [--soak 0] [--skip-bare] [--server dist/cli.js]
 * --soak N: after the measurement, keep the load on for N more seconds and report RSS every N/10 seconds.
 * Needs `npm run build` first (it starts dist/cli.js, as `npm start` does). Ports 18540-18550.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { parseArgs } from "node:util"
import autocannon from "autocannon"
import pg from "pg"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    mode: { type: "string", default: "postgres" },
    hot: { type: "boolean", default: false },
    subscriptions: { type: "string", default: "100" },
    "no-redis": { type: "boolean", default: false },
    soak: { type: "string", default: "0" },
    "skip-bare": { type: "boolean", default: false },
    /** Another build's cli.js, e.g. an earlier commit's, to compare in the same conditions. */
    server: { type: "string", default: "dist/cli.js" },
  },
})
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const soakSeconds = Number(values.soak)
const subscriptionCount = values.hot ? 1 : Number(values.subscriptions)
const ADMIN = "om_admin_bench_key_0123456789abcdef"
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const BARE_PORT = 18540
const API_PORT = 18541
const REDIS_PORT = 18550

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      if (chunk.toString().includes(text)) resolve()
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk))
    child.once("exit", (code) => reject(new Error(`process exited with ${code}`)))
  })
}

/** Resident set size of a process, in MiB (Linux /proc). */
function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match ? Math.round(Number(match[1]) / 1024) : 0
  } catch {
    return 0
  }
}

/** CPU time (user + system) a process has used, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** The processes whose CPU a decision costs besides the server: PostgreSQL backends and redis-server. */
let helperPids: () => Promise<number[]> = async () => []

async function measure(name: string, url: string, requests: autocannon.Request[], pid?: number) {
  await autocannon({ url, connections, duration: 2, requests }) // warm-up
  const samples: number[] = []
  const sampler = setInterval(() => samples.push(rssMiB(pid)), 1000)
  const helpers = await helperPids()
  const cpuBefore = { server: cpuMs(pid), helpers: helpers.reduce((sum, p) => sum + cpuMs(p), 0) }
  const result = await autocannon({ url, connections, duration: seconds, requests })
  const cpuServer = cpuMs(pid) - cpuBefore.server
  const cpuHelpers = helpers.reduce((sum, p) => sum + cpuMs(p), 0) - cpuBefore.helpers
  clearInterval(sampler)
  const ok = result["2xx"]
  const rss = pid === undefined ? "" : `, server RSS max ${Math.max(...samples)} MiB`
  const total = result["2xx"] + result.non2xx
  const cpu =
    pid === undefined
      ? ""
      : `, CPU per request: server ${((cpuServer * 1000) / total).toFixed(0)} us, database+redis ${((cpuHelpers * 1000) / total).toFixed(0)} us`
  console.log(
    `${name}: ${Math.round(ok / result.duration)} 2xx/s, latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}${rss}${cpu}`,
  )
}

if (!values["skip-bare"]) {
  const bare = spawn(process.execPath, ["--import", "tsx", "bench/bare-server.ts"], {
    env: { ...process.env, PORT: String(BARE_PORT) },
  })
  await waitFor(bare, "ready")
  await measure(
    "bare Fastify route",
    `http://127.0.0.1:${BARE_PORT}`,
    [
      {
        method: "POST",
        path: "/bare",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ entity_id: "x" }),
      },
    ],
    bare.pid,
  )
  bare.kill()
}

const cleanups: Array<() => Promise<void>> = []
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PORT: String(API_PORT),
  OMNIMETER_ADMIN_KEY: ADMIN,
  LOG_LEVEL: "warn",
}
let redisLabel = "no Redis"
if (values.mode === "postgres") {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_http_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  env.DATABASE_URL = url.toString()
  env.OMNIMETER_POOL_SIZE = "16"
  cleanups.push(async () => {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  })
  helperPids = async () => {
    const rows = await admin.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1", [
      name,
    ])
    return rows.rows.map((row) => row.pid)
  }
  if (!values["no-redis"]) {
    if (spawnSync("redis-server", ["--version"]).status === 0) {
      const redis = spawn("redis-server", ["--port", String(REDIS_PORT), "--bind", "127.0.0.1", "--save", ""])
      await waitFor(redis, "Ready to accept connections")
      env.REDIS_URL = `redis://127.0.0.1:${REDIS_PORT}`
      redisLabel = "private redis-server"
      const databasePids = helperPids
      helperPids = async () => [...(await databasePids()), ...(redis.pid === undefined ? [] : [redis.pid])]
      cleanups.push(async () => {
        redis.kill()
      })
    } else if (process.env.REDIS_URL) {
      env.OMNIMETER_REDIS_KEY_PREFIX = `omnimeter-bench:${process.pid}:`
      redisLabel = "REDIS_URL"
    }
  }
} else {
  env.OMNIMETER_DATA_DIR = `/tmp/omnimeter-bench-${process.pid}`
  cleanups.push(async () => rmSync(env.OMNIMETER_DATA_DIR ?? "", { recursive: true, force: true }))
}
const server = spawn(process.execPath, [values.server, "start"], { env })
await waitFor(server, "listening")
const api = `http://127.0.0.1:${API_PORT}`
const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }
const entities: string[] = []
for (let i = 0; i < subscriptionCount; i += 1) {
  const entityId = `bench-${i}`
  const created = await fetch(`${api}/api/subscriptions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ entity_id: entityId, entity_type: "org", plan: "enterprise", token_limit: 1e14 }),
  })
  const { id } = (await created.json()) as { id: string }
  for (const channel of ["website", "whatsapp", "api"]) {
    await fetch(`${api}/api/onboarding/subscription/${id}/channels/${channel}/config`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000 }),
    })
  }
  entities.push(entityId)
}
let n = 0
const channels = ["website", "whatsapp", "api"]
const consumeRequests: autocannon.Request[] = [
  {
    method: "POST",
    path: "/api/tokens/consume",
    headers,
    setupRequest: (request: autocannon.Request) => {
      n += 1
      return {
        ...request,
        body: JSON.stringify({
          entity_id: entities[n % entities.length],
          entity_type: "org",
          estimated_tokens: 50 + (n % 200),
          channel: channels[n % 3],
          chatbot_id: "bench-bot",
          session_id: `s-${n % 5000}`,
          user_identifier: `u-${n % 20000}`,
          message_length: 120,
        }),
      }
    },
  },
]
console.log(`server RSS after start and setup: ${rssMiB(server.pid)} MiB`)
await measure(
  `consume (${values.mode}, ${redisLabel}, ${subscriptionCount} subscription${subscriptionCount === 1 ? "" : "s"})`,
  api,
  consumeRequests,
  server.pid,
)
/** Mean group-commit batch size and statement time so far, from the server's own /metrics. */
async function batchStats(): Promise<string> {
  const text = await (await fetch(`${api}/metrics`)).text()
  if (!text.includes("omnimeter_group_commit_batch_size_count")) return "not reported by this build"
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN)
  const batches = value("omnimeter_group_commit_batch_size_count")
  const size = value("omnimeter_group_commit_batch_size_sum") / batches
  const ms = (value("omnimeter_group_commit_duration_seconds_sum") / batches) * 1000
  return `${batches} batches, mean ${size.toFixed(1)} decisions and ${ms.toFixed(2)} ms per batch statement`
}
console.log(`group commit: ${await batchStats()}`)
if (soakSeconds > 0) {
  const step = Math.max(1, Math.round(soakSeconds / 10))
  const trace: string[] = []
  const sampler = setInterval(() => trace.push(`${trace.length * step}s ${rssMiB(server.pid)}`), step * 1000)
  const result = await autocannon({ url: api, connections, duration: soakSeconds, requests: consumeRequests })
  clearInterval(sampler)
  console.log(
    `soak ${soakSeconds} s: ${Math.round(result["2xx"] / result.duration)} 2xx/s, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}`,
  )
  console.log(`soak RSS MiB (time rss): ${trace.join(", ")}`)
  console.log(`group commit: ${await batchStats()}`)
}
server.kill("SIGTERM")
await new Promise((resolve) => server.once("exit", resolve))
for (const cleanup of cleanups.reverse()) await cleanup()
