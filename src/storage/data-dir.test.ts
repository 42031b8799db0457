import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import { openDatabase } from "./database.js"
import { insertSubscription } from "./subscriptions.js"

const run = promisify(execFile)
const dirs: string[] = []
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "omnimeter-data-"))
  dirs.push(dir)
  return dir
}
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

  it("refuses to open one directory twice in the same process", async () => {
    const dataDir = scratch()
    const database = await openDatabase({ dataDir })
    await expect(openDatabase({ dataDir })).rejects.toMatchObject({ code: "data_dir_locked" })
    await database.close()
  })
})
