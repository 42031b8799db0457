/**
 * The only way the schema changes: ordered SQL files in ./migrations, applied by Kysely's migrator in one
 * transaction under its advisory lock. The same path runs in development, tests, CI and production.
 *
 * Database functions are source files in ./functions, one per function, each holding its current
 * `CREATE OR REPLACE FUNCTION`. A migration applies one with a psql include line, `\ir ../functions/x.sql`
 * (resolved against the migration's own file, as psql does, so the migration also runs under `psql -f`).
 * ARCHITECTURE.md ("Database functions") gives the steps of a change.
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

/** psql's `\ir FILE`: include FILE, relative to the including file. The only meta-command allowed. */
const INCLUDE = /^\\ir[ \t]+(\S+)[ \t]*$/gm

/**
 * A migration's SQL with each `\ir path` line replaced by that file's text (one level: an included
 * function file includes nothing), between `SET check_function_bodies = off` and its `RESET`, as pg_dump
 * writes functions: a fresh database runs an old migration's include with the file's current text, whose
 * `LANGUAGE sql` body may name a column that a later migration adds. (functions.db.test.ts applies every
 * file with the check on.) A missing file fails the migration, naming the line.
 */
export async function expandIncludes(text: string, file: URL): Promise<string> {
  const parts: string[] = []
  let last = 0
  for (const match of text.matchAll(INCLUDE)) {
    const target = match[1] ?? ""
    const start = match.index ?? 0
    parts.push(text.slice(last, start))
    try {
      const included = await readFile(new URL(target, file), "utf8")
      parts.push(`SET check_function_bodies = off;\n${included}\nRESET check_function_bodies;`)
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error)
      throw new OmnimeterError("internal_error", `${file.pathname}: cannot include ${target}: ${cause}`)
    }
    last = start + match[0].length
  }
  parts.push(text.slice(last))
  return parts.join("")
}

/** Reads `NNNN_name.sql` files; their names order them. */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly directory: URL = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.directory)).filter((file) => /^\d{4}_[\w-]+\.sql$/.test(file)).sort()
    const migrations: Record<string, Migration> = {}
    for (const file of files) {
      const url = new URL(file, this.directory)
      const text = await expandIncludes(await readFile(url, "utf8"), url)
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
  const provider = new SqlFileMigrationProvider()
  if (await allApplied(db, Object.keys(await provider.getMigrations()))) return { results: [] }
  const migrator = new Migrator({ db, provider })
  const result = await migrator.migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === "Error")?.migrationName ?? "unknown"
    const cause = result.error instanceof Error ? result.error.message : String(result.error)
    throw new OmnimeterError("internal_error", `migration ${failed} failed: ${cause}`)
  }
  return result
}

/**
 * Whether the database has recorded exactly these migrations: then there is nothing to do, and start-up
 * skips the migrator's own checks (its advisory lock and a catalog introspection, about a second on the
 * embedded database). Anything else, including a database without the bookkeeping table, goes through
 * the migrator, which takes its lock and applies or reports what differs.
 */
async function allApplied(db: Kysely<unknown>, names: string[]): Promise<boolean> {
  const exists = await sql<{
    found: boolean
  }>`select to_regclass('kysely_migration') is not null as found`.execute(db)
  if (!exists.rows[0]?.found) return false
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db)
  const recorded = applied.rows.map((row) => row.name).sort()
  const expected = [...names].sort()
  return recorded.length === expected.length && recorded.every((name, i) => name === expected[i])
}
