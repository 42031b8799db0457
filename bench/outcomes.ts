/**
 * What the outcomes answer costs (issue 14), on PostgreSQL: loads N settled turns over 30 days for one
 * subscription (through the ledger's insert path, so the rollup triggers run), each with a priced
 * turn_details row and a sentiment, and M outcomes of its users and sessions; then times
 * GET .../outcomes (the service call) over the 30 days under each attribution model. Second part: what the
 * new writes cost the hot path, in-process: consume with a model and a message (sentiment) against plain
 * consume, and settle with a model and a token split against a plain settle.
 *
 * Usage: npx tsx bench/outcomes.ts [--turns 500000] [--outcomes 50000] [--repeat 5] [--writes 3000]
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { OutcomeService } from "../src/analytics/outcomes.js"
import { systemClock } from "../src/core/clock.js"
import { createMeter } from "../src/meter/meter.js"
import { openDatabase } from "../src/storage/database.js"

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "500000" },
    outcomes: { type: "string", default: "50000" },
    repeat: { type: "string", default: "5" },
    writes: { type: "string", default: "3000" },
  },
})
const turns = Number(values.turns)
const outcomeCount = Number(values.outcomes)
const repeat = Number(values.repeat)
const writes = Number(values.writes)
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const admin = new pg.Client({ connectionString: base })
await admin.connect()
const name = `omnimeter_bench_outcomes_${process.pid}`
await admin.query(`create database ${name}`)
const url = new URL(base)
url.pathname = `/${name}`
const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 })
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

try {
  const sub = await sql<{ id: string }>`
    insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
    values ('bench-outcomes', 'org', 'enterprise', 1000000000000000, 'America/New_York', now() - interval '60 days')
    returning id`.execute(database.db)
  const id = sub.rows[0]?.id ?? ""
  await sql`insert into model_prices (model, currency, effective_from, input_per_million, output_per_million)
    values ('m-a', 'USD', now() - interval '90 days', 0.15, 0.6), ('m-b', 'USD', now() - interval '90 days', 2.5, 10)`.execute(
    database.db,
  )
  const loadStarted = performance.now()
  const slice = 100_000
  for (let done = 0; done < turns; done += slice) {
    const count = Math.min(slice, turns - done)
    const from = 31 - (31 * done) / turns
    const to = 31 - (31 * (done + count)) / turns
    await sql`
      with rows as (
        select gen_random_uuid() as id, (array['website','whatsapp','messenger','instagram','telegram','api'])[1 + (u % 6)] as channel,
          'user-' || u as user_identifier, 's-' || u || '-' || (g % 5) as session_id, raw, at, g
        from (select g, floor(power(random(), 2) * 40000)::int as u, 50 + floor(random() * 900)::int as raw,
          now() - interval '1 day' * (${from}::float8 - random() * (${from}::float8 - ${to}::float8)) as at
          from generate_series(1, ${count}) as g) x
        order by at
      ), ledger as (
        insert into token_usage_logs (id, subscription_id, channel, user_identifier, session_id, operation_type,
          status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, period_start, created_at, settled_at,
          outcome, latency_ms)
        select id, ${id}::uuid, channel, user_identifier, session_id, 'chat', 'settled', raw, raw, raw, 1,
          now() - interval '60 days', at, at, case when g % 37 = 0 then 'error' else 'ok' end,
          200 + floor(random() * 4000)::int
        from rows returning 1
      )
      insert into turn_details (usage_id, subscription_id, created_at, channel, model, input_tokens, output_tokens,
        cost_micros, sentiment)
      select id, ${id}::uuid, at, channel, case when g % 2 = 0 then 'm-a' else 'm-b' end, raw * 7 / 10,
        raw - raw * 7 / 10, omnimeter_turn_cost(case when g % 2 = 0 then 'm-a' else 'm-b' end, 'USD', at,
          raw * 7 / 10, raw - raw * 7 / 10), round((random() * 2 - 1)::numeric, 4)
      from rows where (select count(*) from ledger) >= 0
    `.execute(database.db)
  }
  await sql`
    insert into outcomes (subscription_id, name, value, currency, user_identifier, session_id, occurred_at, idempotency_key)
    select ${id}::uuid, (array['purchase','lead','ticket_resolved'])[1 + g % 3], round((random() * 100)::numeric, 2), 'USD',
      'user-' || u, case when g % 2 = 0 then 's-' || u || '-' || (g % 5) end,
      now() - interval '1 day' * random() * 30, 'o-' || g
    from (select g, floor(power(random(), 2) * 40000)::int as u from generate_series(1, ${outcomeCount}) g) x
  `.execute(database.db)
  const owner = new pg.Client({ connectionString: url.toString() })
  await owner.connect()
  await owner.query("analyze")
  await owner.end()
  console.log(
    `loaded ${turns} turns and ${outcomeCount} outcomes in ${((performance.now() - loadStarted) / 1000).toFixed(0)} s`,
  )

  const service = new OutcomeService({ database, clock: systemClock, currency: "USD" })
  for (const attribution of ["last_touch", "first_touch", "linear"]) {
    const times: number[] = []
    let conversions = 0
    for (let i = 0; i < repeat; i += 1) {
      const started = performance.now()
      const answer = await service.outcomes(id, { attribution })
      times.push(performance.now() - started)
      conversions = answer.totals.conversionCount
    }
    console.log(
      `outcomes answer, 30 days, ${attribution}: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, ${repeat} runs; ${conversions} conversions credited)`,
    )
  }

  // The hot path's new writes, in-process on the same database.
  const meter = await createMeter({ database })
  // Fifty subscriptions, so that no channel rate limit is reached: this measures the writes, not the limiter.
  for (let k = 0; k < 50; k += 1)
    await meter.createSubscription({
      entityId: `bench-writes-${k}`,
      entityType: "org",
      plan: "enterprise",
      tokenLimit: 1e12,
    })
  const consume = async (extra: Record<string, unknown>, n: number) => {
    const ids: string[] = []
    const started = performance.now()
    for (let i = 0; i < n; i += 1) {
      const d = await meter.validateAndConsumeTokens({
        entityId: `bench-writes-${i % 50}`,
        entityType: "org",
        estimatedTokens: 100,
        channel: "api",
        sessionId: `s-${i % 50}`,
        userIdentifier: `u-${i % 50}`,
        ...extra,
      })
      if (d.allowed) ids.push(d.usageId)
      else if (i === 0) console.log(`denied: ${d.reason} ${d.message}`)
    }
    return { ms: (performance.now() - started) / n, ids }
  }
  const settle = async (ids: string[], split: boolean) => {
    const started = performance.now()
    for (const usageId of ids)
      await meter.settle(usageId, split ? { inputTokens: 80, outputTokens: 40 } : { actualTokens: 120 })
    return (performance.now() - started) / ids.length
  }
  const message = "Hi, I love the product but my last order arrived broken and I am quite upset about it."
  for (let round = 0; round < 2; round += 1) {
    const plain = await consume({ messageLength: message.length }, writes)
    const rich = await consume({ model: "m-a", message }, writes)
    const plainSettle = await settle(plain.ids, false)
    const richSettle = await settle(rich.ids, true)
    console.log(
      `round ${round + 1}: consume ${plain.ms.toFixed(3)} ms plain vs ${rich.ms.toFixed(3)} ms with model + scored message; settle ${plainSettle.toFixed(3)} ms plain vs ${richSettle.toFixed(3)} ms with model + split (sequential, ${writes} each)`,
    )
  }
  await meter.close()
} finally {
  await database.close()
  await admin.query(`drop database ${name} with (force)`)
  await admin.end()
}
