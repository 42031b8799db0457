/**
 * The embedded database's data-directory lock. PGlite is one process's database: a second process writing
 * the same files would silently lose rows, so it must fail at open, loudly, instead.
 *
 * Design note. A PID alone does not name a process: after a `kill -9` the next process may get the same PID
 * (always PID 1 in a container without an init), and an unrelated process may reuse it later. So the lock
 * file records the holder's PID, its start time (field 22 of /proc/<pid>/stat, in clock ticks since boot)
 * and the boot id. A lock is live only when a process with that PID runs now AND started at that time in
 * this boot; anything else is a stale lock, which is taken over. A second open in the same live process is
 * told apart by an in-process registry, not by the file. Where /proc is missing (macOS), the start time is
 * unknown and a live PID is trusted as the holder, except this process's own PID, which the registry
 * settles.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { OmnimeterError } from "../core/errors.js"

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number
  /** Start time in clock ticks since boot; null where the platform does not tell. */
  start: number | null
  /** /proc/sys/kernel/random/boot_id; null where the platform does not tell. */
  boot: string | null
}

/** Directories this process holds: a second open here is refused without looking at the file. */
const heldHere = new Set<string>()

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return null
  }
}

/** The start time of process `pid` from /proc/<pid>/stat, or null when it does not run (or no /proc). */
export function processStartTime(pid: number): number | null {
  const stat = readOrNull(`/proc/${pid}/stat`)
  if (stat === null) return null
  // Field 2 (the command) is in parentheses and may hold spaces or parentheses: count after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const start = Number(fields[19])
  return Number.isFinite(start) ? start : null
}

function bootId(): string | null {
  return readOrNull("/proc/sys/kernel/random/boot_id")?.trim() || null
}

function thisProcess(): LockHolder {
  return { pid: process.pid, start: processStartTime(process.pid), boot: bootId() }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Parses a lock file: this format, or a bare PID as older versions wrote. Null when unreadable. */
export function parseLockHolder(text: string): LockHolder | null {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed), start: null, boot: null }
  try {
    const value: unknown = JSON.parse(trimmed)
    if (typeof value !== "object" || value === null) return null
    const { pid, start, boot } = value as Record<string, unknown>
    if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return null
    return {
      pid,
      start: typeof start === "number" ? start : null,
      boot: typeof boot === "string" ? boot : null,
    }
  } catch {
    return null
  }
}

/**
 * Whether the process a lock names still runs. `self` is this process (whose open is settled by the
 * registry before the file is read): a lock naming this PID is from an earlier process that had it.
 */
export function holderIsAlive(holder: LockHolder, self: LockHolder = thisProcess()): boolean {
  if (holder.pid === self.pid) return false
  if (holder.boot !== null && self.boot !== null && holder.boot !== self.boot) return false
  if (holder.start !== null) {
    const start = processStartTime(holder.pid)
    if (start !== null) return start === holder.start
  }
  return pidRuns(holder.pid)
}

/**
 * Takes the embedded database's directory for this process, taking over a stale lock (its holder no
 * longer runs, even if its PID now names another process or this one). Returns the release function.
 * @example
 * const unlock = lockDataDir("./data")
 * try { ... } finally { unlock() }
 */
export function lockDataDir(dataDir: string): () => void {
  const key = resolve(dataDir)
  if (heldHere.has(key))
    throw new OmnimeterError(
      "data_dir_locked",
      `The data directory ${dataDir} is already open in this process.`,
      {
        dataDir,
      },
    )
  mkdirSync(dataDir, { recursive: true })
  const lockFile = join(dataDir, "omnimeter.lock")
  const self = thisProcess()
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(lockFile, JSON.stringify(self), { flag: "wx" })
      heldHere.add(key)
      let released = false
      return () => {
        if (released) return
        released = true
        heldHere.delete(key)
        rmSync(lockFile, { force: true })
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      const holder = parseLockHolder(readOrNull(lockFile) ?? "")
      if (holder && holderIsAlive(holder, self)) {
        throw new OmnimeterError(
          "data_dir_locked",
          `The data directory ${dataDir} is in use by process ${holder.pid}. The embedded database serves one process; stop it, choose another OMNIMETER_DATA_DIR, or set DATABASE_URL to share PostgreSQL.`,
          { dataDir, pid: holder.pid },
        )
      }
      rmSync(lockFile, { force: true })
    }
  }
  throw new OmnimeterError("data_dir_locked", `Could not lock the data directory ${dataDir}.`, { dataDir })
}
