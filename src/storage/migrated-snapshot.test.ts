/**
 * A new embedded database starts from the build's migrated snapshot (MIGRATED_SNAPSHOT) instead of running
 * initdb and every migration; an existing one never does, and a snapshot PGlite cannot start is ignored.
 * The snapshots here carry a marker row, so a test can tell a database started from one from a fresh one.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { PGlite } from "@electric-sql/pglite"
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Database, dumpMigratedEmbeddedDatabase, openDatabase } from "./database.js"
import { SqlFileMigrationProvider } from "./migrator.js"

let dir: string
/** A migrated data directory from initdb, and one holding a marker subscription (a file). */
let plain: Blob
let marked: string

/** A migrated data directory holding one subscription named `entityId`, as a gzip tarball file. */
async function markedSnapshot(entityId: string): Promise<string> {
  const pglite = await PGlite.create({ loadDataDir: plain })
  await pglite.query(
    `insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
     values ($1, 'organization', 'basic', 10, 'UTC', '2026-01-01T00:00:00Z')`,
    [entityId],
  )
  const archive = await pglite.dumpDataDir("gzip")
  await pglite.close()
  const file = join(dir, `${entityId}.tar.gz`)
  writeFileSync(file, new Uint8Array(await archive.arrayBuffer()))
  return file
}

const entities = async (database: Database) =>
  (await database.db.selectFrom("subscriptions").select("entity_id").execute()).map((row) => row.entity_id)

/** The migrations the database recorded (the bookkeeping table is the owner's, not the app role's). */
async function migrationsOf(database: Database): Promise<string[]> {
  await sql`reset role`.execute(database.db)
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
    database.db,
  )
  await sql`set role omnimeter_app`.execute(database.db)
  return rows.map((row) => row.name)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "omnimeter-snapshot-"))
  plain = await dumpMigratedEmbeddedDatabase()
  marked = await markedSnapshot("from-snapshot")
}, 120_000)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the migrated snapshot", () => {
  it("is where a new in-memory database starts, with every migration recorded", async () => {
    const database = await openDatabase({ dataDir: ":memory:", migratedSnapshot: marked })
    expect(await entities(database)).toEqual(["from-snapshot"])
    const onDisk = Object.keys(await new SqlFileMigrationProvider().getMigrations()).sort()
    expect(await migrationsOf(database)).toEqual(onDisk)
    await database.close()
  })

  it("starts a new data directory, which later starts keep, and never replaces an existing one", async () => {
    const fresh = join(dir, "fresh")
    const first = await openDatabase({ dataDir: fresh, migratedSnapshot: marked })
    await sql`insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
      values ('written-later', 'organization', 'basic', 10, 'UTC', now())`.execute(first.db)
    await first.close()
    const again = await openDatabase({ dataDir: fresh, migratedSnapshot: marked })
    expect((await entities(again)).sort()).toEqual(["from-snapshot", "written-later"])
    await again.close()

    const existing = join(dir, "existing")
    await (await openDatabase({ dataDir: existing, loadDataDir: plain })).close()
    const reopened = await openDatabase({ dataDir: existing, migratedSnapshot: marked })
    expect(await entities(reopened)).toEqual([])
    await reopened.close()
  }, 60_000)

  it("is ignored when PGlite cannot start it: the database is made and migrated as without one", async () => {
    const broken = join(dir, "broken.tar.gz")
    writeFileSync(broken, "not a tarball")
    const database = await openDatabase({ dataDir: join(dir, "broken-dir"), migratedSnapshot: broken })
    expect(await entities(database)).toEqual([])
    const onDisk = Object.keys(await new SqlFileMigrationProvider().getMigrations()).sort()
    expect(await migrationsOf(database)).toEqual(onDisk)
    await database.close()
  }, 60_000)

  it("is ignored when the file is missing", async () => {
    const database = await openDatabase({
      dataDir: ":memory:",
      migratedSnapshot: join(dir, "missing.tar.gz"),
    })
    expect(await entities(database)).toEqual([])
    await database.close()
  })
})
