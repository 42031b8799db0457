/**
 * The outcomes answer of this tree against another checkout's (A/B), alternating in one process on one
 * pool, on a database that bench/outcomes.ts loaded and kept (--keep): wall time and CPU time (this process
 * and the database's server processes, /proc/<pid>/schedstat) per answer, and whether the two answers agree
 * (generatedAt aside). The other checkout needs node_modules (a symlink does).
 *
 * Usage: npx tsx bench/outcomes-ab.ts --base /path/to/other/checkout --database NAME [--rounds 10]
 *   [--attribution last_touch]
 */
import { readFile } from "node:fs/promises"
import { resolve } from "node:path"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { OutcomeService } from "../src/analytics/outcomes.js"
import { systemClock } from "../src/core/clock.js"
import { openDatabase } from "../src/storage/database.js"

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    database: { type: "string" },
    rounds: { type: "string", default: "10" },
    attribution: { type: "string", default: "last_touch" },
  },
})
if (!values.base || !values.database) throw new Error("--base and --database are required")
const rounds = Number(values.rounds)
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const url = new URL(base)
url.pathname = `/${values.database}`
const other = (await import(resolve(values.base, "src/analytics/outcomes.ts"))) as {
  OutcomeService: typeof OutcomeService
}
const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 20 })
const admin = new pg.Client({ connectionString: url.toString() })
await admin.connect()
const serverCpuMs = async () => {
  const pids = await admin.query<{ pid: number }>(
    "select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
    [values.database],
  )
  let ns = 0
  for (const { pid } of pids.rows)
    ns += Number((await readFile(`/proc/${pid}/schedstat`, "utf8").catch(() => "0")).split(" ")[0])
  return ns / 1e6
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
try {
  const asked =
    (
      await sql<{ id: string }>`select id from subscriptions where entity_id = 'bench-outcomes-0'`.execute(
        database.db,
      )
    ).rows[0]?.id ?? ""
  const services = {
    base: new other.OutcomeService({ database, clock: systemClock, currency: "USD" }),
    this: new OutcomeService({ database, clock: systemClock, currency: "USD" }),
  }
  const figures: Record<"base" | "this", Array<[number, number]>> = { base: [], this: [] }
  const answers: Record<"base" | "this", string> = { base: "", this: "" }
  let agree = true
  for (let round = 0; round < rounds; round += 1) {
    for (const side of round % 2 === 0 ? (["base", "this"] as const) : (["this", "base"] as const)) {
      const server = await serverCpuMs()
      const own = process.cpuUsage()
      const started = performance.now()
      const answer = await services[side].outcomes(asked, { attribution: values.attribution })
      const wall = performance.now() - started
      const ownUsed = process.cpuUsage(own)
      figures[side].push([wall, (await serverCpuMs()) - server + (ownUsed.user + ownUsed.system) / 1000])
      answers[side] = JSON.stringify({ ...answer, generatedAt: undefined })
    }
    agree &&= answers.base === answers.this
  }
  for (const side of ["base", "this"] as const)
    console.log(
      `${side}: wall median ${median(figures[side].map(([wall]) => wall)).toFixed(0)} ms (${figures[side].map(([wall]) => wall.toFixed(0)).join(" ")}), CPU median ${median(figures[side].map(([, cpu]) => cpu)).toFixed(0)} ms, ${values.attribution}`,
    )
  console.log(`answers agree in every round: ${agree}`)
} finally {
  await admin.end()
  await database.close()
}
