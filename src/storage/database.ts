/**
 * The database seam: one Kysely instance over embedded PGlite (no DATABASE_URL) or PostgreSQL.
 * Nothing above this file knows which.
 *
 * Every statement runs as the non-superuser role `omnimeter_app`, so row level security applies, with the
 * tenant '*' (the trusted service); {@link Database.withTenant} narrows a transaction to one subscription.
 * On PostgreSQL both are set per transaction, never per session (./postgres-dialect.ts), so a transaction
 * pooler such as PgBouncer may move transactions between server connections. PGlite is one connection
 * that no pooler shares: it takes them once per session.
 */
import { existsSync } from "node:fs"
import { readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { PGlite } from "@electric-sql/pglite"
import { Kysely, sql } from "kysely"
import pg from "pg"
import { type DatabaseAvailability, GuardedPool } from "./connection.js"
import { lockDataDir } from "./data-dir-lock.js"
import { startEmbeddedMaintenance } from "./embedded-maintenance.js"
import { migrateToLatest } from "./migrator.js"
import { PGliteDialect } from "./pglite-dialect.js"
import { AppRoleDialect, MigrationDialect } from "./postgres-dialect.js"
import type { DB } from "./schema.js"
import { drainSessionQueue } from "./sessions.js"

export type DatabaseKind = "pglite" | "postgres"

export interface DatabaseOptions {
  /** PostgreSQL connection string; when absent, the embedded database is used. */
  databaseUrl?: string | undefined
  /** Where the embedded database keeps its files; ":memory:" keeps nothing. */
  dataDir?: string | undefined
  /** PostgreSQL pool size. */
  poolSize?: number | undefined
  /** Called whenever PostgreSQL becomes unavailable (connection lost) or available again. */
  onAvailabilityChange?: ((availability: DatabaseAvailability) => void) | undefined
  /**
   * Embedded database only: start from this data directory, a tarball from
   * {@link dumpMigratedEmbeddedDatabase}, instead of an empty one; pending migrations still run. For a new
   * database only (tests load one migrated snapshot instead of migrating every test file's database).
   */
  loadDataDir?: Blob | undefined
  /**
   * Embedded database only: a migrated data directory (gzip tarball, {@link writeMigratedSnapshot}) that a
   * new database starts from when this PGlite can start it, instead of running initdb and every migration;
   * otherwise it is ignored. Default {@link MIGRATED_SNAPSHOT}, written by the build; false for none.
   */
  migratedSnapshot?: string | false | undefined
  /** Embedded database only: its buffer cache (PostgreSQL's shared_buffers), in MiB. Default 16. */
  embeddedSharedBuffersMb?: number | undefined
}

/** What code above storage may rely on, so that it never asks which database this is. */
export interface DatabaseCapabilities {
  /** Most transactions that can run at once (the embedded database has one connection; PostgreSQL its pool). */
  readonly maxTransactionsInFlight: number
  /** Whether this process is the database's only user (the embedded database's data-dir lock). */
  readonly singleProcess: boolean
  /**
   * Whether a consume leaves its turns' session tables to `SessionDeriveJob` and the readers
   * (PostgreSQL), or derives them in its own statement (the embedded database, whose one connection a
   * deriver would only share: migration 0026).
   */
  readonly queuesSessions: boolean
}

export interface Database {
  readonly kind: DatabaseKind
  readonly capabilities: DatabaseCapabilities
  /** The service's view: every subscription. */
  readonly db: Kysely<DB>
  /** Runs `fn` in a transaction that row level security limits to one subscription. */
  withTenant<T>(subscriptionId: string, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T>
  /** Throws when the database cannot answer. */
  ping(): Promise<void>
  /** Whether the database is reachable as far as this process knows (PGlite: always). */
  availability(): DatabaseAvailability
  close(): Promise<void>
}

// omnimeter.sessions_inline: omnimeter_write_turns derives the session tables in the consume statement
// instead of queuing them (migration 0026).
const PGLITE_SESSION_SETUP =
  "SET ROLE omnimeter_app; SET omnimeter.tenant = '*'; SET omnimeter.sessions_inline = 'on'"
const parseInt8 = (value: string) => Number(value)

/** Opens the database, applies pending migrations, and returns it ready for the service. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? 20, options.onAvailabilityChange)
    : openPGlite({
        dataDir: options.dataDir ?? ":memory:",
        loadDataDir: options.loadDataDir,
        sharedBuffersMb: options.embeddedSharedBuffersMb,
        migratedSnapshot: options.migratedSnapshot ?? MIGRATED_SNAPSHOT,
      })
}

/**
 * PostgreSQL settings of the embedded database, chosen for a process that shares its host with a chat
 * backend. PGlite's WebAssembly memory only grows, and PostgreSQL's defaults are sized for a server of its
 * own: 128 MB of shared_buffers (touched as pages are read, so an idle server held most of it) and a 64 MB
 * maintenance_work_mem that an index build or a vacuum grows the heap to for good. The embedded database
 * reads its files through the operating system's page cache (and an in-memory one from JavaScript memory),
 * so a small buffer cache costs a copy, not a disk read. bench/RESULTS.md ("Memory") has the figures.
 *
 * The write-ahead log: single-user PostgreSQL never checkpoints by itself (./embedded-maintenance.ts does
 * it, and autovacuum's VACUUM and ANALYZE); max_wal_size and min_wal_size bound how many segments a
 * checkpoint keeps for reuse, 2 to 4 instead of up to 64. wal_init_zero=off creates a segment by writing its
 * last byte instead of 16 MB of zeros, synchronously on the event loop. PGlite already runs with fsync off
 * (-F), so this weakens nothing that survives a crash of the machine.
 */
function embeddedSettings(sharedBuffersMb: number): string[] {
  return [
    ...PGlite.defaultStartParams,
    ...["-c", `shared_buffers=${sharedBuffersMb}MB`],
    ...["-c", "maintenance_work_mem=16MB"],
    ...["-c", "temp_buffers=2MB"],
    ...["-c", "max_wal_size=64MB", "-c", "min_wal_size=32MB", "-c", "wal_init_zero=off"],
  ]
}

async function openPostgres(
  connectionString: string,
  poolSize: number,
  onAvailabilityChange: DatabaseOptions["onAvailabilityChange"],
): Promise<Database> {
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? parseInt8 : pg.types.getTypeParser(oid, format ?? "text"),
  }
  // Migrations run as the connecting user (the schema owner), before any connection assumes the app role.
  // Their errors reach migrateToLatest through their statements; the pool's own "error" is an idle
  // connection dying (a restart, or its end still under way when the server ends it), which must not
  // become an unhandled error that stops the process.
  const ownerPool = new pg.Pool({ connectionString, max: 1, types })
  ownerPool.on("error", () => {})
  const owner = new Kysely<unknown>({ dialect: new MigrationDialect({ pool: ownerPool }) })
  try {
    await migrateToLatest(owner)
  } finally {
    await owner.destroy()
  }
  // A client whose connection dies (restart, failover, an admin's kill) emits "error", idle or checked
  // out; GuardedPool handles both, answers DatabaseUnavailableError and probes until the server is back.
  // The connect timeout bounds a call on a server that accepts no packets (a black-holed failover).
  // No startup `options` (such as -c jit=off): PgBouncer refuses the connection over them (issue 10), and
  // the JIT is the operator's setting (the outcomes answer's converted-sessions read on 5 M turns spent
  // 0.9 s compiling for a 0.6 s read: bench/RESULTS.md).
  const pool = new GuardedPool(
    new pg.Pool({ connectionString, max: poolSize, types, keepAlive: true, connectionTimeoutMillis: 5000 }),
    onAvailabilityChange ? { onAvailabilityChange } : {},
  )
  const db = new Kysely<DB>({
    dialect: new AppRoleDialect({ pool, translateError: (error) => pool.translate(error) }),
  })
  return makeDatabase(
    "postgres",
    { maxTransactionsInFlight: poolSize, singleProcess: false, queuesSessions: true },
    db,
    async () => {},
    () => pool.availability(),
  )
}

/**
 * A new embedded database, migrated, as `scripts/build.mjs` writes it next to this module after each build
 * of the service. A new embedded database (in memory, or a data directory without one yet) starts from it
 * instead of running initdb in a second PGlite instance and then every migration: that took most of a
 * first start and of the demo's start (bench/RESULTS.md, issue 18). Pending migrations still run on top, so
 * an older snapshot is only slower; one this PGlite cannot start from is ignored.
 */
export const MIGRATED_SNAPSHOT = fileURLToPath(new URL("./migrated.tar.gz", import.meta.url))

async function readSnapshot(file: string): Promise<Blob | undefined> {
  try {
    return new Blob([await readFile(file)])
  } catch {
    return undefined
  }
}

async function startPGlite(
  pgdata: string | undefined,
  loadDataDir: Blob | undefined,
  sharedBuffersMb: number,
  settings: readonly string[] = [],
): Promise<PGlite> {
  // One options object: PGlite ignores the second argument when the first is not a string, which
  // dropped the int8 parser of in-memory databases.
  return PGlite.create({
    dataDir: pgdata,
    parsers: { 20: parseInt8 },
    startParams: [...embeddedSettings(sharedBuffersMb), ...settings],
    ...(loadDataDir ? { loadDataDir } : {}),
  })
}

interface PGliteOptions {
  dataDir: string
  loadDataDir?: Blob | undefined
  sharedBuffersMb?: number | undefined
  migratedSnapshot: string | false
  afterMigrations?: (pglite: PGlite) => Promise<void>
  /** More `-c name=value` start parameters. */
  settings?: readonly string[]
}

async function openPGlite(options: PGliteOptions): Promise<Database> {
  const { dataDir, loadDataDir, sharedBuffersMb = 16, migratedSnapshot, afterMigrations, settings } = options
  const inMemory = dataDir === ":memory:"
  const unlock = inMemory ? () => {} : lockDataDir(dataDir)
  try {
    const pgdata = inMemory ? undefined : join(dataDir, "pgdata")
    const isNew = pgdata === undefined || !existsSync(join(pgdata, "PG_VERSION"))
    const built =
      migratedSnapshot !== false && isNew && !loadDataDir ? await readSnapshot(migratedSnapshot) : undefined
    let pglite: PGlite
    try {
      pglite = await startPGlite(pgdata, loadDataDir ?? built, sharedBuffersMb, settings)
    } catch (error) {
      if (!built) throw error
      // Not a database this PGlite can start (another version built it): start as without it. The
      // directory held no database before (no PG_VERSION), so nothing of the user's is removed.
      if (pgdata) await rm(pgdata, { recursive: true, force: true })
      pglite = await startPGlite(pgdata, undefined, sharedBuffersMb, settings)
    }
    const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) })
    await migrateToLatest(db as Kysely<unknown>)
    await afterMigrations?.(pglite)
    await sql.raw(PGLITE_SESSION_SETUP).execute(db)
    // What an older version left queued (before migration 0026), before the first consume or read; nothing
    // is queued on this connection after it, so no deriver runs beside the service.
    await drainSessionQueue(db)
    const stopMaintenance = startEmbeddedMaintenance(db, { restoreSession: PGLITE_SESSION_SETUP })
    return makeDatabase(
      "pglite",
      { maxTransactionsInFlight: 1, singleProcess: true, queuesSessions: false },
      db,
      async () => unlock(),
      ALWAYS_AVAILABLE,
      stopMaintenance,
    )
  } catch (error) {
    unlock()
    throw error
  }
}

