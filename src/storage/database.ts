/**
 * The database seam: one Kysely instance over embedded PGlite (no DATABASE_URL) or PostgreSQL.
 * Nothing above this file knows which.
 *
 * Every connection runs as the non-superuser role `omnimeter_app`, so row level security applies. The
 * session's tenant is '*' (the trusted service); {@link Database.withTenant} narrows a transaction to one
 * subscription with a transaction-local setting, which PGlite's single shared connection also honours.
 */
import { join } from "node:path"
import { PGlite } from "@electric-sql/pglite"
import { CompiledQuery, Kysely, PostgresDialect, sql } from "kysely"
import pg from "pg"
import { lockDataDir } from "./data-dir-lock.js"
import { migrateToLatest } from "./migrator.js"
import { PGliteDialect } from "./pglite-dialect.js"
import type { DB } from "./schema.js"

export type DatabaseKind = "pglite" | "postgres"

export interface DatabaseOptions {
  /** PostgreSQL connection string; when absent, the embedded database is used. */
  databaseUrl?: string | undefined
  /** Where the embedded database keeps its files; ":memory:" keeps nothing. */
  dataDir?: string | undefined
  /** PostgreSQL pool size. */
  poolSize?: number | undefined
  /**
   * Embedded database only: start from this data directory, a tarball from
   * {@link dumpMigratedEmbeddedDatabase}, instead of an empty one; pending migrations still run. For a new
   * database only (tests load one migrated snapshot instead of migrating every test file's database).
   */
  loadDataDir?: Blob | undefined
}

export interface Database {
  readonly kind: DatabaseKind
  /** The service's view: every subscription. */
  readonly db: Kysely<DB>
  /** Runs `fn` in a transaction that row level security limits to one subscription. */
  withTenant<T>(subscriptionId: string, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T>
  /** Throws when the database cannot answer. */
  ping(): Promise<void>
  close(): Promise<void>
}

const SESSION_SETUP = "SET ROLE omnimeter_app; SET omnimeter.tenant = '*'"
const parseInt8 = (value: string) => Number(value)

/** Opens the database, applies pending migrations, and returns it ready for the service. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  return options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? 20)
    : openPGlite(options.dataDir ?? ":memory:", options.loadDataDir)
}

async function openPostgres(connectionString: string, poolSize: number): Promise<Database> {
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? parseInt8 : pg.types.getTypeParser(oid, format ?? "text"),
  }
  // Migrations run as the connecting user (the schema owner), before any connection assumes the app role.
  const owner = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString, max: 1, types }) }),
  })
  try {
    await migrateToLatest(owner)
  } finally {
    await owner.destroy()
  }
  const pool = new pg.Pool({ connectionString, max: poolSize, types })
  // An idle client the server drops (restart, failover, admin kill) emits "error"; unhandled, that would
  // end the process. The pool discards the client and the next query opens a new one.
  pool.on("error", () => {})
  const db = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool,
      onCreateConnection: async (connection) =>
        void (await connection.executeQuery(CompiledQuery.raw(SESSION_SETUP))),
    }),
  })
  return makeDatabase("postgres", db, async () => {})
}

async function openPGlite(
  dataDir: string,
  loadDataDir: Blob | undefined,
  afterMigrations?: (pglite: PGlite) => Promise<void>,
): Promise<Database> {
  const inMemory = dataDir === ":memory:"
  const unlock = inMemory ? () => {} : lockDataDir(dataDir)
  try {
    // One options object: PGlite ignores the second argument when the first is not a string, which
    // dropped the int8 parser of in-memory databases.
    const pglite = new PGlite({
      dataDir: inMemory ? undefined : join(dataDir, "pgdata"),
      parsers: { 20: parseInt8 },
      ...(loadDataDir ? { loadDataDir } : {}),
    })
    const db = new Kysely<DB>({ dialect: new PGliteDialect(pglite) })
    await migrateToLatest(db as Kysely<unknown>)
    await afterMigrations?.(pglite)
    await sql.raw(SESSION_SETUP).execute(db)
    return makeDatabase("pglite", db, async () => unlock())
  } catch (error) {
    unlock()
    throw error
  }
}

/**
 * A new embedded database, migrated exactly as {@link openDatabase} migrates one, as a data directory
 * tarball for {@link DatabaseOptions.loadDataDir}: the test suite migrates once per run and copies this.
 * @example
 * const migrated = await dumpMigratedEmbeddedDatabase()
 * const copy = await openDatabase({ loadDataDir: migrated })
 */
export async function dumpMigratedEmbeddedDatabase(): Promise<Blob> {
  let archive: Blob | undefined
  const database = await openPGlite(":memory:", undefined, async (pglite) => {
    archive = await pglite.dumpDataDir("none")
  })
  await database.close()
  if (!archive) throw new Error("the embedded database was not dumped")
  return archive
}

function makeDatabase(kind: DatabaseKind, db: Kysely<DB>, afterClose: () => Promise<void>): Database {
  let closed = false
  return {
    kind,
    db,
    withTenant: (subscriptionId, fn) =>
      db.transaction().execute(async (trx) => {
        await sql`select set_config('omnimeter.tenant', ${subscriptionId}, true)`.execute(trx)
        return fn(trx)
      }),
    ping: async () => void (await sql`select 1`.execute(db)),
    close: async () => {
      if (closed) return
      closed = true
      await db.destroy()
      await afterClose()
    },
  }
}
