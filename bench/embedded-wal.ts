/**
 * What embedded PGlite's write-ahead log costs the event loop: PGlite runs PostgreSQL synchronously in this
 * thread and writes its files with synchronous fs calls, so the slowest statement is the longest stall of the
 * whole process. Inserts group-commit-sized batches (36 rows, three indexes) into a data directory under
 * /tmp, one configuration after another in alternating rounds, and reports per configuration: batches/s,
 * statement time p50 / p99 / p99.9 / max, statements over 50 ms, and the data directory's size at the end.
 *
 * Usage: npx tsx bench/embedded-wal.ts [--batches 4000] [--rounds 2]
 */
import { execSync } from "node:child_process"
import { rmSync } from "node:fs"
import { parseArgs } from "node:util"
import { PGlite } from "@electric-sql/pglite"
import { loadAverage } from "./support/server.js"

const { values } = parseArgs({
  options: { batches: { type: "string", default: "4000" }, rounds: { type: "string", default: "2" } },
})
const BASE = ["-c", "shared_buffers=16MB", "-c", "maintenance_work_mem=16MB", "-c", "temp_buffers=2MB"]
const configs: Record<string, string[]> = {
  "PostgreSQL's WAL defaults": [],
  "wal_init_zero=off": ["-c", "wal_init_zero=off"],
  "wal_init_zero=off, max_wal_size=64MB, min_wal_size=32MB": [
    ...["-c", "wal_init_zero=off", "-c", "max_wal_size=64MB", "-c", "min_wal_size=32MB"],
  ],
}

async function run(name: string, settings: string[], batches: number): Promise<void> {
  const dir = `/tmp/omnimeter-embedded-wal-${process.pid}`
  rmSync(dir, { recursive: true, force: true })
  const pglite = await PGlite.create({
    dataDir: dir,
    startParams: [...PGlite.defaultStartParams, ...BASE, ...settings],
  })
  await pglite.exec(`create table t (id bigserial primary key, sub int, at timestamptz, tokens int, body text);
    create index on t (sub, at); create index on t (at)`)
  const rows = Array.from({ length: 36 }, (_, i) => `(${i % 100}, now(), ${i}, repeat('x', 150))`).join(",")
  const statement = `insert into t (sub, at, tokens, body) values ${rows}`
  const times: number[] = []
  const t0 = performance.now()
  for (let i = 0; i < batches; i += 1) {
    const s = performance.now()
    await pglite.query(statement)
    times.push(performance.now() - s)
  }
  const seconds = (performance.now() - t0) / 1000
  await pglite.close()
  const size = execSync(`du -sm ${dir}/base ${dir}/pg_wal`).toString().trim().split(/\s+/)
  rmSync(dir, { recursive: true, force: true })
  times.sort((a, b) => a - b)
  const q = (p: number) => (times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0).toFixed(1)
  console.log(
    `${name}: ${Math.round(batches / seconds)} batches/s; statement p50 ${q(0.5)}, p99 ${q(0.99)}, p99.9 ${q(0.999)}, max ${q(1)} ms; over 50 ms: ${times.filter((t) => t > 50).length}; base ${size[0]} MB, pg_wal ${size[2]} MB (load ${loadAverage()})`,
  )
}

for (let round = 0; round < Number(values.rounds); round += 1) {
  for (const [name, settings] of Object.entries(configs)) await run(name, settings, Number(values.batches))
}
