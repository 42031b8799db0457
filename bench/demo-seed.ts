/**
 * The demo's seed on its own, in this process, as `npm run demo` runs it: a fresh in-memory embedded
 * database, the container on it, then `seedDemo` (60 days, three subscriptions) and the saved dashboards.
 * Prints the time of each phase (and the seed's CPU time, which a loaded machine inflates less), the rows written, and this process's RSS after the seed and after a forced
 * collection (run with `node --expose-gc`, e.g. `node --expose-gc --import tsx bench/demo-seed.ts`).
 *
 * With `--seed <module>` (a built or source `demo/seed` module of another tree, e.g. from `git archive`),
 * rounds alternate between this tree's seed and that one, on the same machine in one run (A/B).
 *
 * The database starts from the build's migrated snapshot (dist/storage/migrated.tar.gz) when there is one.
 *
 * Usage: npx tsx bench/demo-seed.ts [--runs 1] [--days 60] [--seed /tmp/before/src/demo/seed.ts]
 */
import { rmSync } from "node:fs"
import { parseArgs } from "node:util"
import { loadConfig } from "../src/config.js"
import { buildContainer } from "../src/container.js"
import { seedDemoDashboards } from "../src/demo/dashboards.js"
import { seedDemo } from "../src/demo/seed.js"
import { openDatabase } from "../src/storage/database.js"
import { loadAverage } from "./support/server.js"

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "1" },
    days: { type: "string", default: "60" },
    seed: { type: "string" },
    "data-dir": { type: "string" },
  },
})

type Seed = typeof seedDemo
const other: Seed | undefined = values.seed
  ? ((await import(values.seed)) as { seedDemo: Seed }).seedDemo
  : undefined
const mib = (bytes: number) => Math.round(bytes / 1024 / 1024)
const gc = (globalThis as { gc?: () => void }).gc

async function round(label: string, seed: Seed): Promise<void> {
  const t0 = performance.now()
  const dataDir = values["data-dir"] ? `${values["data-dir"]}-${process.pid}-${label.length}` : ":memory:"
  // The build's migrated snapshot, as the demo (dist/cli.js) starts from it; without a build, initdb.
  const database = await openDatabase({ dataDir, migratedSnapshot: "dist/storage/migrated.tar.gz" })
  const t1 = performance.now()
  const container = await buildContainer(loadConfig({ LOG_LEVEL: "silent" }), { database })
  const t2 = performance.now()
  const cpu = process.cpuUsage()
  const subscriptions = await seed(container.meter, database, new Date(), Number(values.days))
  await seedDemoDashboards(container.dashboards, subscriptions)
  const t3 = performance.now()
  const used = process.cpuUsage(cpu)
  const cpuSeconds = (used.user + used.system) / 1e6
  const rows = await database.db
    .selectFrom("token_usage_logs")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow()
  const rss = mib(process.memoryUsage().rss)
  gc?.()
  const collected = gc ? `, ${mib(process.memoryUsage().rss)} MiB after gc` : ""
  console.log(
    `${label}: open ${((t1 - t0) / 1000).toFixed(2)} s, container ${((t2 - t1) / 1000).toFixed(2)} s, seed ${((t3 - t2) / 1000).toFixed(2)} s (CPU ${cpuSeconds.toFixed(2)} s); ${rows.n} ledger rows; RSS ${rss} MiB${collected} (load ${loadAverage()})`,
  )
  await container.close()
  await database.close()
  if (dataDir !== ":memory:") rmSync(dataDir, { recursive: true, force: true })
}

console.log(`node ${process.version}, load average at start ${loadAverage()}`)
for (let i = 0; i < Number(values.runs); i += 1) {
  await round("this tree", seedDemo)
  if (other) await round("--seed", other)
}