/**
 * A new embedded database, migrated exactly as {@link openDatabase} migrates one (from initdb, never from
 * {@link MIGRATED_SNAPSHOT}) and then filled by `fill`
 * (when given, through the service's role, as any caller of openDatabase would), as a data directory
 * tarball for {@link DatabaseOptions.loadDataDir}: the test suite migrates once per run and copies this, and
 * its browser suites seed the demo once and copy that. Checkpointed first, so a copy starts without
 * replaying the write-ahead log, and with a small max_wal_size, so the checkpoint leaves 32 MB of
 * log segments in the tarball instead of the hundreds a large fill writes (each copy loads all of it).
 * @example
 * const migrated = await dumpMigratedEmbeddedDatabase()
 * const copy = await openDatabase({ loadDataDir: migrated })
 */
export async function dumpMigratedEmbeddedDatabase(
  fill?: (database: Database) => Promise<void>,
  compression: "none" | "gzip" = "none",
): Promise<Blob> {
  const opened: { pglite?: PGlite } = {}
  const database = await openPGlite({
    dataDir: ":memory:",
    migratedSnapshot: false,
    afterMigrations: async (pglite) => {
      opened.pglite = pglite
    },
    settings: ["-c", "min_wal_size=32MB", "-c", "max_wal_size=32MB"],
  })
  try {
    await fill?.(database)
    const { pglite } = opened
    if (!pglite) throw new Error("the embedded database was not opened")
    await pglite.exec("RESET ROLE; CHECKPOINT")
    return await pglite.dumpDataDir(compression)
  } finally {
    await database.close()
  }
}

