/**
 * Latency of POST /api/tokens/consume where users feel it: not at saturation, but unloaded (one request at a
 * time over a kept-alive connection) and at a constant offered rate (10% and 50% of the maximum measured in
 * the same run), next to GET /healthz and a bare Fastify route (bench/bare-server.ts) at the same rates.
 *
 * The rated runs are open-loop: request i is sent at t0 + i/rate whatever the earlier ones are doing, over
 * as many kept-alive connections as it takes, and its latency counts from its scheduled time, so a stall is
 * charged to every request it delays (no coordinated omission). Each server runs in its own process; this
 * process is the load generator.
 *
 * Usage: npx tsx bench/latency.ts [--mode postgres|pglite] [--subscriptions 100] [--sequential 2000]
 *          [--fractions 0.1,0.5] [--seconds 10] [--max-seconds 5] [--max <decisions/s>] [--no-redis]
 *          [--cpu-prof <dir>] [--server dist/cli.js]
 * Needs `npm run build` first. Ports 18560-18562 (redis 18563), or from `--port-base N` (N to N+3): two runs
 * on one machine must not share ports (a run whose server or Redis port is taken measures the other's).
 */
import { spawn } from "node:child_process"
import http from "node:http"
import { parseArgs } from "node:util"
import autocannon from "autocannon"
import { consumeBody, loadAverage, startBenchServer, waitFor } from "./support/server.js"

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "postgres" },
    subscriptions: { type: "string", default: "100" },
    sequential: { type: "string", default: "2000" },
    fractions: { type: "string", default: "0.1,0.5" },
    seconds: { type: "string", default: "10" },
    "max-seconds": { type: "string", default: "5" },
    max: { type: "string" },
    "no-redis": { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    server: { type: "string", default: "dist/cli.js" },
    "port-base": { type: "string", default: "18560" },
  },
})
const portBase = Number(values["port-base"])
const mode = values.mode === "pglite" ? "pglite" : "postgres"
const sequentialCount = Number(values.sequential)
const seconds = Number(values.seconds)
const fractions = (values.fractions ?? "").split(",").filter(Boolean).map(Number)

interface Target {
  name: string
  url: string
  method: "GET" | "POST"
  path: string
  headers: Record<string, string>
  body: (n: number) => string | undefined
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

function summary(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b)
  const f = (x: number) => x.toFixed(2)
  return `p50 ${f(percentile(sorted, 50))} ms, p90 ${f(percentile(sorted, 90))} ms, p99 ${f(percentile(sorted, 99))} ms, max ${f(sorted.at(-1) ?? Number.NaN)} ms`
}

/** One request; resolves with its status once the whole response has arrived. */
function send(agent: http.Agent, target: Target, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(target.path, target.url)
    const body = target.body(n)
    const request = http.request(
      url,
      {
        method: target.method,
        agent,
        headers: { ...target.headers, ...(body ? {} : { "content-length": 0 }) },
      },
      (response) => {
        response.resume()
        response.on("end", () => resolve(response.statusCode ?? 0))
        response.on("error", reject)
      },
    )
    request.on("error", reject)
    request.end(body)
  })
}

/** `count` requests one after another over one kept-alive connection. */
async function sequential(target: Target, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  for (let i = 0; i < 200; i += 1) await send(agent, target, i) // warm-up
  const latencies: number[] = []
  let failed = 0
  for (let i = 0; i < count; i += 1) {
    const started = performance.now()
    const status = await send(agent, target, 1000 + i)
    latencies.push(performance.now() - started)
    if (status >= 300) failed += 1
  }
  agent.destroy()
  console.log(
    `unloaded ${target.name}: ${summary(latencies)} (${count} sequential, non-2xx ${failed}; load ${loadAverage()})`,
  )
}

