import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, type TestDatabase } from "../../test/support/database.js"
import { SqlFileMigrationProvider } from "./migrator.js"

let database: TestDatabase
beforeAll(async () => {
  // From an empty database: this file tests the migrations themselves, not the run's migrated copy.
  database = await openTestDatabase({ fresh: true })
})
afterAll(async () => database.close())

describe("the migrator", () => {
  it("applies every SQL file in order and records each once", async () => {
    const files = Object.keys(await new SqlFileMigrationProvider().getMigrations())
    expect(files[0]).toBe("0001_initial")
    expect(files).toEqual([...files].sort())
    // The service's role may not read the migrator's bookkeeping; its owner can.
    const applied = await database.asOwner((db) =>
      sql<{ name: string }>`select name from kysely_migration order by name`.execute(db),
    )
    expect(applied.rows.map((row) => row.name)).toEqual(files)
  })

  it("keeps the migrator's bookkeeping out of the service's reach", async () => {
    await expect(sql`select name from kysely_migration`.execute(database.db)).rejects.toThrow(
      /permission denied/,
    )
  })
})
