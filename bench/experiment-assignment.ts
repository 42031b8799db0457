/**
 * What experiment assignment costs the consume path (issue 15): the same in-process load as
 * bench/meter-inprocess.ts, in alternating rounds without and with a running experiment on every
 * subscription's three channels (two variants, one overriding the multiplier and priority; every turn
 * carries a user_identifier, so every turn is assigned). Rounds alternate so the machine's drift hits both.
 * Usage: npx tsx bench/experiment-assignment.ts [-- --seconds 5 --rounds 3 --postgres]
 */
import { parseArgs } from "node:util"
import pg from "pg"
import { assignVariant, personKey } from "../src/core/experiments.js"
import { createMeter, type Meter } from "../src/index.js"
import { driveMeter, prepareSubscriptions } from "./support/meter-load.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    postgres: { type: "boolean", default: false },
  },
})
const seconds = Number(values.seconds)
const rounds = Number(values.rounds)
const concurrency = Number(values.concurrency)

async function run(name: string, meter: Meter) {
  const entities = await prepareSubscriptions(meter, 100)
  const ids = (await meter.listSubscriptions(500)).map((sub) => sub.id)
  const results: { without: number[]; with: number[] } = { without: [], with: [] }
  for (let round = 0; round < rounds; round++) {
    results.without.push((await driveMeter(meter, entities, { seconds, concurrency })).perSecond)
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
              overrides: { tokenMultiplier: 0.8, priority: 7 },
              label: "small-model",
            },
          ],
        }),
      )
    }
    results.with.push((await driveMeter(meter, entities, { seconds, concurrency })).perSecond)
    for (const experiment of started)
      await meter.experiments.update(experiment.subscriptionId, experiment.id, { status: "stopped" })
  }
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0
  const fmt = (list: number[]) => list.map((v) => Math.round(v)).join(", ")
  const cost = (1 - median(results.with) / median(results.without)) * 100
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
      await run("postgresql", meter)
    } finally {
      await meter.close()
    }
  } finally {
    await admin.query(`drop database ${name} with (force)`)
    await admin.end()
  }
}
