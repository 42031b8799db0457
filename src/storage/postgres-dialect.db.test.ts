import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createScratchPostgres, testEngine } from "../../test/support/database.js"
import { type Database, openDatabase } from "./database.js"

// The dialect is PostgreSQL's; PGlite is one connection that no pooler shares (see database.ts).
describe.skipIf(testEngine !== "postgres")("the PostgreSQL dialect without session state", () => {
  let database: Database
  let drop: () => Promise<void>

  beforeAll(async () => {
    const scratch = await createScratchPostgres()
    drop = scratch.drop
    // One connection: every statement below reuses the session the one before it left.
    database = await openDatabase({ databaseUrl: scratch.url, poolSize: 1 })
  })
  afterAll(async () => {
    await database.close()
    await drop()
  })

  const whoAmI = async (db: Database["db"]) =>
    (
      await sql<{ role: string; tenant: string | null }>`
        select current_user as role, current_setting('omnimeter.tenant', true) as tenant`.execute(db)
    ).rows[0]

  it("runs a statement outside a transaction as omnimeter_app with the trusted tenant", async () => {
    expect(await whoAmI(database.db)).toEqual({ role: "omnimeter_app", tenant: "*" })
  })

  it("runs a transaction, with or without an isolation level, as omnimeter_app", async () => {
    expect(await database.db.transaction().execute(whoAmI)).toEqual({ role: "omnimeter_app", tenant: "*" })
    expect(await database.db.transaction().setIsolationLevel("serializable").execute(whoAmI)).toEqual({
      role: "omnimeter_app",
      tenant: "*",
    })
  })

  it("leaves nothing of a tenant-scoped transaction on the connection for the next statement", async () => {
    const id = "00000000-0000-4000-8000-000000000001"
    expect(await database.withTenant(id, whoAmI)).toEqual({ role: "omnimeter_app", tenant: id })
    expect(await whoAmI(database.db)).toEqual({ role: "omnimeter_app", tenant: "*" })
  })

  it("keeps the connection usable after a statement fails, and reports only the statement's rows", async () => {
    await expect(sql`select 1 / 0`.execute(database.db)).rejects.toThrow(/division by zero/)
    const rows = (await sql<{ n: number }>`select n from generate_series(1, 3) as n`.execute(database.db))
      .rows
    expect(rows).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
    expect(await whoAmI(database.db)).toEqual({ role: "omnimeter_app", tenant: "*" })
  })

  it("counts the rows a statement changed", async () => {
    const result = await sql`update subscriptions set plan = plan where false`.execute(database.db)
    expect(result.numAffectedRows).toBe(0n)
  })
})
