/**
 * What the outcomes answer costs (issue 14), on PostgreSQL.
 *
 * 1. The new writes on the hot path, A/B: sequential consume (with a session, a model and a scored
 *    message) and settle (model, token split, latency) through the in-process Meter, in alternating rounds
 *    with the write-side work of one migration off (A) and on (B), on an almost empty ledger: --toggle 0019
 *    (its triggers and ledger indexes) or --toggle 0021 (its triggers, 0019's left on; the default).
 * 2. The answer: loads N turns over 31 days spread over S subscriptions (the first, the one asked about,
 *    holds N / S), each with a priced turn_details row and a sentiment, and M outcomes (M / S for the one
 *    asked about, half naming a session), generated in SQL straight into the tables with the triggers
 *    off, then builds the rollups as a migration backfill does (rebuildRollups,
 *    omnimeter_outcome_rollups_rebuild, omnimeter_outcome_reads_rebuild and
 *    omnimeter_outcome_session_turns_rebuild); then times OutcomeService.outcomes over the last 30 days under each
 *    attribution model (median of --repeat), and with --baseline once from the raw ledger rows.
 *
 * Usage: npx tsx bench/outcomes.ts [--turns 5000000] [--subscriptions 5] [--outcomes 500000] [--repeat 7]
 *   [--writes 1500] [--rounds 3] [--baseline] [--database NAME] [--keep]
 *
 * --database NAME uses (or creates) that database; when it already holds the load's subscriptions the load
 * is skipped, so one load serves several runs (before and after a change: pending migrations run on open).
 * --keep leaves the database in place at the end (drop it yourself).
 */
import { readFile } from "node:fs/promises"
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { type KyselyPlugin, type QueryId, type RootOperationNode, sql, type UnknownRow } from "kysely"
import pg from "pg"
import { OutcomeService } from "../src/analytics/outcomes.js"
import { systemClock } from "../src/core/clock.js"
import { createMeter } from "../src/meter/meter.js"
import { openDatabase } from "../src/storage/database.js"
import { feedbackFigures, outcomeCredits, rollupFigures } from "../src/storage/outcomes.js"
import { rebuildRollups } from "../src/storage/rollups.js"

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "5000000" },
    subscriptions: { type: "string", default: "5" },
    outcomes: { type: "string", default: "500000" },
    repeat: { type: "string", default: "7" },
    writes: { type: "string", default: "1500" },
    rounds: { type: "string", default: "3" },
    baseline: { type: "boolean", default: false },
    database: { type: "string" },
    keep: { type: "boolean", default: false },
    toggle: { type: "string", default: "0021" },
  },
})
const turns = Number(values.turns)
const subscriptionCount = Number(values.subscriptions)
const outcomeCount = Number(values.outcomes)
const repeat = Number(values.repeat)
const writes = Number(values.writes)
const rounds = Number(values.rounds)
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const admin = new pg.Client({ connectionString: base })
await admin.connect()
const name = values.database ?? `omnimeter_bench_outcomes_${process.pid}`
if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error("--database: lower-case letters, digits and _ only")
const exists = await admin.query("select 1 from pg_database where datname = $1", [name])
if (exists.rowCount === 0) await admin.query(`create database ${name}`)
const url = new URL(base)
url.pathname = `/${name}`
// The service's default pool (OMNIMETER_POOL_SIZE 20): the answer's reads run side by side on it.
const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 20 })
const owner = new pg.Client({ connectionString: url.toString() })
await owner.connect()
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(0)

const TRIGGERS_0019 = [
  ["token_usage_logs", "token_usage_logs_outcome_insert"],
  ["token_usage_logs", "token_usage_logs_outcome_update"],
  ["token_usage_logs", "token_usage_logs_outcome_delete"],
  ["turn_details", "turn_details_outcome_insert"],
  ["turn_details", "turn_details_outcome_update"],
  ["turn_details", "turn_details_outcome_delete"],
] as const
const TRIGGERS_0021 = [
  ["ledger_sessions", "ledger_sessions_edges_insert"],
  ["ledger_sessions", "ledger_sessions_edges_update"],
  ["ledger_sessions", "ledger_sessions_edges_delete"],
  ["outcomes", "outcomes_credits_insert"],
  ["outcome_touches", "outcome_touches_credits_insert"],
  ["outcome_touches", "outcome_touches_credits_delete"],
] as const
if (values.toggle !== "0019" && values.toggle !== "0021") throw new Error("--toggle: 0019 or 0021")

