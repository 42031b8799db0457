import { PGlite } from "@electric-sql/pglite"
import { Kysely, sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startWalCheckpoints } from "./database.js"
import { PGliteDialect } from "./pglite-dialect.js"
import type { DB } from "./schema.js"

/** Where the last checkpoint's redo starts and where the log ends now, read from PostgreSQL's control data. */
async function walState(pglite: PGlite): Promise<{ redo: string; current: string; sinceRedo: number }> {
  const { rows } = await pglite.query<{ redo: string; current: string; since: number }>(
    `select redo_lsn::text as redo, pg_current_wal_lsn()::text as current,
       pg_wal_lsn_diff(pg_current_wal_lsn(), redo_lsn)::float8 as since from pg_control_checkpoint()`,
  )
  const row = rows[0]
  if (!row) throw new Error("no control data")
  return { redo: row.redo, current: row.current, sinceRedo: row.since }
}

const write = (db: Kysely<DB>) =>
  sql`insert into wal_fill select n, repeat('x', 200) from generate_series(1, 20000) as n`.execute(db)

describe("checkpoints of the embedded database", () => {
  let pglite: PGlite
  let db: Kysely<DB>

  beforeAll(async () => {
    pglite = await PGlite.create()
    db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) })
    await sql`create table wal_fill (n int, body text)`.execute(db)
  })
  afterAll(async () => {
    await db.destroy()
  })

  it("single-user PGlite never checkpoints by itself: its log since the last checkpoint only grows", async () => {
    const before = await walState(pglite)
    for (let i = 0; i < 3; i += 1) await write(db)
    const after = await walState(pglite)
    expect(after.redo).toBe(before.redo)
    expect(after.sinceRedo).toBeGreaterThan(before.sinceRedo + 3 * 20000 * 200)
  })

  it("checkpoints once the log written since the last passes the limit, then restores the session", async () => {
    const stop = startWalCheckpoints(db, {
      restoreSession: "SET application_name = 'restored'",
      intervalMs: 20,
      maxWalBytes: 1024 * 1024,
    })
    try {
      await new Promise((resolve) => setTimeout(resolve, 100)) // the first pass notes where the log is
      const before = await walState(pglite)
      await write(db) // about 6 MB of log
      const deadline = Date.now() + 10_000
      while ((await walState(pglite)).redo === before.redo && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20))
      const after = await walState(pglite)
      expect(after.redo).not.toBe(before.redo)
      // The checkpoint started after the write: the log since it is less than the write's.
      expect(after.sinceRedo).toBeLessThan(1024 * 1024)
      const name = await sql<{ application_name: string }>`show application_name`.execute(db)
      expect(name.rows[0]?.application_name).toBe("restored")
    } finally {
      await stop()
    }
  })

  it("does not checkpoint while less than the limit was written", async () => {
    const stop = startWalCheckpoints(db, {
      restoreSession: "RESET ROLE",
      intervalMs: 20,
      maxWalBytes: 512 * 1024 * 1024,
    })
    try {
      await new Promise((resolve) => setTimeout(resolve, 100))
      const before = await walState(pglite)
      await write(db)
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect((await walState(pglite)).redo).toBe(before.redo)
    } finally {
      await stop()
    }
  })
})
