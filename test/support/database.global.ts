/**
 * Migrates once per run, through the production path (openDatabase and its migrator), and hands every test
 * file of the project a migrated copy (test/support/database.ts):
 * - pglite: the migrated data directory as a tarball in a temporary directory, loaded by each test database;
 * - postgres: a migrated template database, copied by CREATE DATABASE ... TEMPLATE.
 * Both are removed when the run ends.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestProject } from "vitest/node"
import { dumpMigratedEmbeddedDatabase, openDatabase } from "../../src/storage/database.js"
import { createScratchPostgres } from "./database.js"

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = project.config.env ?? {}
  if (env.OMNIMETER_TEST_DATABASE === "postgres")
    return postgresTemplate(project, env.OMNIMETER_TEST_POSTGRES_URL)
  return pgliteSnapshot(project)
}

async function pgliteSnapshot(project: TestProject): Promise<() => Promise<void>> {
  const directory = await mkdtemp(join(tmpdir(), "omnimeter-pglite-snapshot-"))
  try {
    const file = join(directory, "migrated.tar")
    await writeFile(file, new Uint8Array(await (await dumpMigratedEmbeddedDatabase()).arrayBuffer()))
    project.provide("pgliteSnapshot", file)
  } catch (error) {
    await rm(directory, { recursive: true, force: true })
    throw error
  }
  return () => rm(directory, { recursive: true, force: true })
}

async function postgresTemplate(
  project: TestProject,
  baseUrl: string | undefined,
): Promise<() => Promise<void>> {
  const template = await createScratchPostgres({ baseUrl })
  try {
    // Closed before any copy: CREATE DATABASE copies a template only while nobody is connected to it.
    await (await openDatabase({ databaseUrl: template.url, poolSize: 1 })).close()
    // Behind a transaction pooler (npm run test:pgbouncer) the pooler keeps its server connections open.
    await template.disconnectAll()
    project.provide("postgresTemplate", template.name)
  } catch (error) {
    await template.drop()
    throw error
  }
  return template.drop
}