/** Open loop at `rate` requests/s for `duration` s; latency from each request's scheduled send time. */
async function openLoop(target: Target, rate: number, duration: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 })
  const total = Math.round(rate * duration)
  const latencies: number[] = []
  let failed = 0
  let errors = 0
  let sent = 0
  const inFlight: Array<Promise<void>> = []
  const t0 = performance.now() + 20
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now()
      while (sent < total && t0 + (sent * 1000) / rate <= now) {
        const scheduled = t0 + (sent * 1000) / rate
        const n = sent
        sent += 1
        inFlight.push(
          send(agent, target, n).then(
            (status) => {
              latencies.push(performance.now() - scheduled)
              if (status >= 300) failed += 1
            },
            () => {
              errors += 1
            },
          ),
        )
      }
      if (sent < total) setTimeout(tick, 1)
      else done()
    }
    tick()
  })
  await Promise.all(inFlight)
  const achieved = latencies.length / ((performance.now() - t0) / 1000)
  agent.destroy()
  console.log(
    `  ${target.name} at ${Math.round(rate)}/s offered (${Math.round(achieved)}/s answered): ${summary(latencies)}, non-2xx ${failed}, errors ${errors}; load ${loadAverage()}`,
  )
  return latencies
}

const bare = spawn(process.execPath, ["--import", "tsx", "bench/bare-server.ts"], {
  env: { ...process.env, PORT: String(portBase) },
})
await waitFor(bare, "ready")
const server = await startBenchServer({
  mode,
  port: portBase + 1,
  subscriptions: Number(values.subscriptions),
  redis: !values["no-redis"],
  redisPort: portBase + 3,
  cli: values.server,
  ...(values["cpu-prof"] ? { cpuProfileDir: values["cpu-prof"] } : {}),
})
const { entities } = server
const bareTarget: Target = {
  name: "bare route",
  url: `http://127.0.0.1:${portBase}`,
  method: "POST",
  path: "/bare",
  headers: { "content-type": "application/json" },
  body: (n) => JSON.stringify({ entity_id: entities[n % entities.length] }),
}
const healthz: Target = {
  name: "GET /healthz",
  url: server.url,
  method: "GET",
  path: "/healthz",
  headers: {},
  body: () => undefined,
}
const consume: Target = {
  name: `consume (${mode}, ${server.redisLabel}, ${entities.length} subscriptions)`,
  url: server.url,
  method: "POST",
  path: "/api/tokens/consume",
  headers: server.headers,
  body: (n) => consumeBody(entities, n),
}

console.log(`node ${process.version}, load average at start ${loadAverage()}`)
await sequential(bareTarget, sequentialCount)
await sequential(healthz, sequentialCount)
await sequential(consume, sequentialCount)

if (fractions.length > 0) {
  let max = Number(values.max ?? 0)
  if (!max) {
    let n = 0
    const result = await autocannon({
      url: server.url,
      connections: 64,
      duration: Number(values["max-seconds"]),
      requests: [
        {
          method: "POST",
          path: "/api/tokens/consume",
          headers: server.headers,
          setupRequest: (request) => {
            n += 1
            return { ...request, body: consumeBody(entities, n) }
          },
        },
      ],
    })
    max = result["2xx"] / result.duration
    console.log(
      `maximum: ${Math.round(max)} consume 2xx/s (autocannon, 64 connections, ${values["max-seconds"]} s, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}; load ${loadAverage()})`,
    )
  }
  for (const fraction of fractions) {
    const rate = max * fraction
    console.log(
      `at ${Math.round(fraction * 100)}% of the maximum, ${Math.round(rate)} requests/s for ${seconds} s:`,
    )
    const bareLatencies = await openLoop(bareTarget, rate, seconds)
    const consumeLatencies = await openLoop(consume, rate, seconds)
    const b = [...bareLatencies].sort((x, y) => x - y)
    const c = [...consumeLatencies].sort((x, y) => x - y)
    console.log(
      `  overhead of consume over the bare route: p50 ${(percentile(c, 50) - percentile(b, 50)).toFixed(2)} ms, p99 ${(percentile(c, 99) - percentile(b, 99)).toFixed(2)} ms`,
    )
  }
}

await server.stop()
bare.kill()
