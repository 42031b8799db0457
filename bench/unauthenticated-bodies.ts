/**
 * What unauthenticated callers with big bodies cost the server (issue 11, defect 8): 200 connections each
 * announce a 1 MB body without a key and send all of it but the last byte, then hold the connection. The
 * server's RSS is sampled from /proc before and while they hold; how many connections the server answered
 * and closed is counted. Then, for 10 s, 30 such uploads run back to back while 8 callers with a valid key
 * call GET /api/me: their throughput is compared with 10 s without the uploads.
 *
 * Usage: npx tsx bench/unauthenticated-bodies.ts [--root <checkout>] [--port 18190] [--mode postgres|pglite]
 * `--root` runs another checkout's server (e.g. the commit before the fix) with the same load. PostgreSQL
 * (a scratch database on BENCH_POSTGRES_URL's server) by default: embedded PGlite's own memory swings by
 * hundreds of MiB and hides what the connections cost. The server runs `node --import tsx src/cli.ts start`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import http from "node:http"
import net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import pg from "pg"

const { values } = parseArgs({
  options: {
    root: { type: "string", default: process.cwd() },
    port: { type: "string", default: "18190" },
    mode: { type: "string", default: "postgres" },
  },
})
const PORT = Number(values.port)
const ADMIN = "om_admin_bench_key_0123456789abcdef"
const BODY = 1_048_576
const HOLDERS = 200
const FILLER = Buffer.alloc(BODY - 1, 0x20)

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function start(root: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "start"], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(PORT),
      OMNIMETER_ADMIN_KEY: ADMIN,
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  return new Promise((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("listening on")) resolve(child)
    })
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk))
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)))
  })
}

/** Announces a 1 MB body without a key and sends all but its last byte; resolves with the socket. */
function holdUnfinishedBody(): { socket: net.Socket; closed: Promise<string> } {
  const socket = net.connect({ host: "127.0.0.1", port: PORT })
  let answer = ""
  socket.setEncoding("latin1")
  socket.on("data", (data: string) => {
    answer += data
  })
  socket.on("error", () => {})
  const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(answer)))
  socket.on("connect", () => {
    socket.write(
      `POST /api/tokens/consume HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${BODY}\r\n\r\n`,
    )
    socket.write(FILLER)
  })
  return { socket, closed }
}

/** Calls GET /api/me with a valid key from `callers` loops for `ms`; returns requests per second. */
async function authenticatedThroughput(callers: number, ms: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: callers })
  const until = Date.now() + ms
  let done = 0
  const call = () =>
    new Promise<void>((resolve) => {
      const request = http.get(
        {
          host: "127.0.0.1",
          port: PORT,
          path: "/api/me",
          agent,
          headers: { authorization: `Bearer ${ADMIN}` },
        },
        (response) => {
          response.resume()
          response.on("end", () => {
            if (response.statusCode === 200) done += 1
            resolve()
          })
        },
      )
      request.on("error", () => resolve())
    })
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (Date.now() < until) await call()
    }),
  )
  agent.destroy()
  return done / (ms / 1000)
}

/** 30 unauthenticated 1 MB uploads at a time, each replaced when it ends, until `stop()`. */
function uploadsInBackground(concurrency: number): { stop(): void } {
  let running = true
  const loop = async () => {
    while (running) {
      // Each upload is held until the server closes it or for 2 s, then replaced after a pause: a steady 30
      // uploads in flight, not a connection flood (which would measure this script's own event loop).
      const { socket, closed } = holdUnfinishedBody()
      await Promise.race([closed, sleep(2000)])
      socket.destroy()
      await sleep(500)
    }
  }
  for (let i = 0; i < concurrency; i += 1) void loop()
  return {
    stop: () => {
      running = false
    },
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "omnimeter-bench-"))
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const scratch = `omnimeter_bench_${process.pid}`
const admin = new pg.Client({ connectionString: base })
let databaseUrl: string | undefined
if (values.mode === "postgres") {
  await admin.connect()
  await admin.query(`create database ${scratch}`)
  const url = new URL(base)
  url.pathname = `/${scratch}`
  databaseUrl = url.toString()
}
const server = await start(
  values.root,
  databaseUrl ? { DATABASE_URL: databaseUrl } : { OMNIMETER_DATA_DIR: dataDir },
)
const pid = server.pid ?? 0
try {
  // Warm up (the first requests compile the routes' validators), then let the heap settle.
  await authenticatedThroughput(4, 3000)
  await sleep(5000)
  const idle = rssMiB(pid)
  const holders = Array.from({ length: HOLDERS }, () => holdUnfinishedBody())
  let holding = 0
  for (let i = 0; i < 10; i += 1) {
    await sleep(500)
    holding = Math.max(holding, rssMiB(pid))
  }
  let answeredAndClosed = 0
  await Promise.all(
    holders.map(async ({ closed }) => {
      const answer = await Promise.race([closed, sleep(100).then(() => undefined)])
      if (answer !== undefined) answeredAndClosed += 1
    }),
  )
  for (const { socket } of holders) socket.destroy()
  await sleep(2000)

  const quiet = await authenticatedThroughput(8, 10_000)
  const uploads = uploadsInBackground(30)
  const underUploads = await authenticatedThroughput(8, 10_000)
  uploads.stop()
  await sleep(2500)

  console.log(`root: ${values.root}, database: ${values.mode}`)
  console.log(`RSS idle: ${idle.toFixed(0)} MiB`)
  console.log(
    `peak RSS with ${HOLDERS} unauthenticated unfinished 1 MB bodies held 5 s: ${holding.toFixed(0)} MiB`,
  )
  console.log(`connections the server had answered and closed by then: ${answeredAndClosed} of ${HOLDERS}`)
  console.log(
    `GET /api/me with a key, 8 callers: ${quiet.toFixed(0)}/s quiet, ${underUploads.toFixed(0)}/s under 30 unauthenticated 1 MB uploads (${((underUploads / quiet) * 100).toFixed(0)}%)`,
  )
} finally {
  server.kill("SIGTERM")
  await new Promise((resolve) => server.once("exit", resolve))
  rmSync(dataDir, { recursive: true, force: true })
  if (databaseUrl) {
    await admin.query(`drop database if exists ${scratch} with (force)`)
    await admin.end()
  }
}
