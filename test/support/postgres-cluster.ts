/**
 * A private PostgreSQL cluster for the fault suite: `initdb` and `pg_ctl` from the installed PostgreSQL, in a
 * temporary directory, on a free loopback port. Tests stop, restart and kill it freely; the machine's shared
 * PostgreSQL is never touched. PostgreSQL refuses to run as root, so as root the cluster belongs to the
 * `postgres` system user (`runuser`).
 */
import { execFile, execFileSync } from "node:child_process"
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import pg from "pg"
import { freePort } from "./processes.js"

const exec = promisify(execFile)

function binary(name: string): string {
  const dir = process.env.OMNIMETER_TEST_PG_BIN
  return dir ? join(dir, name) : name
}

/** The uid and gid of a system user, or undefined when there is none. */
function systemUser(name: string): { uid: number; gid: number } | undefined {
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, name], { encoding: "utf8" }).trim())
    return { uid: id("-u"), gid: id("-g") }
  } catch {
    return undefined
  }
}

export interface PostgresCluster {
  readonly port: number
  readonly dataDir: string
  /** The superuser's URL for database `name` (default `postgres`). */
  url(name?: string): string
  /** `pg_ctl start -w`. */
  start(): Promise<void>
  /** `pg_ctl stop -m <mode> -w`. */
  stop(mode?: "smart" | "fast" | "immediate"): Promise<void>
  /** `pg_ctl restart -m <mode> -w`. */
  restart(mode?: "smart" | "fast" | "immediate"): Promise<void>
  /** `pg_terminate_backend` on every client backend of `database` (default: every database) but this one. */
  terminateBackends(database?: string): Promise<number>
  /** Runs one statement as the superuser on database `name` (default `postgres`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, database?: string): Promise<R[]>
  /** Creates a database and returns its URL. */
  createDatabase(name: string): Promise<string>
  /** Stops the server (immediately) and removes the directory. */
  destroy(): Promise<void>
}

/**
 * Creates and starts a private cluster. Destroy it in `afterAll`.
 * @example
 * const cluster = await startPostgresCluster()
 * const url = await cluster.createDatabase("chaos")
 * await cluster.restart("fast")
 * await cluster.destroy()
 */
export async function startPostgresCluster(): Promise<PostgresCluster> {
  const port = await freePort()
  const root = mkdtempSync(join(tmpdir(), "omnimeter-pg-"))
  const dataDir = join(root, "data")
  const asRoot = process.getuid?.() === 0
  const owner = asRoot ? systemUser("postgres") : undefined
  if (asRoot && !owner) throw new Error("running as root needs a `postgres` system user to own the cluster")
  if (owner) {
    chownSync(root, owner.uid, owner.gid)
    chmodSync(root, 0o700)
  }
  const run = (name: string, args: string[]) =>
    owner
      ? exec("runuser", ["-u", "postgres", "--", binary(name), ...args], { cwd: root })
      : exec(binary(name), args, { cwd: root })
  await run("initdb", ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${root}`,
    "-c fsync=off",
    "-c synchronous_commit=off",
    "-c full_page_writes=off",
    "-c max_connections=200",
  ].join(" ")
  const pgCtl = (args: string[]) =>
    run("pg_ctl", ["-D", dataDir, "-o", options, "-l", join(root, "server.log"), "-w", "-t", "60", ...args])

  const url = (name = "postgres") => `postgres://postgres@127.0.0.1:${port}/${name}`
  const query = async <R extends pg.QueryResultRow>(text: string, database = "postgres") => {
    const client = new pg.Client({ connectionString: url(database) })
    await client.connect()
    try {
      return (await client.query<R>(text)).rows
    } finally {
      await client.end()
    }
  }
  const cluster: PostgresCluster = {
    port,
    dataDir,
    url,
    start: async () => void (await pgCtl(["start"])),
    stop: async (mode = "fast") => void (await pgCtl(["stop", "-m", mode])),
    restart: async (mode = "fast") => void (await pgCtl(["restart", "-m", mode])),
    terminateBackends: async (database) => {
      const rows = await query<{ n: string }>(
        `select count(pg_terminate_backend(pid)) as n from pg_stat_activity
         where backend_type = 'client backend' and pid <> pg_backend_pid()
         ${database ? `and datname = '${database.replaceAll("'", "''")}'` : ""}`,
      )
      return Number(rows[0]?.n ?? 0)
    },
    query,
    createDatabase: async (name) => {
      await query(`create database "${name.replaceAll('"', '""')}"`)
      return url(name)
    },
    destroy: async () => {
      await pgCtl(["stop", "-m", "immediate"]).catch(() => {})
      rmSync(root, { recursive: true, force: true })
    },
  }
  try {
    await cluster.start()
  } catch (error) {
    rmSync(root, { recursive: true, force: true })
    throw error
  }
  return cluster
}
