/**
 * Where the ledger is written, read from the source: a decided turn enters token_usage_logs in one place,
 * omnimeter_write_turns, whichever path decided it (the group commit's fast and exact paths, the usage
 * import). Likewise a quota counter grows in omnimeter_charge_quota and a rollup bucket in
 * omnimeter_rollup_add, however short the consume statement is made (issue 18). Migrations are history and
 * are not read.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const SRC = fileURLToPath(new URL("../", import.meta.url))

/** Every source file of the service (no tests, no migrations), relative to src/. */
function sourceFiles(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === "migrations" ? [] : sourceFiles(path)
    const wanted = /\.(ts|sql)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)
    return wanted ? [path.slice(SRC.length)] : []
  })
}

function filesWriting(table: string): string[] {
  const pattern = new RegExp(`insert\\s+into\\s+${table}\\b|insertInto\\(\\s*["']${table}["']`, "i")
  return sourceFiles()
    .filter((file) => pattern.test(readFileSync(join(SRC, file), "utf8")))
    .sort()
}

describe("the charging rule's writes", () => {
  it("put ledger rows in through omnimeter_write_turns only", () => {
    expect(filesWriting("token_usage_logs")).toEqual(["storage/functions/write_turns.sql"])
  })

  it("claim idempotency keys only there, and in the twin probe that removes its claim again", () => {
    expect(filesWriting("usage_idempotency_keys")).toEqual([
      "storage/functions/twin_charged.sql",
      "storage/functions/write_turns.sql",
    ])
  })

  it("grow quota counters through omnimeter_charge_quota only", () => {
    expect(filesWriting("quota_counters")).toEqual(["storage/functions/charge_quota.sql"])
  })

  it("queue turns for their session tables in omnimeter_write_turns only, as it writes them", () => {
    expect(filesWriting("session_queue")).toEqual(["storage/functions/write_turns.sql"])
  })

  it("grow the quarter-hour and hour rollups through omnimeter_rollup_add only", () => {
    expect(filesWriting("channel_usage_buckets")).toEqual(["storage/functions/rollup_add.sql"])
    expect(filesWriting("channel_usage_hourly")).toEqual(["storage/functions/rollup_add.sql"])
  })
})
