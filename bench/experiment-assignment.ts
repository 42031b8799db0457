/**
 * What experiment assignment costs the consume path (issue 15): the same in-process load as
 * bench/meter-inprocess.ts, in alternating rounds without and with a running experiment on every
 * subscription's three channels (two variants, one overriding the multiplier and priority; every turn
 * carries a user_identifier, so every turn is assigned). Rounds alternate so the machine's drift hits both.
 * Besides throughput, which this shared machine makes noisy, it reports the CPU per decision (this process's;
 * with --postgres also the server backends', from /proc), and what one warm assign() call costs.
 * Usage: npx tsx bench/experiment-assignment.ts [-- --seconds 5 --rounds 3 --warmup 2 --postgres
 *   --overrides multiplier,priority|none]
 */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { ManualClock } from "../src/core/clock.js"
import { assignVariant, personKey } from "../src/core/experiments.js"
import { ExperimentAssigner } from "../src/experiments/assigner.js"
import { ExperimentService } from "../src/experiments/service.js"
import { createMeter, type Meter } from "../src/index.js"
import { openDatabase } from "../src/storage/database.js"
import { driveMeter, prepareSubscriptions } from "./support/meter-load.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    /** Rounds of each kind run first and not counted (JIT, the embedded database's caches). */
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "64" },
    postgres: { type: "boolean", default: false },
    /** The second variant's overrides: multiplier and priority (the default), or none (a label only). */
    overrides: { type: "string", default: "multiplier,priority" },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const warmup = Number(values.warmup)
const concurrency = Number(values.concurrency)

/** CPU time (µs) of the PostgreSQL backends serving `database`, read from /proc (this machine's server only). */
async function backendCpu(admin: pg.Client | undefined, database: string): Promise<Map<number, number>> {
  const cpu = new Map<number, number>()
  if (!admin) return cpu
  const { rows } = await admin.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1", [
    database,
  ])
  for (const { pid } of rows) {
    try {
      // Fields 14 and 15 (utime, stime), in clock ticks of 10 ms, after the command name in parentheses.
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) * 10_000)
    } catch {
      // The backend ended between the query and the read.
    }
  }
  return cpu
}

