/**
 * A private PgBouncer (Debian's /usr/sbin/pgbouncer) in front of a private PostgreSQL cluster, for the fault
 * suite: `pool_mode=transaction`, its own temporary directory, its own free loopback port, `auth_type=trust`.
 * As root it runs as the `postgres` system user (PgBouncer refuses root). Stopped by its own pid only.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import pg from "pg"
import { freePort } from "./processes.js"

export const PGBOUNCER_PATH = process.env.OMNIMETER_TEST_PGBOUNCER ?? "/usr/sbin/pgbouncer"

export interface PgBouncer {
  readonly port: number
  /** A URL through the pooler for `user` on `database`. */
  url(user: string, database: string): string
  /** Runs one command on the admin console (`SHOW POOLS`, `RECONNECT db`, ...) and returns its rows. */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(command: string): Promise<R[]>
  /** SIGTERM (SIGKILL after 5 s), then removes its directory. */
  stop(): Promise<void>
}

export interface PgBouncerOptions {
  /** The upstream PostgreSQL port on 127.0.0.1. */
  upstreamPort: number
  /** Databases the pooler serves (same names upstream); "*" serves every database. */
  databases: readonly string[]
  /** Users allowed in (trust: no password). `postgres` is always allowed, as the admin. */
  users: readonly string[]
  /** Server connections per user and database: small, so transactions really move between them. */
  poolSize: number
}

/**
 * Starts PgBouncer and waits until it accepts connections.
 * @example
 * const bouncer = await startPgBouncer({ upstreamPort: cluster.port, databases: ["chaos"], users: ["app"], poolSize: 3 })
 * const url = bouncer.url("app", "chaos")
 * await bouncer.stop()
 */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "omnimeter-pgbouncer-"))
  const users = [...new Set(["postgres", ...options.users])]
  writeFileSync(join(dir, "userlist.txt"), users.map((user) => `"${user}" ""\n`).join(""))
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      ...options.databases.map(
        (db) => `${db} = host=127.0.0.1 port=${options.upstreamPort}${db === "*" ? "" : ` dbname=${db}`}`,
      ),
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "admin_users = postgres",
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize}`,
      "min_pool_size = 0",
      "reserve_pool_size = 0",
      "max_client_conn = 500",
      // What a managed pooler does too: nothing is reset between clients in transaction mode.
      "server_reset_query =",
      "ignore_startup_parameters = extra_float_digits",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  )
  const asRoot = process.getuid?.() === 0
  if (asRoot) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim())
    const [uid, gid] = [id("-u"), id("-g")]
    for (const path of [dir, join(dir, "userlist.txt"), join(dir, "pgbouncer.ini")]) chownSync(path, uid, gid)
    chmodSync(dir, 0o700)
  }
  const child: ChildProcess = spawn(
    PGBOUNCER_PATH,
    [...(asRoot ? ["-u", "postgres"] : []), "pgbouncer.ini"],
    {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    },
  )
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString()
  })
  const spawnFailed = new Promise<never>((_, reject) =>
    child.once("error", (error) => reject(new Error(`cannot run ${PGBOUNCER_PATH}: ${error.message}`))),
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))

  const url = (user: string, database: string) => `postgres://${user}@127.0.0.1:${port}/${database}`
  const admin = async <R extends pg.QueryResultRow>(command: string) => {
    const client = new pg.Client({ connectionString: url("postgres", "pgbouncer") })
    await client.connect()
    try {
      return (await client.query<R>(command)).rows
    } finally {
      await client.end()
    }
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const ready = async () => {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}):\n${output}`)
      try {
        await admin("SHOW VERSION")
        return
      } catch {
        await sleep(50)
      }
    }
    throw new Error(`pgbouncer did not accept connections within 5 s:\n${output}`)
  }
  try {
    await Promise.race([ready(), spawnFailed])
  } catch (error) {
    await stop()
    throw error
  }
  return { port, url, admin, stop }
}
