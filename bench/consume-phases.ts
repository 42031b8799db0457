/**
 * Where a lone consume's time goes: POST /api/tokens/consume one at a time over one kept-alive connection
 * (as bench/latency.ts's unloaded row), against a built server that runs with bench/support/phase-probe.ts
 * loaded. The probe times each request's phases and every database and Redis call from outside the
 * service's code; this script prints them beside the client's own figure.
 *
 * Usage: npx tsx bench/consume-phases.ts [--mode postgres|pglite] [--subscriptions 100] [--sequential 1000]
 *          [--server dist/cli.js] [--port-base 18570] [--cpu-prof <dir>] [--no-redis]
 * Needs `npm run build` first (or another build's cli.js in --server).
 */
import { readFileSync, rmSync } from "node:fs"
import http from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { consumeBody, loadAverage, startBenchServer } from "./support/server.js"

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "postgres" },
    subscriptions: { type: "string", default: "100" },
    sequential: { type: "string", default: "1000" },
    server: { type: "string", default: "dist/cli.js" },
    "port-base": { type: "string", default: "18570" },
    "cpu-prof": { type: "string" },
    "no-redis": { type: "boolean", default: false },
  },
})
const mode = values.mode === "pglite" ? "pglite" : "postgres"
const count = Number(values.sequential)
const warmUp = 200
const portBase = Number(values["port-base"])
const out = join(tmpdir(), `consume-phases-${process.pid}.json`)
const probe = new URL("./support/phase-probe.ts", import.meta.url).pathname

const server = await startBenchServer({
  mode,
  port: portBase,
  redisPort: portBase + 1,
  subscriptions: Number(values.subscriptions),
  redis: !values["no-redis"],
  cli: values.server,
  nodeArgs: ["--import", "tsx", "--import", probe],
  env: { PHASE_PROBE_OUT: out, PHASE_PROBE_SKIP: String(warmUp) },
  ...(values["cpu-prof"] ? { cpuProfileDir: values["cpu-prof"] } : {}),
})

function send(agent: http.Agent, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${server.url}/api/tokens/consume`,
      { method: "POST", agent, headers: server.headers },
      (response) => {
        response.resume()
        response.on("end", () => resolve(response.statusCode ?? 0))
        response.on("error", reject)
      },
    )
    request.on("error", reject)
    request.end(consumeBody(server.entities, n))
  })
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const loadBefore = loadAverage()
for (let i = 0; i < warmUp; i += 1) await send(agent, i)
const latencies: number[] = []
let failed = 0
for (let i = 0; i < count; i += 1) {
  const started = performance.now()
  if ((await send(agent, warmUp + i)) >= 300) failed += 1
  latencies.push(performance.now() - started)
}
agent.destroy()
const loadAfter = loadAverage()
await server.stop()

interface Summary {
  consumes: number
  phases: Record<string, { p50: number; mean: number }>
  calls: Record<
    string,
    {
      perConsume: number
      awaitedPerConsume: number
      awaitedP50: number
      awaitedMeanPerConsume: number
      backgroundPerConsume: number
      backgroundP50: number
    }
  >
}
const summary = JSON.parse(readFileSync(out, "utf8")) as Summary
rmSync(out, { force: true })
const sorted = [...latencies].sort((a, b) => a - b)
const at = (p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(3)} ms` : "-")

console.log(
  `node ${process.version}; ${mode}, ${server.redisLabel}, ${server.entities.length} subscriptions; server ${values.server}`,
)
console.log(`load average: before ${loadBefore}, after ${loadAfter}`)
console.log(
  `client: ${count} sequential consumes, p50 ${ms(at(50))}, p90 ${ms(at(90))}, p99 ${ms(at(99))}, non-2xx ${failed}`,
)
console.log(`server, ${summary.consumes} consumes | p50 | mean`)
for (const [name, { p50, mean }] of Object.entries(summary.phases))
  console.log(`${name} | ${ms(p50)} | ${ms(mean)}`)
console.log(
  "call | per consume | awaited per consume | awaited p50 | awaited time per consume | background per consume | background p50",
)
for (const [kind, c] of Object.entries(summary.calls).sort(
  (a, b) => b[1].awaitedMeanPerConsume - a[1].awaitedMeanPerConsume,
))
  console.log(
    `${kind} | ${c.perConsume.toFixed(2)} | ${c.awaitedPerConsume.toFixed(2)} | ${ms(c.awaitedP50)} | ${ms(c.awaitedMeanPerConsume)} | ${c.backgroundPerConsume.toFixed(2)} | ${ms(c.backgroundP50)}`,
  )
