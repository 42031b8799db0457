/**
 * POST /api/usage/import with a million NDJSON lines, streamed: lines/s and the server's peak RSS, sampled
 * from /proc while the import runs. One line in 1,000 is invalid, so the rejected list is exercised too.
 *
 * Usage: npx tsx bench/usage-import.ts [--lines 1000000] [--mode postgres|pglite] [--idle 0] [--analytics]
 *          [--restart] [--server dist/cli.js]
 * --idle N: after the import, sample the server's RSS for N more seconds (memory after a large import).
 * --analytics: then time the analytics answers over the imported period (comprehensive, breakdown by
 *   chatbot and by end user, journeys), one request at a time, the heavy requests of an embedded server.
 * --restart (pglite): then stop the server and start it again on the same data directory, and report its
 *   RSS at /healthz and after --idle seconds (idle memory on an existing data directory with the history).
 * Needs `npm run build` first (it starts dist/cli.js, as `npm start` does). The data directory is removed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import http from "node:http"
import { Readable } from "node:stream"
import { parseArgs } from "node:util"
import pg from "pg"

const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "1000000" },
    mode: { type: "string", default: "postgres" },
    idle: { type: "string", default: "0" },
    analytics: { type: "boolean", default: false },
    restart: { type: "boolean", default: false },
    /** Another build's cli.js, e.g. an earlier commit's, to compare in the same conditions. */
    server: { type: "string", default: "dist/cli.js" },
  },
})
const lineCount = Number(values.lines)
const ADMIN = "om_admin_bench_key_0123456789abcdef"
const PORT = 18183
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes(text)) resolve()
    })
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk))
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })
}

let dropDatabase = async () => {}
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PORT: String(PORT),
  OMNIMETER_ADMIN_KEY: ADMIN,
  LOG_LEVEL: "warn",
  // A million lines are about 250 MB, next to the default 256 MiB body limit.
  OMNIMETER_IMPORT_BODY_LIMIT_BYTES: String(1024 * 1024 * 1024),
  // The whole body must arrive within the request timeout (5 min by default): a loaded machine needs longer.
  OMNIMETER_REQUEST_TIMEOUT_MS: String(60 * 60_000),
}
if (values.mode === "postgres") {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_import_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  env.DATABASE_URL = url.toString()
  dropDatabase = async () => {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
} else {
  env.OMNIMETER_DATA_DIR = `/tmp/omnimeter-bench-import-${process.pid}`
}
const dataDir = env.OMNIMETER_DATA_DIR
let server = spawn(process.execPath, [values.server, "start"], { env })
await waitFor(server, "listening")
let pid = server.pid ?? 0
const api = `http://127.0.0.1:${PORT}`
const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }
const created = await fetch(`${api}/api/subscriptions`, {
  method: "POST",
  headers,
  body: JSON.stringify({
    entity_id: "import-bench",
    entity_type: "org",
    plan: "enterprise",
    token_limit: 1e14,
  }),
})
const { id } = (await created.json()) as { id: string }

const channels = ["website", "whatsapp", "messenger", "instagram", "telegram", "api"]
const start = Date.parse("2026-08-01T00:00:00Z")
function* ndjson(): Generator<string> {
  let chunk = ""
  for (let i = 0; i < lineCount; i += 1) {
    const line =
      i % 1000 === 999
        ? `{"subscription_id":"${id}","channel":"fax","created_at":"2026-08-01T00:00:00Z","raw_tokens":1}`
        : JSON.stringify({
            subscription_id: id,
            channel: channels[i % channels.length],
            chatbot_id: `bot-${i % 7}`,
            session_id: `s-${Math.floor(i / 6)}`,
            user_identifier: `u-${i % 50_000}`,
            created_at: new Date(start + i * 5_000).toISOString(),
            raw_tokens: 20 + (i % 400),
            idempotency_key: `import-${i}`,
          })
    chunk += `${line}\n`
    if (chunk.length > 64_000) {
      yield chunk
      chunk = ""
    }
  }
  if (chunk) yield chunk
}

