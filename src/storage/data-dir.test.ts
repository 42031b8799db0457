import { execFile, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import { lockDataDir, processStartTime } from "./data-dir-lock.js"
import { openDatabase } from "./database.js"
import { insertSubscription } from "./subscriptions.js"

const run = promisify(execFile)
const dirs: string[] = []
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "omnimeter-data-"))
  dirs.push(dir)
  return dir
}
// Start times and boot ids come from /proc.
const onLinux = it.skipIf(process.platform !== "linux")

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe("the embedded database's data directory", () => {
  it("keeps subscriptions across a restart", async () => {
    const dataDir = scratch()
    const first = await openDatabase({ dataDir })
    const created = await insertSubscription(first.db, {
      entityId: "acme",
      entityType: "organization",
      plan: "basic",
      tokenLimit: 10,
      timezone: "UTC",
      periodAnchor: new Date("2026-01-01T00:00:00Z"),
    })
    await first.close()
    const second = await openDatabase({ dataDir })
    const found = await second.db.selectFrom("subscriptions").select("id").execute()
    await second.close()
    expect(found.map((row) => row.id)).toEqual([created.id])
  })

  it("refuses a second process on the same directory with a clear message", async () => {
    const dataDir = scratch()
    const holder = await openDatabase({ dataDir })
    try {
      const script = join(dataDir, "second.mts")
      writeFileSync(
        script,
        `import { openDatabase } from ${JSON.stringify(new URL("./database.ts", import.meta.url).pathname)}\n` +
          `await openDatabase({ dataDir: ${JSON.stringify(dataDir)} })\n`,
      )
      const outcome = await run(process.execPath, ["--import", "tsx", script]).then(
        () => ({ failed: false, stderr: "" }),
        (error: { stderr: string }) => ({ failed: true, stderr: error.stderr }),
      )
      expect(outcome.failed).toBe(true)
      expect(outcome.stderr).toContain(`The data directory ${dataDir} is in use by process ${process.pid}`)
    } finally {
      await holder.close()
    }
  })

  it("takes over a lock left by a process that no longer runs", async () => {
    const dataDir = scratch()
    writeFileSync(join(dataDir, "omnimeter.lock"), "999999999")
    const database = await openDatabase({ dataDir })
    await database.close()
  })

  onLinux("takes over a lock whose PID now names a live, unrelated process", async () => {
    await withLiveProcess(async (pid, start) => {
      const dataDir = scratch()
      writeLock(dataDir, { pid, start: start - 1, boot: bootId() })
      lockDataDir(dataDir)()
    })
  })

  onLinux("refuses a lock held by a live process that started when the lock says", async () => {
    await withLiveProcess(async (pid, start) => {
      const dataDir = scratch()
      writeLock(dataDir, { pid, start, boot: bootId() })
      expect(() => lockDataDir(dataDir)).toThrow(
        expect.objectContaining({
          code: "data_dir_locked",
          message: expect.stringContaining(`in use by process ${pid}`),
        }),
      )
    })
  })

  onLinux("takes over a lock left by an earlier process that had this process's PID", async () => {
    const dataDir = scratch()
    writeLock(dataDir, { pid: process.pid, start: 1, boot: bootId() })
    lockDataDir(dataDir)()
    // The bare-PID lock of earlier versions, as a container's PID 1 left it.
    writeFileSync(join(dataDir, "omnimeter.lock"), String(process.pid))
    lockDataDir(dataDir)()
  })

  onLinux("takes over a lock written in an earlier boot", async () => {
    await withLiveProcess(async (pid, start) => {
      const dataDir = scratch()
      writeLock(dataDir, { pid, start, boot: "an-earlier-boot" })
      lockDataDir(dataDir)()
    })
  })

  it("refuses to open one directory twice in the same process", async () => {
    const dataDir = scratch()
    const database = await openDatabase({ dataDir })
    await expect(openDatabase({ dataDir })).rejects.toMatchObject({ code: "data_dir_locked" })
    await database.close()
  })
})

function bootId(): string {
  return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
}

function writeLock(dataDir: string, holder: { pid: number; start: number; boot: string }): void {
  writeFileSync(join(dataDir, "omnimeter.lock"), JSON.stringify(holder))
}

/** Runs `fn` with a live child process (a `sleep`), its PID and its start time; stops it afterwards. */
async function withLiveProcess(fn: (pid: number, start: number) => Promise<void>): Promise<void> {
  const child = spawn("sleep", ["30"], { stdio: "ignore" })
  try {
    const pid = child.pid
    const start = pid === undefined ? null : processStartTime(pid)
    if (pid === undefined || start === null) throw new Error("no start time for the child: is /proc mounted?")
    await fn(pid, start)
  } finally {
    child.kill("SIGKILL")
  }
}
