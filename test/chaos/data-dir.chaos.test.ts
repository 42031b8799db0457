/**
 * The embedded database restarts after a `kill -9`, also as PID 1 of a new PID namespace (a container
 * without an init), where the new process has exactly the PID the lock names. Real processes: node running
 * the production `openDatabase` on a data directory, killed with SIGKILL from outside.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseLockHolder } from "../../src/storage/data-dir-lock.js"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const DATABASE_MODULE = fileURLToPath(new URL("../../src/storage/database.ts", import.meta.url))
const SUBSCRIPTIONS_MODULE = fileURLToPath(new URL("../../src/storage/subscriptions.ts", import.meta.url))

let dir: string
let script: string
const children: ChildProcess[] = []

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "omnimeter-lock-chaos-"))
  script = join(dir, "embedded.mts")
  // Opens the data directory, adds a subscription when asked, reports, then waits to be killed or exits.
  writeFileSync(
    script,
    `import { openDatabase } from ${JSON.stringify(DATABASE_MODULE)}
import { insertSubscription } from ${JSON.stringify(SUBSCRIPTIONS_MODULE)}
const [dataDir, mode] = process.argv.slice(2)
const database = await openDatabase({ dataDir })
if (mode === "add") {
  await insertSubscription(database.db, { entityId: "org-" + process.pid + "-" + Date.now(), entityType: "organization",
    plan: "basic", tokenLimit: 10, timezone: "UTC", periodAnchor: new Date("2026-01-01T00:00:00Z") })
}
const rows = await database.db.selectFrom("subscriptions").select("id").execute()
console.log("ready pid=" + process.pid + " subscriptions=" + rows.length)
if (mode === "exit") { await database.close(); process.exit(0) }
setInterval(() => {}, 60_000)
`,
  )
})

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  rmSync(dir, { recursive: true, force: true })
})

interface Run {
  child: ChildProcess
  /** The reported line's PID (as the process sees itself) and subscription count. */
  ready: Promise<{ pid: number; subscriptions: number }>
  exited: Promise<number | null>
  output: () => string
}

function start(command: string, args: string[]): Run {
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
  children.push(child)
  let output = ""
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const ready = new Promise<{ pid: number; subscriptions: number }>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /ready pid=(\d+) subscriptions=(\d+)/.exec(output)
      if (match) resolve({ pid: Number(match[1]), subscriptions: Number(match[2]) })
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    void exited.then((code) => reject(new Error(`exited (${code}) before it was ready:\n${output}`)))
  })
  // A run expected to fail is awaited by its exit, not its readiness.
  ready.catch(() => {})
  return { child, ready, exited, output: () => output }
}

function embedded(dataDir: string, mode: "add" | "wait" | "exit"): Run {
  return start(process.execPath, ["--import", "tsx", script, dataDir, mode])
}

/** The same, as PID 1 of a new PID namespace with its own /proc. */
function embeddedAsPid1(dataDir: string, mode: "add" | "wait" | "exit"): Run {
  return start("unshare", [
    "--pid",
    "--fork",
    "--mount-proc",
    process.execPath,
    "--import",
    "tsx",
    script,
    dataDir,
    mode,
  ])
}

/** The host PID of the process `unshare --fork` started (PID 1 inside its namespace). */
function namespaceInit(unshare: ChildProcess): number {
  const children = readFileSync(`/proc/${unshare.pid}/task/${unshare.pid}/children`, "utf8").trim()
  const pid = Number(children.split(" ")[0])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`unshare ${unshare.pid} has no child yet`)
  return pid
}

function lockHolder(dataDir: string) {
  return parseLockHolder(readFileSync(join(dataDir, "omnimeter.lock"), "utf8"))
}

function unshareAllowed(): string | null {
  try {
    execFileSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { stdio: "pipe" })
    return null
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

const unshareProblem = unshareAllowed()
if (unshareProblem && process.env.CI)
  throw new Error(
    `unshare --pid is not permitted and CI is set: the PID-namespace case must run. ${unshareProblem}`,
  )
if (unshareProblem)
  console.warn(
    `data-dir chaos: unshare --pid is not permitted here (needs root); its case is skipped. ${unshareProblem}`,
  )

describe("the embedded database after a kill -9", () => {
  it("restarts on the data directory a killed process left locked, keeping its rows", async () => {
    const dataDir = join(dir, "plain")
    const first = embedded(dataDir, "add")
    const before = await first.ready
    expect(lockHolder(dataDir)?.pid).toBe(before.pid)
    first.child.kill("SIGKILL")
    await first.exited
    expect(lockHolder(dataDir)?.pid).toBe(before.pid)

    const second = embedded(dataDir, "exit")
    expect((await second.ready).subscriptions).toBe(1)
    expect(await second.exited).toBe(0)
  })

  it.skipIf(unshareProblem !== null)(
    "restarts as PID 1 of a new PID namespace on the lock a killed PID 1 left",
    async () => {
      const dataDir = join(dir, "namespace")
      const first = embeddedAsPid1(dataDir, "add")
      expect(await first.ready).toEqual({ pid: 1, subscriptions: 1 })
      expect(lockHolder(dataDir)?.pid).toBe(1)
      process.kill(namespaceInit(first.child), "SIGKILL")
      await first.exited
      // The lock still names PID 1: exactly the PID the next process gets.
      expect(lockHolder(dataDir)?.pid).toBe(1)

      const last = embeddedAsPid1(dataDir, "exit")
      expect(await last.ready).toEqual({ pid: 1, subscriptions: 1 })
      expect(await last.exited).toBe(0)
    },
  )
})
