/**
 * What the HTTP benchmarks share: the built server (dist/cli.js) in its own process, on a fresh PostgreSQL
 * database with a private redis-server, or on a fresh embedded data directory; enterprise subscriptions with
 * rate limits raised out of the way; consume bodies spread over them; and /proc readings of a process.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import pg from "pg"

export const ADMIN_KEY = "om_admin_bench_key_0123456789abcdef"
export const CHANNELS = ["website", "whatsapp", "api"] as const

/** Resolves when the child prints `text` on stdout; rejects when it exits first. */
export function waitFor(child: ChildProcess, text: string): Promise<void> {
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
export function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match ? Math.round(Number(match[1]) / 1024) : 0
  } catch {
    return 0
  }
}

/** CPU time (user + system) a process has used, in ms (Linux /proc; clock ticks of 10 ms). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** The machine's 1-minute load average, for the record next to every figure. */
export function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
}

export interface BenchServer {
  url: string
  pid: number | undefined
  headers: Record<string, string>
  /** Entity ids of the subscriptions created. */
  entities: string[]
  /** "private redis-server", "REDIS_URL" or "no Redis". */
  redisLabel: string
  /** PIDs of the PostgreSQL backends of the benchmark database and of the private redis-server. */
  helperPids(): Promise<number[]>
  /**
   * PostgreSQL only: calls and time of each omnimeter_* function so far (pg_stat_user_functions; the
   * benchmark database tracks PL/pgSQL functions). Empty on PGlite, or when the setting was refused.
   */
  functionStats(): Promise<Array<{ name: string; calls: number; totalMs: number; selfMs: number }>>
  stop(): Promise<void>
}

export interface BenchServerOptions {
  mode: "postgres" | "pglite"
  port: number
  subscriptions: number
  redis?: boolean
  redisPort?: number
  /** Another build's cli.js, to compare builds in the same conditions. */
  cli?: string
  /** Extra environment for the server. */
  env?: Record<string, string>
  /** Run the server under `node --cpu-prof`, writing the profile into this directory at exit. */
  cpuProfileDir?: string
  /** More arguments for node before the script (e.g. `--import` of a probe). */
  nodeArgs?: string[]
}

export async function startBenchServer(options: BenchServerOptions): Promise<BenchServer> {
  const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const cleanups: Array<() => Promise<void>> = []
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(options.port),
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: "warn",
    ...options.env,
  }
  let redisLabel = "no Redis"
  let helperPids: () => Promise<number[]> = async () => []
  let functionStats: BenchServer["functionStats"] = async () => []
  if (options.mode === "postgres") {
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    const name = `omnimeter_bench_${process.pid}_${options.port}`
    await admin.query(`create database ${name}`)
    const url = new URL(base)
    url.pathname = `/${name}`
    env.DATABASE_URL = url.toString()
    env.OMNIMETER_POOL_SIZE ??= "16"
    cleanups.push(async () => {
      await admin.query(`drop database ${name} with (force)`)
      await admin.end()
    })
    try {
      // Needs a superuser (the shared test server's postgres user is one); without it, no function stats.
      await admin.query(`alter database ${name} set track_functions = 'pl'`)
    } catch {
      // not a superuser: functionStats() answers what it can (nothing)
    }
    functionStats = async () => {
      const client = new pg.Client({ connectionString: url.toString() })
      await client.connect()
      try {
        const rows = await client.query<{ name: string; calls: string; total: number; self: number }>(
          `select funcname as name, calls, total_time as total, self_time as self from pg_stat_user_functions
           where funcname like 'omnimeter%' order by total_time desc`,
        )
        return rows.rows.map((r) => ({
          name: r.name,
          calls: Number(r.calls),
          totalMs: r.total,
          selfMs: r.self,
        }))
      } finally {
        await client.end()
      }
    }
    helperPids = async () => {
      const rows = await admin.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1", [
        name,
      ])
      return rows.rows.map((row) => row.pid)
    }
    if (options.redis !== false) {
      if (spawnSync("redis-server", ["--version"]).status === 0) {
        const port = options.redisPort ?? 18550
        const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", ""])
        await waitFor(redis, "Ready to accept connections")
        env.REDIS_URL = `redis://127.0.0.1:${port}`
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
    env.OMNIMETER_DATA_DIR = `/tmp/omnimeter-bench-${process.pid}-${options.port}`
    cleanups.push(async () => rmSync(env.OMNIMETER_DATA_DIR ?? "", { recursive: true, force: true }))
  }
  const nodeArgs = [
    ...(options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] : []),
    ...(options.nodeArgs ?? []),
  ]
  const server = spawn(process.execPath, [...nodeArgs, options.cli ?? "dist/cli.js", "start"], { env })
  await waitFor(server, "listening")
  const url = `http://127.0.0.1:${options.port}`
  const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }
  const entities: string[] = []
  for (let i = 0; i < options.subscriptions; i += 1) {
    const entityId = `bench-${i}`
    const created = await fetch(`${url}/api/subscriptions`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        entity_id: entityId,
        entity_type: "org",
        plan: "enterprise",
        token_limit: 1e14,
      }),
    })
    const { id } = (await created.json()) as { id: string }
    for (const channel of CHANNELS) {
      await fetch(`${url}/api/onboarding/subscription/${id}/channels/${channel}/config`, {
        method: "PUT",
        headers,
        body: JSON.stringify({ requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000 }),
      })
    }
    entities.push(entityId)
  }
  return {
    url,
    pid: server.pid,
    headers,
    entities,
    redisLabel,
    helperPids: () => helperPids(),
    functionStats: () => functionStats(),
    stop: async () => {
      server.kill("SIGTERM")
      await new Promise((resolve) => server.once("exit", resolve))
      for (const cleanup of cleanups.reverse()) await cleanup()
    },
  }
}

/** The n-th consume body of the benchmarks: spread over the entities, three channels, 5,000 sessions. */
export function consumeBody(entities: readonly string[], n: number): string {
  return JSON.stringify({
    entity_id: entities[n % entities.length],
    entity_type: "org",
    estimated_tokens: 50 + (n % 200),
    channel: CHANNELS[n % 3],
    chatbot_id: "bench-bot",
    session_id: `s-${n % 5000}`,
    user_identifier: `u-${n % 20000}`,
    message_length: 120,
  })
}
