/**
 * What scoping the role and tenant per transaction costs one statement outside a transaction, on one
 * connection, sequentially (no queueing): the three ways a statement can run as omnimeter_app.
 * - session: `SET ROLE` once per connection (before issue 10; wrong behind a transaction pooler);
 * - wrapped: `begin; set local ...` / the statement / `commit`: three round trips;
 * - prelude: omnimeter's dialect, the settings before the statement in one extended-protocol message.
 * Usage: npx tsx bench/role-scope-overhead.ts [--statements 500 --rounds 5]; needs BENCH_POSTGRES_URL or
 * the local default. Creates and drops a scratch database.
 */
import { parseArgs } from "node:util"
import { CompiledQuery, Kysely, PostgresDialect, sql } from "kysely"
import pg from "pg"
import { openDatabase } from "../src/storage/database.js"
import { AppRoleDialect } from "../src/storage/postgres-dialect.js"

const { values } = parseArgs({
  options: { statements: { type: "string", default: "500" }, rounds: { type: "string", default: "5" } },
})
const statements = Number(values.statements)
const rounds = Number(values.rounds)
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const name = `omnimeter_bench_scope_${process.pid}`

async function admin(text: string) {
  const client = new pg.Client({ connectionString: base })
  await client.connect()
  await client.query(text).finally(() => client.end())
}

await admin(`create database ${name}`)
const url = new URL(base)
url.pathname = `/${name}`
try {
  await (await openDatabase({ databaseUrl: url.toString(), poolSize: 1 })).close() // migrations
  const pool = () => new pg.Pool({ connectionString: url.toString(), max: 1 })
  const session = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: pool(),
      onCreateConnection: async (c) =>
        void (await c.executeQuery(CompiledQuery.raw("SET ROLE omnimeter_app; SET omnimeter.tenant = '*'"))),
    }),
  })
  const plain = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: pool() }) })
  const prelude = new Kysely<unknown>({ dialect: new AppRoleDialect({ pool: pool() }) })
  const statement = sql<{ n: number }>`select count(*)::int as n from subscriptions where entity_id = ${"x"}`
  const ways: Record<string, () => Promise<unknown>> = {
    session: () => statement.execute(session),
    wrapped: () =>
      plain.connection().execute(async (db) => {
        await sql.raw("begin; set local role omnimeter_app; set local omnimeter.tenant = '*'").execute(db)
        await statement.execute(db)
        await sql`commit`.execute(db)
      }),
    prelude: () => statement.execute(prelude),
  }
  const samples: Record<string, number[]> = { session: [], wrapped: [], prelude: [] }
  for (let round = 0; round < rounds; round += 1) {
    for (const [way, run] of Object.entries(ways)) {
      for (let i = 0; i < statements; i += 1) {
        const started = process.hrtime.bigint()
        await run()
        samples[way]?.push(Number(process.hrtime.bigint() - started) / 1e6)
      }
    }
  }
  for (const [way, times] of Object.entries(samples)) {
    times.sort((a, b) => a - b)
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]?.toFixed(3)
    console.log(
      `${way}: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms (${times.length} statements)`,
    )
  }
  await Promise.all([session.destroy(), plain.destroy(), prelude.destroy()])
} finally {
  await admin(`drop database if exists ${name} with (force)`)
}