/** The write-side work of the migration under test (--toggle) on or off. */
async function outcomeRollups(on: boolean): Promise<void> {
  for (const [table, trigger] of values.toggle === "0019" ? TRIGGERS_0019 : TRIGGERS_0021)
    await owner.query(`alter table ${table} ${on ? "enable" : "disable"} trigger ${trigger}`)
  if (values.toggle === "0021") return
  if (on) {
    await owner.query(`create index if not exists token_usage_logs_session_time on token_usage_logs
      (subscription_id, session_id, created_at, id) where session_id is not null`)
    await owner.query(`create index if not exists token_usage_logs_user_time on token_usage_logs
      (subscription_id, user_identifier, created_at, id) where user_identifier is not null`)
  } else {
    await owner.query("drop index if exists token_usage_logs_session_time")
    await owner.query("drop index if exists token_usage_logs_user_time")
  }
}

try {
  await sql`insert into model_prices (model, currency, effective_from, input_per_million, output_per_million)
    values ('m-a', 'USD', now() - interval '90 days', 0.15, 0.6), ('m-b', 'USD', now() - interval '90 days', 2.5, 10)`.execute(
    database.db,
  )

  // 1. The hot path, A/B, before the ledger is large.
  if (writes > 0) {
    const meter = await createMeter({ database })
    // Fifty subscriptions, so that no channel rate limit is reached: this measures the writes, not the limiter.
    for (let k = 0; k < 50; k += 1)
      await meter.createSubscription({
        entityId: `bench-writes-${k}`,
        entityType: "org",
        plan: "enterprise",
        tokenLimit: 1e12,
      })
    const message = "Hi, I love the product but my last order arrived broken and I am quite upset about it."
    let call = 0
    const roundOf = async () => {
      const ids: string[] = []
      const started = performance.now()
      for (let i = 0; i < writes; i += 1) {
        call += 1
        const d = await meter.validateAndConsumeTokens({
          entityId: `bench-writes-${call % 50}`,
          entityType: "org",
          estimatedTokens: 100,
          channel: "api",
          // A new session every 20 turns, a user per subscription: sessions rows are written and widened.
          sessionId: `s-${Math.floor(call / 20)}`,
          userIdentifier: `u-${call % 50}`,
          model: "m-a",
          message,
        })
        if (d.allowed) ids.push(d.usageId)
      }
      const consumeMs = (performance.now() - started) / writes
      const settleStarted = performance.now()
      for (const [i, usageId] of ids.entries())
        await meter.settle(usageId, { inputTokens: 80, outputTokens: 40, latencyMs: 200 + i, outcome: "ok" })
      return { consumeMs, settleMs: (performance.now() - settleStarted) / Math.max(1, ids.length) }
    }
    const figures: Record<"off" | "on", Array<{ consumeMs: number; settleMs: number }>> = { off: [], on: [] }
    for (let round = 0; round < rounds; round += 1) {
      for (const mode of round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const)) {
        await outcomeRollups(mode === "on")
        const r = await roundOf()
        figures[mode].push(r)
        console.log(
          `writes round ${round + 1} ${mode}: consume ${r.consumeMs.toFixed(3)} ms, settle ${r.settleMs.toFixed(3)} ms per call (${writes} sequential)`,
        )
      }
    }
    const med = (mode: "off" | "on", k: "consumeMs" | "settleMs") => median(figures[mode].map((f) => f[k]))
    console.log(
      `writes median: consume ${med("off", "consumeMs").toFixed(3)} -> ${med("on", "consumeMs").toFixed(3)} ms, settle ${med("off", "settleMs").toFixed(3)} -> ${med("on", "settleMs").toFixed(3)} ms (${values.toggle} off -> on)`,
    )
    await outcomeRollups(true)
    await meter.close()
  }

  // 2. The answer on a large ledger, loaded with the triggers off, the rollups built as a backfill.
  const loadStarted = performance.now()
  const ids: string[] = []
  const loaded = await sql<{ id: string }>`
    select id from subscriptions where entity_id like 'bench-outcomes-%' order by entity_id`.execute(
    database.db,
  )
  if (loaded.rows.length > 0) {
    ids.push(...loaded.rows.map((row) => row.id))
    console.log(`reusing the load of ${name} (${ids.length} subscriptions)`)
  } else {
    for (let k = 0; k < subscriptionCount; k += 1) {
      const sub = await sql<{ id: string }>`
      insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
      values (${`bench-outcomes-${k}`}, 'org', 'enterprise', 1000000000000000, 'America/New_York', now() - interval '60 days')
      returning id`.execute(database.db)
      ids.push(sub.rows[0]?.id ?? "")
    }
    await owner.query("set session_replication_role = replica")
    const perSubscription = Math.floor(turns / subscriptionCount)
    const slice = 250_000
    for (const id of ids) {
      for (let done = 0; done < perSubscription; done += slice) {
        const count = Math.min(slice, perSubscription - done)
        const from = 31 - (31 * done) / perSubscription
        const to = 31 - (31 * (done + count)) / perSubscription
        await owner.query(
          `with rows as (
          select gen_random_uuid() as id, (array['website','whatsapp','messenger','instagram','telegram','api'])[1 + (u % 6)] as channel,
            'user-' || u as user_identifier, 's-' || u || '-' || (g % 5) as session_id, raw, at, g
          from (select g, floor(power(random(), 2) * 40000)::int as u, 50 + floor(random() * 900)::int as raw,
            now() - interval '1 day' * ($2::float8 - random() * ($2::float8 - $3::float8)) as at
            from generate_series(1, $4) as g) x
        ), ledger as (
          insert into token_usage_logs (id, subscription_id, channel, user_identifier, session_id, operation_type,
            status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, period_start, created_at, settled_at,
            outcome, latency_ms)
          select id, $1::uuid, channel, user_identifier, session_id, 'chat', 'settled', raw, raw, raw, 1,
            now() - interval '60 days', at, at, case when g % 37 = 0 then 'error' else 'ok' end,
            200 + floor(random() * 4000)::int
          from rows returning 1
        )
        insert into turn_details (usage_id, subscription_id, created_at, channel, model, input_tokens, output_tokens,
          cost_micros, sentiment)
        select id, $1::uuid, at, channel, case when g % 2 = 0 then 'm-a' else 'm-b' end, raw * 7 / 10,
          raw - raw * 7 / 10, omnimeter_turn_cost(case when g % 2 = 0 then 'm-a' else 'm-b' end, 'USD', at,
            raw * 7 / 10, raw - raw * 7 / 10), round((random() * 2 - 1)::numeric, 4)
        from rows where (select count(*) from ledger) >= 0`,
          [id, from, to, count],
        )
      }
      await owner.query(
        `insert into outcomes (subscription_id, name, value, currency, user_identifier, session_id, occurred_at, idempotency_key)
      select $1::uuid, (array['purchase','lead','ticket_resolved'])[1 + g % 3], round((random() * 100)::numeric, 2), 'USD',
        'user-' || u, case when g % 2 = 0 then 's-' || u || '-' || (g % 5) end,
        now() - interval '1 day' * random() * 30, 'o-' || g
      from (select g, floor(power(random(), 2) * 40000)::int as u from generate_series(1, $2) g) x`,
        [id, Math.floor(outcomeCount / subscriptionCount)],
      )
      console.log(`loaded subscription ${ids.indexOf(id) + 1}/${ids.length} (${seconds(loadStarted)} s)`)
    }
    await owner.query("set session_replication_role = origin")
    const rollupsStarted = performance.now()
    await rebuildRollups(database.db)
    await owner.query("select omnimeter_outcome_rollups_rebuild(null)")
    await owner.query("select omnimeter_outcome_reads_rebuild(null)")
    await owner.query("select omnimeter_outcome_session_turns_rebuild(null)")
    await owner.query("vacuum analyze")
    console.log(
      `loaded ${perSubscription * ids.length} turns and ${Math.floor(outcomeCount / subscriptionCount) * ids.length} outcomes over ${ids.length} subscriptions in ${seconds(loadStarted)} s (rollups built in ${seconds(rollupsStarted)} s)`,
    )
  }

  const asked = ids[0] ?? ""
  const service = new OutcomeService({ database, clock: systemClock, currency: "USD" })
  // CPU time spent on the answer: this process's and this database's server processes' (Linux
  // /proc/<pid>/schedstat, nanoseconds on a CPU), a figure the machine's load changes much less than the wall
  // time (it still includes cache and scheduling effects). The server must run on this machine.
  const serverCpuNs = async () => {
    const pids = await admin.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1", [
      name,
    ])
    let ns = 0
    for (const { pid } of pids.rows) {
      const text = await readFile(`/proc/${pid}/schedstat`, "utf8").catch(() => "0")
      ns += Number(text.split(" ")[0])
    }
    return ns
  }
  for (const attribution of ["last_touch", "first_touch", "linear"]) {
    const times: number[] = []
    const cpus: Array<[number, number]> = []
    let conversions = 0
    for (let i = 0; i < repeat; i += 1) {
      const serverBefore = await serverCpuNs()
      const ownBefore = process.cpuUsage()
      const started = performance.now()
      const answer = await service.outcomes(asked, { attribution })
      times.push(performance.now() - started)
      const own = process.cpuUsage(ownBefore)
      cpus.push([(own.user + own.system) / 1000, ((await serverCpuNs()) - serverBefore) / 1e6])
      conversions = answer.totals.conversionCount
    }
    const cpu = median(cpus.map(([own, server]) => own + server))
    console.log(
      `outcomes answer, 30 days, ${attribution}: median ${median(times).toFixed(0)} ms (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}, ${repeat} runs; ${conversions} conversions credited); CPU median ${cpu.toFixed(0)} ms (node ${median(cpus.map(([own]) => own)).toFixed(0)}, server ${median(cpus.map(([, server]) => server)).toFixed(0)})`,
    )
  }
  // Where the time goes: the answer's parts, each timed alone (median of --repeat), last touch.
  {
    const subscription = await sql<{
      timezone: string
    }>`select timezone from subscriptions where id = ${asked}`.execute(database.db)
    const answer = await service.outcomes(asked, {})
    const r = {
      subscriptionId: asked,
      start: answer.period.start,
      end: answer.period.end,
      channels: answer.channels.map((c) => c.channel),
      lookbackMs: 7 * 86_400_000,
      attribution: "last_touch" as const,
    }
    const parts: Array<[string, () => Promise<unknown>]> = [
      ["rollupFigures (turns, cost, sentiment, latency, sessions)", () => rollupFigures(database.db, r)],
      ["outcomeCredits (attribution)", () => outcomeCredits(database.db, r)],
      ["feedbackFigures", () => feedbackFigures(database.db, r)],
    ]
    for (const [label, part] of parts) {
      const times: number[] = []
      for (let i = 0; i < repeat; i += 1) {
        const started = performance.now()
        await part()
        times.push(performance.now() - started)
      }
      console.log(`part ${label}: median ${median(times).toFixed(0)} ms (${subscription.rows[0]?.timezone})`)
    }
    // Each statement of rollupFigures, in the order it is issued (median of --repeat); they run side by
    // side on the pool, so their times overlap.
    const issued = new Map<QueryId, [number, number]>()
    const statements: number[][] = []
    let index = 0
    const timer: KyselyPlugin = {
      transformQuery: (args: { queryId: QueryId; node: RootOperationNode }) => {
        issued.set(args.queryId, [index, performance.now()])
        index += 1
        return args.node
      },
      transformResult: async (args: { queryId: QueryId; result: { rows: UnknownRow[] } }) => {
        const [k, at] = issued.get(args.queryId) ?? [-1, 0]
        if (k >= 0) statements[k] = [...(statements[k] ?? []), performance.now() - at]
        return args.result
      },
    }
    const timed = database.db.withPlugin(timer)
    for (let i = 0; i < repeat; i += 1) {
      index = 0
      await rollupFigures(timed, r)
    }
    const names = ["usage", "buckets", "latency histogram", "sessions counted", "sessions absent"]
    for (const [k, times] of statements.entries())
      console.log(
        `  statement ${k + 1} (${names[k] ?? (k === statements.length - 1 ? "converted sessions" : "sessions total")}): median ${median(times).toFixed(0)} ms`,
      )
  }
  if (values.baseline) {
    const ledger = new OutcomeService({ database, clock: systemClock, currency: "USD", source: "ledger" })
    const started = performance.now()
    await ledger.outcomes(asked, { attribution: "last_touch" })
    console.log(
      `baseline (turn figures from the raw ledger rows, exact percentiles), last_touch: ${(performance.now() - started).toFixed(0)} ms, 1 run`,
    )
  }
} finally {
  await owner.end()
  await database.close()
  if (!values.keep) await admin.query(`drop database ${name} with (force)`)
  await admin.end()
}