async function run(name: string, meter: Meter, server?: { admin: pg.Client; database: string }) {
  const entities = await prepareSubscriptions(meter, 100)
  const ids = (await meter.listSubscriptions(500)).map((sub) => sub.id)
  const results: { without: number[]; with: number[] } = { without: [], with: [] }
  // The process's CPU per decision: robust to other load on the machine, unlike throughput. With PGlite it is
  // all of the work (the database runs in this process); with PostgreSQL, this process's share only.
  const cpu: { without: number[]; with: number[] } = { without: [], with: [] }
  const serverCpu: { without: number[]; with: number[] } = { without: [], with: [] }
  const commits: { without: number[]; with: number[] } = { without: [], with: [] }
  const committed = async () =>
    server
      ? Number(
          (
            await server.admin.query<{ n: string }>(
              "select xact_commit as n from pg_stat_database where datname = $1",
              [server.database],
            )
          ).rows[0]?.n ?? 0,
        )
      : 0
  let counting = false
  const drive = async (into: "without" | "with") => {
    const backendsBefore = await backendCpu(server?.admin, server?.database ?? "")
    const commitsBefore = await committed()
    const before = process.cpuUsage()
    const load = await driveMeter(meter, entities, { seconds, concurrency })
    const used = process.cpuUsage(before)
    const backendsAfter = await backendCpu(server?.admin, server?.database ?? "")
    // The statistics reach pg_stat_database within PostgreSQL's stats flush (about a second); rounds are longer.
    const commitsAfter = await committed()
    const decisions = load.allowed + load.denied
    if (!counting) return
    results[into].push(load.perSecond)
    cpu[into].push((used.user + used.system) / decisions)
    let backends = 0
    for (const [pid, after] of backendsAfter) backends += after - (backendsBefore.get(pid) ?? 0)
    serverCpu[into].push(backends / decisions)
    commits[into].push((commitsAfter - commitsBefore) / decisions)
  }
  const withExperiments = async (round: number) => {
    const started = []
    for (const id of ids) {
      started.push(
        await meter.experiments.create(id, {
          name: `bench ${round}`,
          channels: ["website", "whatsapp", "api"],
          primaryMetric: "tokens_per_turn",
          status: "running",
          variants: [
            { name: "control", weight: 1 },
            {
              name: "cheaper",
              weight: 1,
              overrides: {
                ...(values.overrides.includes("multiplier") ? { tokenMultiplier: 0.8 } : {}),
                ...(values.overrides.includes("priority") ? { priority: 7 } : {}),
              },
              label: "small-model",
            },
          ],
        }),
      )
    }
    await drive("with")
    for (const experiment of started)
      await meter.experiments.update(experiment.subscriptionId, experiment.id, { status: "stopped" })
  }
  // Without then with, then with then without (ABBA): the cost per decision drifts up as the ledger grows,
  // and a fixed order would charge that drift to the later kind.
  for (let round = 0; round < warmup + rounds; round++) {
    counting = round >= warmup
    if (round % 2 === 0) {
      await drive("without")
      await withExperiments(round)
    } else {
      await withExperiments(round)
      await drive("without")
    }
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0
  const fmt = (list: number[]) => list.map((v) => Math.round(v)).join(", ")
  const cost = (1 - median(results.with) / median(results.without)) * 100
  const cpuCost = (median(cpu.with) / median(cpu.without) - 1) * 100
  console.log(
    `${name}: this process's CPU per decision without ${fmt(cpu.without)} µs, with ${fmt(cpu.with)} µs; median change ${cpuCost >= 0 ? "+" : ""}${cpuCost.toFixed(1)}%`,
  )
  if (server) {
    const total = (into: "without" | "with") => cpu[into].map((value, i) => value + (serverCpu[into][i] ?? 0))
    const totalCost = (median(total("with")) / median(total("without")) - 1) * 100
    console.log(
      `${name}: transactions per decision without ${commits.without.map((v) => v.toFixed(3)).join(", ")}, with ${commits.with.map((v) => v.toFixed(3)).join(", ")}`,
    )
    console.log(
      `${name}: with the PostgreSQL backends' CPU, per decision without ${fmt(total("without"))} µs, with ${fmt(total("with"))} µs; median change ${totalCost >= 0 ? "+" : ""}${totalCost.toFixed(1)}%`,
    )
  }
  console.log(
    `${name}: without ${fmt(results.without)} /s (median ${Math.round(median(results.without))}); with ${fmt(results.with)} /s (median ${Math.round(median(results.with))}); cost ${cost.toFixed(1)}% of throughput`,
  )
}

{
  // The CPU of the assignment itself (person key, hash, weights), warm, a million times.
  const started = performance.now()
  let sum = 0
  for (let i = 0; i < 1_000_000; i++)
    sum += assignVariant(
      "0190a0b0-0000-7000-8000-000000000001",
      personKey(null, "whatsapp", `u-${i}`),
      [1, 1],
    )
  const perCall = ((performance.now() - started) * 1000) / 1_000_000
  console.log(`assignment alone: ${perCall.toFixed(3)} µs per turn (checksum ${sum})`)
}

{
  // What a turn's assign() costs, warm (its reads cached, as on a busy subscription): a subscription without
  // a running experiment (every turn pays this), and one with (20,000 people).
  const database = await openDatabase({ dataDir: ":memory:" })
  try {
    const clock = new ManualClock(Date.parse("2026-03-01T00:00:00Z"))
    const service = new ExperimentService({ database, clock, invalidate: () => {} })
    const [none, running] = await Promise.all(
      ["none", "running"].map(async (name) => {
        const row = await sql<{ id: string }>`
          insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
          values (${`bench-${name}`}, 'org', 'enterprise', 1000000000, 'UTC', '2026-03-01T00:00:00Z')
          returning id`.execute(database.db)
        return row.rows[0]?.id ?? ""
      }),
    )
    await service.create(running ?? "", {
      name: "bench",
      channels: ["website", "whatsapp", "api"],
      primaryMetric: "tokens_per_turn",
      status: "running",
      variants: [
        { name: "control", weight: 1 },
        { name: "cheaper", weight: 1, overrides: { tokenMultiplier: 0.8 }, label: "small-model" },
      ],
    })
    const assigner = new ExperimentAssigner(database, { ttlMs: 3_600_000, now: () => clock.now() })
    const perTurn = async (subscriptionId: string) => {
      for (let i = 0; i < 20_000; i++) await assigner.assign(subscriptionId, "whatsapp", `u-${i}`)
      const before = process.cpuUsage()
      for (let i = 0; i < 500_000; i++) await assigner.assign(subscriptionId, "whatsapp", `u-${i % 20_000}`)
      const used = process.cpuUsage(before)
      return (used.user + used.system) / 500_000
    }
    const rounds = { none: [] as number[], running: [] as number[] }
    for (let round = 0; round < 3; round++) {
      rounds.none.push(await perTurn(none ?? ""))
      rounds.running.push(await perTurn(running ?? ""))
    }
    const fmt = (list: number[]) => list.map((v) => v.toFixed(2)).join(", ")
    console.log(
      `assign() warm, CPU per turn: without a running experiment ${fmt(rounds.none)} µs; with ${fmt(rounds.running)} µs`,
    )
  } finally {
    await database.close()
  }
}

{
  const meter = await createMeter({ dataDir: ":memory:" })
  try {
    await run("pglite (in-memory)", meter)
  } finally {
    await meter.close()
  }
}

if (values.postgres) {
  const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  const name = `omnimeter_bench_exp_${process.pid}`
  await admin.query(`create database ${name}`)
  try {
    const url = new URL(base)
    url.pathname = `/${name}`
    const meter = await createMeter({ databaseUrl: url.toString() })
    try {
      await run("postgresql", meter, { admin, database: name })
    } finally {
      await meter.close()
    }
  } finally {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
}
