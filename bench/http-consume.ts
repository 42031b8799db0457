/**
 * POST /api/tokens/consume over HTTP, next to a bare Fastify route, in one run. Each server runs in its own
 * process; this process is the load generator (autocannon). Spread over 100 subscriptions, or one hot one.
 *
 * Usage: npx tsx bench/http-consume.ts [--seconds 10] [--connections 64] [--mode postgres|pglite] [--hot]
 * Needs `npm run build` first (it starts dist/cli.js, as `npm start` does).
 */
import { type ChildProcess, spawn } from "node:child_process"
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
  },
})
const seconds = Number(values.seconds)
const connections = Number(values.connections)
const subscriptionCount = values.hot ? 1 : Number(values.subscriptions)
const ADMIN = "om_admin_bench_key_0123456789abcdef"
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      if (chunk.toString().includes(text)) resolve()
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk))
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })
}

async function measure(name: string, url: string, requests: autocannon.Request[]) {
  await autocannon({ url, connections, duration: 2, requests }) // warm-up
  const result = await autocannon({ url, connections, duration: seconds, requests })
  const ok = result["2xx"]
  console.log(
    `${name}: ${Math.round(ok / result.duration)} 2xx/s, latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, non-2xx ${result.non2xx}, errors ${result.errors}`,
  )
}

const bare = spawn(process.execPath, ["--import", "tsx", "bench/bare-server.ts"], {
  env: { ...process.env, PORT: "18181" },
})
await waitFor(bare, "ready")
await measure("bare Fastify route", "http://127.0.0.1:18181", [
  {
    method: "POST",
    path: "/bare",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ entity_id: "x" }),
  },
])
bare.kill()

let dropDatabase = async () => {}
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PORT: "18182",
  OMNIMETER_ADMIN_KEY: ADMIN,
  LOG_LEVEL: "warn",
}
if (values.mode === "postgres") {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_http_${process.pid}`
  await admin.query(`create database ${name}`)
  const url = new URL(base)
  url.pathname = `/${name}`
  env.DATABASE_URL = url.toString()
  env.OMNIMETER_POOL_SIZE = "32"
  dropDatabase = async () => {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
} else {
  env.OMNIMETER_DATA_DIR = `/tmp/omnimeter-bench-${process.pid}`
}
const server = spawn(process.execPath, ["dist/cli.js", "start"], { env })
await waitFor(server, "listening")
const api = "http://127.0.0.1:18182"
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
await measure(
  `consume (${values.mode}, ${subscriptionCount} subscription${subscriptionCount === 1 ? "" : "s"})`,
  api,
  [
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
  ],
)
server.kill("SIGTERM")
await new Promise((resolve) => server.once("exit", resolve))
await dropDatabase()
