/**
 * POST /api/tokens/consume over HTTP, next to a bare Fastify route measured in the same run. Each server runs
 * in its own process; this process is the load generator (autocannon). Spread over 100 subscriptions, or one
 * hot one. PostgreSQL mode uses Redis for rate limits: a private redis-server (port 18550 by default) when one can be
 * started, else REDIS_URL. Server RSS is sampled every second while the load runs.
 *
 * Usage: npx tsx bench/http-consume.ts [--seconds 10] [--connections 64] [--mode postgres|pglite] [--hot]
 *          [--no-redis] [--soak 0] [--skip-bare] [--server dist/cli.js]
 * --soak N: after the measurement, keep the load on for N more seconds and report RSS every N/10 seconds.
 * Needs `npm run build` first (it starts dist/cli.js, as `npm start` does). Ports 18540-18550, or from
 * `--port-base N` (N, N+1 and N+10): two runs on one machine must not share ports.
 */
import { spawn } from "node:child_process"
import { parseArgs } from "node:util"
import autocannon from "autocannon"
import { consumeBody, cpuMs, rssMiB, startBenchServer, waitFor } from "./support/server.js"

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
    "port-base": { type: "string", default: "18540" },
  },
})
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const soakSeconds = Number(values.soak)
const subscriptionCount = values.hot ? 1 : Number(values.subscriptions)
const BARE_PORT = Number(values["port-base"])
const API_PORT = BARE_PORT + 1
const REDIS_PORT = BARE_PORT + 10

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

const server = await startBenchServer({
  mode: values.mode === "pglite" ? "pglite" : "postgres",
  port: API_PORT,
  subscriptions: subscriptionCount,
  redis: !values["no-redis"],
  redisPort: REDIS_PORT,
  cli: values.server,
})
helperPids = server.helperPids
const api = server.url
const redisLabel = server.redisLabel
let n = 0
const consumeRequests: autocannon.Request[] = [
  {
    method: "POST",
    path: "/api/tokens/consume",
    headers: server.headers,
    setupRequest: (request: autocannon.Request) => {
      n += 1
      return { ...request, body: consumeBody(server.entities, n) }
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
/** What the database functions cost per request served since start (setup included: it is small). */
async function functionProfile(requests: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1500)) // backends report their counts when idle
  const stats = await server.functionStats()
  if (stats.length === 0) return
  console.log(
    `database functions per consume request (pg_stat_user_functions, since start): ${stats
      .map(
        (f) =>
          `${f.name} ${(f.calls / requests).toFixed(2)} calls, ${((f.totalMs * 1000) / requests).toFixed(0)} us total, ${((f.selfMs * 1000) / requests).toFixed(0)} us self`,
      )
      .join("; ")}`,
  )
}
await functionProfile(n)
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
await server.stop()
