import { PGlite } from "@electric-sql/pglite"
import { Kysely, sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startAutoVacuum, startWalCheckpoints } from "./embedded-maintenance.js"
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

/** The table's statistics as the planner and the cumulative statistics see them. */
async function tableState(pglite: PGlite, table: string) {
  const { rows } = await pglite.query<{
    analyzed: boolean
    vacuumed: boolean
    reltuples: number
    dead: number
  }>(
    `select s.last_analyze is not null as analyzed, s.last_vacuum is not null as vacuumed,
       c.reltuples::float8 as reltuples, s.n_dead_tup::float8 as dead
     from pg_stat_user_tables s join pg_class c on c.oid = s.relid where s.relname = $1`,
    [table],
  )
  const row = rows[0]
  if (!row) throw new Error(`no statistics for ${table}`)
  return row
}

/** Single-user PostgreSQL flushes its pending statistics at most once a second, when idle. */
async function flushedStatistics(pglite: PGlite): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1_100))
  await pglite.query("select 1")
}

/** Waits until `done` holds, looking every 20 ms, for at most 10 s. */
async function eventually(done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await done()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}

describe("autovacuum of the embedded database", () => {
  let pglite: PGlite
  let db: Kysely<DB>

  beforeAll(async () => {
    pglite = await PGlite.create()
    db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) })
    await pglite.exec(`
      create table grown (n int primary key);
      create table churned (n int primary key, v int);
      create table quiet (n int primary key);
      insert into churned select n, 0 from generate_series(1, 1000) as n;
      insert into quiet select n from generate_series(1, 1000) as n`)
    // Analyzed once the inserts' statistics are flushed (at most once a second, when idle): flushed later,
    // they would count as changed since the analyze.
    await flushedStatistics(pglite)
    await pglite.exec(`
      analyze churned;
      analyze quiet;
      create role maintenance_test_app;
      set role maintenance_test_app`)
  })
  afterAll(async () => {
    await db.destroy()
  })

  it("analyzes a grown table, vacuums a churned one and leaves one changed under the threshold, as autovacuum would", async () => {
    await pglite.exec(`
      reset role;
      insert into grown select generate_series(1, 5000);
      update churned set v = v + 1 where n <= 500;
      update quiet set n = n where n <= 20;
      set role maintenance_test_app`)
    await flushedStatistics(pglite)
    expect((await tableState(pglite, "grown")).reltuples).toBeLessThan(0) // never analyzed: -1
    const stop = startAutoVacuum(db, { restoreSession: "SET ROLE maintenance_test_app", intervalMs: 50 })
    try {
      await eventually(async () => (await tableState(pglite, "churned")).vacuumed)
      const grown = await tableState(pglite, "grown")
      expect(grown.analyzed).toBe(true)
      expect(grown.reltuples).toBe(5000)
      expect(grown.vacuumed).toBe(false) // only inserted: nothing dead
      const churned = await tableState(pglite, "churned")
      expect(churned.vacuumed).toBe(true) // 500 dead rows > 50 + 0.2 x 1000
      expect(churned.dead).toBe(0)
      // 20 changed rows < 50 + 0.1 x 1000: not analyzed again.
      const quiet = await pglite.query<{ n: number }>(
        "select n_mod_since_analyze::int as n from pg_stat_user_tables where relname = 'quiet'",
      )
      expect(quiet.rows[0]?.n).toBe(20)
      const role = await sql<{ role: string }>`select current_user as role`.execute(db)
      expect(role.rows[0]?.role).toBe("maintenance_test_app")
    } finally {
      await stop()
    }
  })
})
