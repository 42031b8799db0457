/**
 * Test databases through the production path (openDatabase, real migrations). PGlite: a new in-memory
 * instance. PostgreSQL: a new database per call, dropped afterwards, so suites never share rows.
 *
 * Migrating costs more than the rest of most test files, so each run migrates once
 * (test/support/database.global.ts, through openDatabase) and every test database starts as a copy: PGlite
 * loads the migrated data directory, PostgreSQL creates the database from the migrated template. openDatabase
 * still runs the migrator on the copy, which then finds nothing pending. `{ fresh: true }` migrates from
 * empty instead, for the tests of the migrations themselves.
 */
import { randomBytes } from "node:crypto"
import { readFile } from "node:fs/promises"
import { Kysely, PostgresDialect, sql } from "kysely"
import pg from "pg"
import { inject } from "vitest"
import { type Database, openDatabase } from "../../src/storage/database.js"
import type { DB } from "../../src/storage/schema.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** Path of the migrated PGlite data directory's tarball (pglite project). */
    pgliteSnapshot: string
    /** Name of the migrated template database (postgres project). */
    postgresTemplate: string
  }
}

export type TestEngine = "pglite" | "postgres"

export const testEngine: TestEngine =
  process.env.OMNIMETER_TEST_DATABASE === "postgres" ? "postgres" : "pglite"

function postgresBaseUrl(): string {
  return process.env.OMNIMETER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
}

async function admin<T>(baseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export interface ScratchOptions {
  /** Copy this database instead of creating an empty one. */
  template?: string | undefined
  /** The server, as the URL of any database on it; default the test server. */
  baseUrl?: string | undefined
}

/** Creates a PostgreSQL database and returns its name, its URL and a function that drops it. */
export async function createScratchPostgres(options: ScratchOptions = {}): Promise<{
  name: string
  url: string
  /** Ends every session on it, such as the server connections a pooler keeps after its clients left. */
  disconnectAll: () => Promise<void>
  drop: () => Promise<void>
}> {
  const baseUrl = options.baseUrl ?? postgresBaseUrl()
  const name = `omnimeter_test_${randomBytes(6).toString("hex")}`
  const template = options.template ? ` template ${options.template}` : ""
  await admin(baseUrl, (client) => client.query(`create database ${name}${template}`))
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    disconnectAll: () =>
      admin(baseUrl, (client) =>
        client.query(
          "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
          [name],
        ),
      ).then(() => {}),
    drop: () =>
      admin(baseUrl, (client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  }
}

/**
 * A pool of a test's own on a scratch database, as its owner. Its connection may still be closing when the
 * database is dropped WITH (FORCE): the server's "terminating connection" then reaches the pool as an idle
 * client's error, and an EventEmitter with no listener throws it (an unhandled error that failed a CI
 * run). So the pool's own "error" is ignored; a statement's errors reach its caller through its promise.
 */
export function scratchPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config)
  pool.on("error", () => {})
  return pool
}

/** A test database, and a way in as its owner (who can read what the service's role may not). */
export interface TestDatabase extends Database {
  /**
   * Runs `fn` in a transaction as the schema owner: the connecting superuser, without the service's role and
   * so without row level security (PostgreSQL: on a connection of its own; PGlite: with the role reset for
   * the transaction). Throwing from `fn` rolls back whatever it changed.
   */
  asOwner<T>(fn: (db: Kysely<DB>) => Promise<T>): Promise<T>
}

export interface TestDatabaseOptions {
  /** Migrate an empty database instead of copying the run's migrated one. */
  fresh?: boolean
}

/** What the run's global setup provided; undefined in projects without it, which then migrate from empty. */
function provided(key: "pgliteSnapshot" | "postgresTemplate"): string | undefined {
  return inject(key)
}

let snapshot: Promise<Blob> | undefined

function pgliteSnapshot(path: string): Promise<Blob> {
  snapshot ??= readFile(path).then((bytes) => new Blob([bytes], { type: "application/x-tar" }))
  return snapshot
}

/** A migrated database for one test file, on the engine this project runs. Close it in afterAll. */
export async function openTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  if (testEngine === "pglite") {
    const path = options.fresh ? undefined : provided("pgliteSnapshot")
    const database = await openDatabase({
      dataDir: ":memory:",
      ...(path ? { loadDataDir: await pgliteSnapshot(path) } : {}),
    })
    return {
      ...database,
      asOwner: (fn) =>
        database.db.transaction().execute(async (trx) => {
          await sql`set local role none`.execute(trx)
          return fn(trx)
        }),
    }
  }
  const scratch = await createScratchPostgres({
    template: options.fresh ? undefined : provided("postgresTemplate"),
  })
  const database = await openDatabase({ databaseUrl: scratch.url, poolSize: 30 })
  return {
    ...database,
    asOwner: async (fn) => {
      const db = new Kysely<DB>({
        dialect: new PostgresDialect({ pool: scratchPool({ connectionString: scratch.url, max: 1 }) }),
      })
      try {
        return await db.transaction().execute((trx) => fn(trx))
      } finally {
        await db.destroy()
      }
    },
    close: async () => {
      await database.close()
      await scratch.drop()
    },
  }
}

/**
 * A new enterprise subscription row (UTC, anchored 2026-03-01, a limit nobody reaches), for tests of one
 * part below the services: its id. `name` makes its entity id readable; a random suffix keeps it unique.
 */
export async function insertSubscription(database: Database, name: string): Promise<string> {
  const row = await sql<{ id: string }>`
    insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
    values (${`${name}-${process.pid}-${Math.random()}`}, 'org', 'enterprise', 1000000000, 'UTC', '2026-03-01T00:00:00Z')
    returning id`.execute(database.db)
  return row.rows[0]?.id ?? ""
}