const rssBefore = rssKiB(pid)
let peak = rssBefore
const sampler = setInterval(() => {
  peak = Math.max(peak, rssKiB(pid))
}, 200)
const began = performance.now()
const answer = await new Promise<string>((resolve, reject) => {
  const request = http.request(
    `${api}/api/usage/import`,
    { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/x-ndjson" } },
    (response) => {
      let body = ""
      response.on("data", (data: Buffer) => {
        body += data.toString()
      })
      response.on("end", () => resolve(body))
    },
  )
  request.on("error", reject)
  Readable.from(ndjson()).pipe(request)
})
const seconds = (performance.now() - began) / 1000
clearInterval(sampler)
type Report = { imported: number; rejected_count: number; rejected: unknown[] }
const parsed = JSON.parse(answer) as Report & { error?: { code: string; import?: Report } }
if (parsed.error) console.log(`the import stopped: ${parsed.error.code}`)
const report = parsed.error?.import ?? parsed
console.log(
  `import (${values.mode}): ${lineCount} lines in ${seconds.toFixed(1)} s = ${Math.round(lineCount / seconds)} lines/s; imported ${report.imported}, rejected ${report.rejected_count} (${report.rejected?.length ?? 0} listed); server RSS ${Math.round(rssBefore / 1024)} MiB before, peak ${Math.round(peak / 1024)} MiB`,
)
const idleSeconds = Number(values.idle)
/** RSS every second for `seconds`, as "max / last" in MiB. */
async function idleRss(seconds: number): Promise<string> {
  const samples: number[] = []
  for (let i = 0; i < seconds; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    samples.push(rssKiB(pid))
  }
  return `${Math.round(Math.max(...samples) / 1024)} / ${Math.round((samples.at(-1) ?? 0) / 1024)} MiB`
}
if (idleSeconds > 0)
  console.log(`after the import, ${idleSeconds} s idle: server RSS max / last ${await idleRss(idleSeconds)}`)
if (values.analytics) {
  const period = "from=2026-08-01&to=2026-09-27&tz=UTC"
  const paths = [
    ["comprehensive", `/api/onboarding/analytics/${id}?${period}`],
    ["breakdown by chatbot", `/api/onboarding/analytics/${id}/breakdown?${period}&by=chatbot`],
    ["breakdown by end user", `/api/onboarding/analytics/${id}/breakdown?${period}&by=user`],
    ["journeys", `/api/onboarding/analytics/${id}/journeys?${period}`],
  ]
  for (const [name, path] of paths) {
    const times: number[] = []
    let status = 0
    for (let i = 0; i < 3; i += 1) {
      const t0 = performance.now()
      const response = await fetch(`${api}${path}`, { headers })
      await response.text()
      status = response.status
      times.push(performance.now() - t0)
    }
    console.log(
      `${name}: HTTP ${status}, ${times.map((t) => t.toFixed(0)).join(", ")} ms; server RSS ${Math.round(rssKiB(pid) / 1024)} MiB`,
    )
  }
}
server.kill("SIGTERM")
await new Promise((resolve) => server.once("exit", resolve))
if (values.restart && dataDir) {
  const began = performance.now()
  server = spawn(process.execPath, [values.server, "start"], { env })
  await waitFor(server, "listening")
  pid = server.pid ?? 0
  await fetch(`${api}/healthz`)
  const atHealthz = Math.round(rssKiB(pid) / 1024)
  console.log(
    `restart on the imported data directory: /healthz after ${((performance.now() - began) / 1000).toFixed(1)} s, RSS ${atHealthz} MiB; then ${idleSeconds} s idle: max / last ${await idleRss(idleSeconds)}`,
  )
  server.kill("SIGTERM")
  await new Promise((resolve) => server.once("exit", resolve))
}
if (dataDir) rmSync(dataDir, { recursive: true, force: true })
await dropDatabase()