/** Writes a migrated snapshot (default {@link MIGRATED_SNAPSHOT}; `scripts/build.mjs` runs this after tsc). */
export async function writeMigratedSnapshot(file = MIGRATED_SNAPSHOT): Promise<void> {
  const archive = await dumpMigratedEmbeddedDatabase(undefined, "gzip")
  await writeFile(file, new Uint8Array(await archive.arrayBuffer()))
}

const ALWAYS_AVAILABLE = (): DatabaseAvailability => ({ available: true })

function makeDatabase(
  kind: DatabaseKind,
  capabilities: DatabaseCapabilities,
  db: Kysely<DB>,
  afterClose: () => Promise<void>,
  availability: () => DatabaseAvailability = ALWAYS_AVAILABLE,
  beforeClose: () => Promise<void> = async () => {},
): Database {
  let closed = false
  return {
    kind,
    capabilities,
    db,
    withTenant: (subscriptionId, fn) =>
      db.transaction().execute(async (trx) => {
        await sql`select set_config('omnimeter.tenant', ${subscriptionId}, true)`.execute(trx)
        return fn(trx)
      }),
    ping: async () => void (await sql`select 1`.execute(db)),
    availability,
    close: async () => {
      if (closed) return
      closed = true
      await beforeClose()
      await db.destroy()
      await afterClose()
    },
  }
}
