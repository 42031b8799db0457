/**
 * The only way the schema changes: ordered SQL files in ./migrations, applied by Kysely's migrator in one
 * transaction under its advisory lock. The same path runs in development, tests, CI and production.
 */
import { readdir, readFile } from "node:fs/promises"
import {
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  sql,
} from "kysely"
import { OmnimeterError } from "../core/errors.js"

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url)

/** Reads `NNNN_name.sql` files; their names order them. */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly directory: URL = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.directory)).filter((file) => /^\d{4}_[\w-]+\.sql$/.test(file)).sort()
    const migrations: Record<string, Migration> = {}
    for (const file of files) {
      const text = await readFile(new URL(file, this.directory), "utf8")
      migrations[file.replace(/\.sql$/, "")] = { up: async (db) => void (await sql.raw(text).execute(db)) }
    }
    return migrations
  }
}

/**
 * Brings the schema up to date. Returns what ran; throws an {@link OmnimeterError} naming the failed
 * migration, with nothing of it applied.
 */
export async function migrateToLatest(db: Kysely<unknown>): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider() })
  const result = await migrator.migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === "Error")?.migrationName ?? "unknown"
    const cause = result.error instanceof Error ? result.error.message : String(result.error)
    throw new OmnimeterError("internal_error", `migration ${failed} failed: ${cause}`)
  }
  return result
}
