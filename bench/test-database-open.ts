/**
 * What one test file's database costs to open: migrated from empty (before) or copied from the run's
 * migrated database (after: a PGlite data directory snapshot, a PostgreSQL template), alternating the two so
 * that both see the same machine load. `npx tsx bench/test-database-open.ts [rounds]`; PostgreSQL at
 * OMNIMETER_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), skipped when unreachable.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { dumpMigratedEmbeddedDatabase, openDatabase } from "../src/storage/database.js"

const rounds = Number(process.argv[2] ?? 3)
const baseUrl = process.env.OMNIMETER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

function urlOf(name: string): string {
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return url.toString()
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

function report(engine: string, fresh: number[], copied: number[]): void {
  const f = median(fresh)
  const c = median(copied)
  console.log(
    `${engine}: migrate from empty median ${f.toFixed(0)} ms [${fresh.map((v) => v.toFixed(0)).join(", ")}], ` +
      `copy median ${c.toFixed(0)} ms [${copied.map((v) => v.toFixed(0)).join(", ")}], ratio ${(f / c).toFixed(2)}`,
  )
}

const snapshotStart = performance.now()
const snapshot = await dumpMigratedEmbeddedDatabase()
console.log(`pglite: the run's snapshot (once per run) ${(performance.now() - snapshotStart).toFixed(0)} ms`)
const pgliteFresh: number[] = []
const pgliteCopied: number[] = []
for (let round = 0; round < rounds; round += 1) {
  pgliteFresh.push(await timed(async () => (await openDatabase({ dataDir: ":memory:" })).close()))
  pgliteCopied.push(
    await timed(async () => (await openDatabase({ dataDir: ":memory:", loadDataDir: snapshot })).close()),
  )
}
report("pglite", pgliteFresh, pgliteCopied)

const reachable = await admin("select 1").then(
  () => true,
  () => false,
)
if (reachable) {
  const scratch = () => `omnimeter_bench_${randomBytes(6).toString("hex")}`
  const template = scratch()
  await admin(`create database ${template}`)
  try {
    const templateStart = performance.now()
    await (await openDatabase({ databaseUrl: urlOf(template), poolSize: 1 })).close()
    console.log(
      `postgres: the run's template (once per run) ${(performance.now() - templateStart).toFixed(0)} ms`,
    )
    const fresh: number[] = []
    const copied: number[] = []
    for (let round = 0; round < rounds; round += 1) {
      for (const [from, into] of [
        ["", fresh],
        [` template ${template}`, copied],
      ] as const) {
        const name = scratch()
        into.push(
          await timed(async () => {
            await admin(`create database ${name}${from}`)
            await (await openDatabase({ databaseUrl: urlOf(name), poolSize: 1 })).close()
          }),
        )
        await admin(`drop database ${name} with (force)`)
      }
    }
    report("postgres", fresh, copied)
  } finally {
    await admin(`drop database if exists ${template} with (force)`)
  }
}
