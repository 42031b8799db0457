import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { OmnimeterError } from "../core/errors.js"

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Takes the embedded database's directory for this process. PGlite is one process's database: a second
 * process writing the same files would silently lose rows, so it must fail here, loudly, instead.
 * A lock left by a process that no longer runs is taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true })
  const lockFile = join(dataDir, "omnimeter.lock")
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: "wx" })
      return () => rmSync(lockFile, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      const holder = Number(readFileSync(lockFile, "utf8").trim())
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new OmnimeterError(
          "data_dir_locked",
          `The data directory ${dataDir} is in use by process ${holder}. The embedded database serves one process; stop it, choose another OMNIMETER_DATA_DIR, or set DATABASE_URL to share PostgreSQL.`,
          { dataDir, pid: holder },
        )
      }
      if (holder === process.pid) {
        throw new OmnimeterError(
          "data_dir_locked",
          `The data directory ${dataDir} is already open in this process.`,
          {
            dataDir,
          },
        )
      }
      rmSync(lockFile, { force: true })
    }
  }
  throw new OmnimeterError("data_dir_locked", `Could not lock the data directory ${dataDir}.`, { dataDir })
}
