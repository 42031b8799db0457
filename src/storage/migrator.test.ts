import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { expandIncludes, SqlFileMigrationProvider } from "./migrator.js"

function scratchTree(): URL {
  const root = mkdtempSync(join(tmpdir(), "omnimeter-migrator-"))
  return pathToFileURL(`${root}/`)
}

describe("a migration's psql include lines", () => {
  it("are replaced by the function file they name, resolved against the migration's own file", async () => {
    const root = scratchTree()
    writeFileSync(
      new URL("f.sql", root),
      "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n",
    )
    const migration = new URL("migrations/0009_x.sql", root)
    const text = "-- apply f\n\\ir ../f.sql\nGRANT EXECUTE ON FUNCTION f() TO someone;\n"
    expect(await expandIncludes(text, migration)).toBe(
      "-- apply f\nSET check_function_bodies = off;\nCREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n\nRESET check_function_bodies;\nGRANT EXECUTE ON FUNCTION f() TO someone;\n",
    )
  })

  it("leave a migration without them byte for byte as written", async () => {
    const text = "SELECT '\\ir not a line of its own';\n-- \\ir ../commented.sql\n"
    expect(await expandIncludes(text, new URL("file:///nowhere/0001_x.sql"))).toBe(text)
  })

  it("fail the migration with the missing file's name when it does not exist", async () => {
    const root = scratchTree()
    await expect(
      expandIncludes("\\ir ../functions/gone.sql\n", new URL("migrations/0009_x.sql", root)),
    ).rejects.toThrow(/cannot include \.\.\/functions\/gone\.sql/)
  })
})

describe("the shipped migrations", () => {
  it("include only function files that exist", async () => {
    const migrations = await new SqlFileMigrationProvider().getMigrations()
    expect(Object.keys(migrations).length).toBeGreaterThan(7)
  })
})
