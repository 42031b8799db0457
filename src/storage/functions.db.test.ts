/**
 * The database functions' source files against the migrated database, on PGlite and PostgreSQL: each file
 * in src/storage/functions, applied to a scratch schema, gives the definition (pg_get_functiondef: name,
 * arguments, result, language, volatility, settings and body) the migrations left in `public`, and every
 * omnimeter function in `public` has its file. A file edited without a migration that applies it, or a
 * migration that changes a function without its file, fails here.
 */
import { readdirSync, readFileSync } from "node:fs"
import { type Kysely, sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, type TestDatabase } from "../../test/support/database.js"
import type { DB } from "./schema.js"

const FUNCTIONS_DIR = new URL("./functions/", import.meta.url)
const SCRATCH = "omnimeter_function_files"

interface FunctionFile {
  file: string
  name: string
  text: string
}

function readFunctionFiles(): FunctionFile[] {
  return readdirSync(FUNCTIONS_DIR)
    .filter((file) => file.endsWith(".sql"))
    .sort()
    .map((file) => {
      const text = readFileSync(new URL(file, FUNCTIONS_DIR), "utf8")
      const names = [...text.matchAll(/^CREATE OR REPLACE FUNCTION (\w+)\(/gm)].map((m) => m[1] ?? "")
      return { file, name: names.length === 1 ? (names[0] ?? "") : `<${names.length} functions>`, text }
    })
}

/** Every function of a schema, by name, as pg_get_functiondef prints it with the schema name taken out. */
async function definitions(db: Kysely<DB>, schema: string): Promise<Map<string, string>> {
  const result = await sql<{ name: string; definition: string }>`
    select p.proname as name, pg_get_functiondef(p.oid) as definition
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = ${schema} and p.proname like 'omnimeter\_%' and p.prokind = 'f'
    order by p.proname`.execute(db)
  const byName = new Map<string, string>()
  for (const row of result.rows) {
    if (byName.has(row.name)) throw new Error(`${schema}.${row.name} is overloaded; one definition per file`)
    byName.set(row.name, row.definition.replace(`FUNCTION ${schema}.`, "FUNCTION "))
  }
  return byName
}

/**
 * What differs between the files and the database: each file applied in a scratch schema (created and
 * dropped inside one rolled-back transaction, so the database is left as it was).
 */
async function functionFileProblems(database: TestDatabase, files: FunctionFile[]): Promise<string[]> {
  const rollback = new Error("roll back the scratch schema")
  let problems: string[] = []
  await database
    .asOwner(async (db) => {
      const migrated = await definitions(db, "public")
      await sql.raw(`create schema ${SCRATCH}; set local search_path = ${SCRATCH}, public`).execute(db)
      for (const f of files) await sql.raw(f.text).execute(db)
      const fromFiles = await definitions(db, SCRATCH)
      problems = compare(files, migrated, fromFiles)
      throw rollback
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error
    })
  return problems
}

function compare(
  files: FunctionFile[],
  migrated: Map<string, string>,
  fromFiles: Map<string, string>,
): string[] {
  const problems: string[] = []
  for (const f of files) {
    if (f.file !== `${f.name.replace(/^omnimeter_/, "")}.sql`)
      problems.push(`${f.file}: defines ${f.name}; a file is named after its one function`)
  }
  for (const [name, definition] of migrated) {
    const fromFile = fromFiles.get(name)
    if (fromFile === undefined) problems.push(`${name}: in the database, but no file defines it`)
    else if (fromFile !== definition) problems.push(`${name}: its file and the migrated database disagree`)
  }
  for (const name of fromFiles.keys()) {
    if (!migrated.has(name)) problems.push(`${name}: its file defines it, but the migrations do not`)
  }
  return problems
}

let database: TestDatabase
let files: FunctionFile[]
beforeAll(async () => {
  database = await openTestDatabase()
  files = readFunctionFiles()
})
afterAll(async () => database.close())

describe("database functions as source files", () => {
  it("hold exactly what the migrations left in the database, one file per function", async () => {
    expect(files.length).toBeGreaterThan(10)
    expect(await functionFileProblems(database, files)).toEqual([])
  })

  it("notice a body edited in its file but not migrated", async () => {
    const edited = files.map((f) =>
      f.name === "omnimeter_uuid7_time" ? { ...f, text: f.text.replace("= '7'", "= '8'") } : f,
    )
    expect(edited).not.toEqual(files)
    expect(await functionFileProblems(database, edited)).toEqual([
      "omnimeter_uuid7_time: its file and the migrated database disagree",
    ])
  })

  it("notice a function that has no file, and a file whose function was never migrated", async () => {
    const missing = files.filter((f) => f.name !== "omnimeter_bucket")
    expect(await functionFileProblems(database, missing)).toEqual([
      "omnimeter_bucket: in the database, but no file defines it",
    ])
    const extra: FunctionFile = {
      file: "never_migrated.sql",
      name: "omnimeter_never_migrated",
      text: "CREATE OR REPLACE FUNCTION omnimeter_never_migrated() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;",
    }
    expect(await functionFileProblems(database, [...files, extra])).toEqual([
      "omnimeter_never_migrated: its file defines it, but the migrations do not",
    ])
  })

  it("leave the database as it was", async () => {
    const schemas = await database.asOwner((db) =>
      sql<{ n: number }>`select count(*)::int as n from pg_namespace where nspname = ${SCRATCH}`.execute(db),
    )
    expect(schemas.rows[0]?.n).toBe(0)
  })
})
