/**
 * What a postmaster does for PostgreSQL and single-user PGlite never does by itself: checkpoints, and the
 * autovacuum daemon's VACUUM and ANALYZE. Each is a timer over the dialect's one connection, so its
 * statements queue behind other callers' transactions and never run inside one, and each table is its own
 * statement, so the event loop gets a turn between them (./pglite-dialect.ts).
 */
import { type Kysely, sql } from "kysely"
import type { DB } from "./schema.js"

export interface EmbeddedMaintenanceOptions {
  /** Statements that give the session back its role afterwards: CHECKPOINT, VACUUM and ANALYZE need the superuser. */
  restoreSession: string
}

export interface WalCheckpointOptions extends EmbeddedMaintenanceOptions {
  /** How often to look at the log written since the last checkpoint. Default 5 s. */
  intervalMs?: number
  /** Log written since the last checkpoint that asks for the next one. Default 64 MiB (max_wal_size). */
  maxWalBytes?: number
}

export interface AutoVacuumOptions extends EmbeddedMaintenanceOptions {
  /** How often to look for tables that need it. Default 60 s, PostgreSQL's autovacuum_naptime. */
  intervalMs?: number
}

/**
 * Runs `pass` every `intervalMs`, never two at once, and never keeps the process alive. Resolves to a
 * function that stops it, waiting for a pass under way. A failed pass is tried again at the next tick: a
 * database closing under it ends the timer with stop().
 */
function every(intervalMs: number, pass: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  let stopped = false
  const timer = setInterval(() => {
    if (running || stopped) return
    running = pass()
      .catch(() => {})
      .finally(() => {
        running = undefined
      })
  }, intervalMs)
  timer.unref()
  return async () => {
    stopped = true
    clearInterval(timer)
    await running
  }
}

/**
 * Runs one statement as the superuser on the dialect's connection, then gives the session its role back.
 * The statement is sent alone: several in one message are one implicit transaction, where VACUUM fails.
 */
async function asSuperuser(db: Kysely<DB>, restoreSession: string, statement: string): Promise<void> {
  await db.connection().execute(async (connection) => {
    try {
      await sql.raw("RESET ROLE").execute(connection)
      await sql.raw(statement).execute(connection)
    } finally {
      await sql.raw(restoreSession).execute(connection)
    }
  })
}

/**
 * Checkpoints of the embedded database. Single-user PostgreSQL (PGlite) never checkpoints by itself: the
 * checkpoint max_wal_size asks for is requested only under a postmaster. So the write-ahead log grew with
 * every write until the database closed: 1.1 GB beside a 718 MB database after a million-turn import, and in
 * memory (the demo) all of it JavaScript memory. Every `intervalMs` this reads how much log was written
 * since the last checkpoint it ran, and past `maxWalBytes` runs CHECKPOINT, which writes at most the 16 MB
 * buffer cache and recycles the old segments.
 * @example
 * const stop = startWalCheckpoints(db, { restoreSession: "SET ROLE omnimeter_app" })
 * await stop()
 */
export function startWalCheckpoints(db: Kysely<DB>, options: WalCheckpointOptions): () => Promise<void> {
  const { restoreSession, intervalMs = 5_000, maxWalBytes = 64 * 1024 * 1024 } = options
  let since: string | undefined
  return every(intervalMs, async () => {
    const { rows } = await sql<{ lsn: string; bytes: number | null }>`
      select pg_current_wal_lsn()::text as lsn,
        pg_wal_lsn_diff(pg_current_wal_lsn(), ${since ?? null}::pg_lsn)::float8 as bytes`.execute(db)
    const row = rows[0]
    if (!row) return
    if (since === undefined || (row.bytes ?? 0) < maxWalBytes) {
      since ??= row.lsn
      return
    }
    await asSuperuser(db, restoreSession, "CHECKPOINT")
    since = row.lsn
  })
}

/**
 * The autovacuum daemon's rule, run where there is no daemon. Every `intervalMs` it reads the cumulative
 * statistics of each table and, as autovacuum would with the database's own settings
 * (autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x rows, and the same for analyze):
 * VACUUM (ANALYZE) a table with that many dead rows, ANALYZE one with that many rows changed since its last
 * analyze. Without it the embedded planner never had statistics: an analytics answer over a million imported
 * turns took 35-45 s before one manual ANALYZE and 3.4 s after it (bench/RESULTS.md, issue 18). Partitioned
 * parents are left alone, as autovacuum leaves them; their partitions are analyzed as tables.
 * @example
 * const stop = startAutoVacuum(db, { restoreSession: "SET ROLE omnimeter_app" })
 * await stop()
 */
export function startAutoVacuum(db: Kysely<DB>, options: AutoVacuumOptions): () => Promise<void> {
  const { restoreSession, intervalMs = 60_000 } = options
  return every(intervalMs, async () => {
    const { rows } = await sql<{ name: string; vacuum: boolean }>`
      select format('%I.%I', s.schemaname, s.relname) as name,
        s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
          + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0) as vacuum
      from pg_stat_user_tables s
      join pg_class c on c.oid = s.relid
      where c.relkind = 'r'
        and (s.n_dead_tup > current_setting('autovacuum_vacuum_threshold')::float8
               + current_setting('autovacuum_vacuum_scale_factor')::float8 * greatest(c.reltuples, 0)
          or s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
               + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0))
      order by s.n_dead_tup + s.n_mod_since_analyze desc`.execute(db)
    for (const table of rows)
      await asSuperuser(db, restoreSession, `${table.vacuum ? "VACUUM (ANALYZE)" : "ANALYZE"} ${table.name}`)
  })
}

/** Both, with their defaults: what {@link openDatabase} runs for the embedded database. */
export function startEmbeddedMaintenance(
  db: Kysely<DB>,
  options: EmbeddedMaintenanceOptions,
): () => Promise<void> {
  const stops = [startWalCheckpoints(db, options), startAutoVacuum(db, options)]
  return async () => {
    await Promise.all(stops.map((stop) => stop()))
  }
}
