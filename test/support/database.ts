/**
 * Test databases through the production path (openDatabase, real migrations). PGlite: a fresh in-memory
 * instance. PostgreSQL: a fresh database per call, dropped afterwards, so suites never share rows.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { type Database, openDatabase } from "../../src/storage/database.js"

export type TestEngine = "pglite" | "postgres"

export const testEngine: TestEngine =
  process.env.OMNIMETER_TEST_DATABASE === "postgres" ? "postgres" : "pglite"

function postgresBaseUrl(): string {
  return process.env.OMNIMETER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresBaseUrl() })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Creates an empty PostgreSQL database and returns its URL and a function that drops it. */
export async function createScratchPostgres(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `omnimeter_test_${randomBytes(6).toString("hex")}`
  await admin((client) => client.query(`create database ${name}`))
  const url = new URL(postgresBaseUrl())
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: () =>
      admin((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
  }
}

/** A migrated database for one test file, on the engine this project runs. Close it in afterAll. */
export async function openTestDatabase(): Promise<Database> {
  if (testEngine === "pglite") return openDatabase({ dataDir: ":memory:" })
  const scratch = await createScratchPostgres()
  const database = await openDatabase({ databaseUrl: scratch.url, poolSize: 30 })
  return {
    ...database,
    close: async () => {
      await database.close()
      await scratch.drop()
    },
  }
}
