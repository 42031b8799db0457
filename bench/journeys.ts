/**
 * What the journeys answer costs at scale (issue 15), on PostgreSQL: a scratch database on the shared
 * server (created here, dropped at the end), one subscription with `--people` people and `--turns` allowed
 * turns over the 30 days of October 2026, generated in SQL with generate_series straight into the ledger
 * (triggers off: the rollups play no part in journeys), the journey session tables filled as migration
 * 0022's backfill fills them (timed), then ways to the same answer timed in alternating rounds, `--repeat`
 * times each (see `variants` below).
 *
 * The people: user u has turns i = 0 .. turns/people - 1, three to a session (session k = i / 3, 2.5 days
 * apart, the turns 2 minutes apart); a session's channel is the user's home channel (u % 6) 70% of the
 * time, else another. 80% of users are linked (person_identifiers, one person per user over every channel
 * they used); the other 20% stay on their home channel, so every user is one person. Half of the users send
 * session ids; the others' sessions come from the 30-minute inactivity gap.
 *
 * Usage: npx tsx bench/journeys.ts [--people 1000000] [--turns 10000000] [--repeat 3] [--only T,S,F,C]
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { JourneyService, journeyAggregates, personSessions } from "../src/analytics/journeys.js"
import { CHANNELS, type Channel } from "../src/core/channels.js"
import { ManualClock } from "../src/core/clock.js"
import { assembleJourneys } from "../src/core/journeys.js"
import { openDatabase } from "../src/storage/database.js"
import { firstConversions, PERSON_KEY_SQL } from "../src/storage/people.js"

const { values } = parseArgs({
  options: {
    people: { type: "string", default: "1000000" },
    turns: { type: "string", default: "10000000" },
    repeat: { type: "string", default: "3" },
    /** Which of the variants to time (A, B, T, S, F, C): A and B hold every session in memory. */
    only: { type: "string", default: "T,S,F,C" },
    /** Leave the scratch database for EXPLAIN (drop it yourself). */
    keep: { type: "boolean", default: false },
  },
})
const people = Number(values.people)
const turns = Number(values.turns)
const repeat = Number(values.repeat)
const perUser = Math.max(1, Math.floor(turns / people))
const base = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const admin = new pg.Client({ connectionString: base })
await admin.connect()
const name = `omnimeter_bench_journeys_${process.pid}`
await admin.query(`create database ${name}`)
const url = new URL(base)
url.pathname = `/${name}`
const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 })
const loader = new pg.Client({ connectionString: url.toString() })
await loader.connect()
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`

try {
  const sub = await sql<{ id: string }>`
    insert into subscriptions (entity_id, entity_type, plan, token_limit, timezone, period_anchor)
    values ('bench-journeys', 'org', 'enterprise', 1000000000000000, 'UTC', '2026-10-01T00:00:00Z')
    returning id`.execute(database.db)
  const id = sub.rows[0]?.id ?? ""
  await loader.query(`select omnimeter_ensure_ledger_partitions('2026-10-01T00:00:00Z', 1)`)
  // The loader is the database's owner: it may switch the triggers off for its own session.
  await loader.query("set session_replication_role = replica")
  const loadStarted = performance.now()
  const slice = 1_000_000
  for (let done = 0; done < perUser * people; done += slice) {
    const count = Math.min(slice, perUser * people - done)
    await loader.query(
      `insert into token_usage_logs (subscription_id, channel, session_id, user_identifier, operation_type,
         status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, period_start, created_at)
       select $1::uuid, (array['website','whatsapp','messenger','instagram','telegram','api'])[1 + ch],
         case when u % 2 = 0 then 's-' || u || '-' || k end, 'u' || u, 'chat', 'estimated', 100, 100, 100, 1,
         '2026-10-01T00:00:00Z',
         '2026-10-01T00:00:00Z'::timestamptz + make_interval(mins => (k * 3600 + (u % 2000) + (i % 3) * 2)::int)
       from (
         select u, i, k,
           case when u % 10 >= 8 or hashint4((u * 31 + k)::int) % 10 between -6 and 6 then u % 6
             else abs(hashint4((u * 17 + k)::int)) % 6 end as ch
         from (select g % $2 as u, g / $2 as i, (g / $2) / 3 as k from generate_series($3::bigint, $4::bigint) as g) x
       ) y`,
      [id, people, done, done + count - 1],
    )
  }
  // Every linked user's identifiers over the channels they used: one person each.
  await loader.query(
    `insert into person_identifiers (subscription_id, channel, user_identifier, person_id, linked_at)
     select distinct $1::uuid, channel, user_identifier, 'p-' || user_identifier, now()
     from token_usage_logs where subscription_id = $1 and substr(user_identifier, 2)::int % 10 < 8`,
    [id],
  )
  await loader.query("analyze")
  const loadMs = performance.now() - loadStarted
  // The journey session tables, as migration 0022's backfill fills them (the trigger was off).
  const backfillStarted = performance.now()
  await loader.query("select omnimeter_journey_sessions_rebuild(null)")
  await loader.query("analyze journey_sessions, journey_gap_sessions")
  const stored = await loader.query(
    `select (select count(*) from journey_sessions) as named, (select count(*) from journey_gap_sessions) as runs`,
  )
  console.log(
    `backfilled ${stored.rows[0].named} session-id rows and ${stored.rows[0].runs} gap runs in ${seconds(performance.now() - backfillStarted)}`,
  )
  const counts = await loader.query(
    `select (select count(*) from token_usage_logs) as turns, (select count(*) from person_identifiers) as links`,
  )
  console.log(`loaded ${counts.rows[0].turns} turns, ${counts.rows[0].links} links in ${seconds(loadMs)}`)

  const clock = new ManualClock(Date.parse("2026-11-05T00:00:00Z"))
  const journeys = new JourneyService({ database, clock })
  const query = { from: "2026-10-01", to: "2026-10-30" }
  const start = new Date("2026-10-01T00:00:00Z")
  const end = new Date("2026-10-31T00:00:00Z")
  const conversionsEnd = new Date(end.getTime() - 1)
  // A: the first build: every session row to TypeScript, assembled there, from one window over all turns.
  // B: the session rows from the turns (personSessions) assembled in TypeScript. T: the journeys statement
  // over the ledger's turns (main before migration 0022). S: the statement over the session tables. F: the
  // service computing now. C: the service's stored answer (the first call below computed and stored it).
  const variants: Record<string, () => Promise<unknown>> = {
    "A first build (rows to TypeScript)": async () =>
      assembleJourneys(
        await firstBuildSessions(id, start, end),
        await firstConversions(database.db, id, start, conversionsEnd),
      ),
    "B session rows to TypeScript": async () =>
      assembleJourneys(
        await personSessions(database.db, id, start, end, CHANNELS),
        await firstConversions(database.db, id, start, conversionsEnd),
      ),
    "T the statement over the ledger's turns (before)": () =>
      journeyAggregates(database.db, id, start, end, CHANNELS, "turns"),
    "S the statement over the session tables": () => journeyAggregates(database.db, id, start, end, CHANNELS),
    "F the service, fresh=true (computed now)": () =>
      journeys.journeys(id, query, undefined, { fresh: true }),
    "C the service (its stored answer, at most 5 minutes old)": () => journeys.journeys(id, query),
  }
  const chosen = values.only.split(",")
  for (const key of Object.keys(variants)) if (!chosen.includes(key.charAt(0))) delete variants[key]
  const times = new Map<string, number[]>(Object.keys(variants).map((key) => [key, []]))
  const summary = await journeys.journeys(id, query)
  console.log(
    `${summary.people} people, ${summary.sessions} sessions, ${summary.transitions.length} transitions, cross-channel share ${summary.crossChannelShare?.toFixed(3)}`,
  )
  for (let r = 0; r < repeat; r++) {
    for (const [key, run] of Object.entries(variants)) {
      const t0 = performance.now()
      await run()
      const ms = performance.now() - t0
      times.get(key)?.push(ms)
      console.log(`round ${r + 1} ${key}: ${seconds(ms)}`)
    }
  }
  for (const [key, list] of times)
    console.log(`${key}: p50 ${seconds(median(list))} (${list.map(seconds).join(", ")})`)

  /** The first build's session query, verbatim (src/analytics/journeys.ts before this change). */
  async function firstBuildSessions(subscriptionId: string, from: Date, to: Date) {
    const result = await sql<{ person: string; channel: Channel; started_at: Date }>`
      with turns as (
        select ${PERSON_KEY_SQL} as person, l.channel, l.session_id, l.created_at
        from token_usage_logs l
        left join person_identifiers p
          on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
        where l.subscription_id = ${subscriptionId} and l.created_at >= ${from} and l.created_at < ${to}
          and l.status <> 'denied' and l.user_identifier is not null
          and l.channel in (${sql.join([...CHANNELS])})
      ), marked as (
        select person, channel, session_id, created_at,
          coalesce(created_at - lag(created_at) over (partition by person, channel, session_id order by created_at)
            >= interval '30 minutes', true) as starts
        from turns
      )
      select person, channel, min(created_at) as started_at from marked
        where session_id is not null group by person, channel, session_id
      union all
      select person, channel, created_at from marked where session_id is null and starts
    `.execute(database.db)
    return result.rows.map((row) => ({
      person: row.person,
      channel: row.channel,
      startedAt: new Date(row.started_at),
    }))
  }
} finally {
  await loader.end()
  await database.close()
  if (values.keep) console.log(`kept database ${name}`)
  else await admin.query(`drop database ${name} with (force)`)
  await admin.end()
}
