/**
 * What the journeys answer costs at scale (issue 15), on PostgreSQL: a scratch database on the shared
 * server (created here, dropped at the end), one subscription with `--people` people and `--turns` allowed
 * turns over the 30 days of October 2026, generated in SQL with generate_series straight into the ledger
 * (triggers off: the rollups play no part in journeys), then the journeys service call timed `--repeat`
 * times, with its two halves (the sessions query, the assembly) timed apart.
 *
 * The people: user u has turns i = 0 .. turns/people - 1, three to a session (session k = i / 3, 2.5 days
 * apart, the turns 2 minutes apart); a session's channel is the user's home channel (u % 6) 70% of the
 * time, else another. 80% of users are linked (person_identifiers, one person per user over every channel
 * they used); the other 20% stay on their home channel, so every user is one person. Half of the users send
 * session ids; the others' sessions come from the 30-minute inactivity gap.
 *
 * Usage: npx tsx bench/journeys.ts [--people 1000000] [--turns 10000000] [--repeat 3]
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { sql } from "kysely"
import pg from "pg"
import { JourneyService, personSessions } from "../src/analytics/journeys.js"
import { CHANNELS } from "../src/core/channels.js"
import { ManualClock } from "../src/core/clock.js"
import { assembleJourneys } from "../src/core/journeys.js"
import { openDatabase } from "../src/storage/database.js"
import { firstConversions } from "../src/storage/people.js"

const { values } = parseArgs({
  options: {
    people: { type: "string", default: "1000000" },
    turns: { type: "string", default: "10000000" },
    repeat: { type: "string", default: "3" },
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
           case when u % 10 >= 8 or hashint4(u * 31 + k) % 10 between -6 and 6 then u % 6
             else abs(hashint4(u * 17 + k)) % 6 end as ch
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
  const counts = await loader.query(
    `select (select count(*) from token_usage_logs) as turns, (select count(*) from person_identifiers) as links`,
  )
  console.log(`loaded ${counts.rows[0].turns} turns, ${counts.rows[0].links} links in ${seconds(loadMs)}`)

  const clock = new ManualClock(Date.parse("2026-11-05T00:00:00Z"))
  const journeys = new JourneyService({ database, clock })
  const query = { from: "2026-10-01", to: "2026-10-30" }
  const start = new Date("2026-10-01T00:00:00Z")
  const end = new Date("2026-10-31T00:00:00Z")
  const whole: number[] = []
  const sessionsMs: number[] = []
  const assemblyMs: number[] = []
  let summary = ""
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now()
    const answer = await journeys.journeys(id, query)
    whole.push(performance.now() - t0)
    summary = `${answer.people} people, ${answer.sessions} sessions, ${answer.transitions.length} transitions, cross-channel share ${answer.crossChannelShare?.toFixed(3)}`
    const t1 = performance.now()
    const sessions = await personSessions(database.db, id, start, end, CHANNELS)
    const conversions = await firstConversions(database.db, id, start, end)
    const t2 = performance.now()
    assembleJourneys(sessions, conversions)
    const t3 = performance.now()
    sessionsMs.push(t2 - t1)
    assemblyMs.push(t3 - t2)
  }
  console.log(summary)
  console.log(
    `journeys answer: p50 ${seconds(median(whole))} (runs: ${whole.map(seconds).join(", ")}); sessions query p50 ${seconds(median(sessionsMs))}; assembly p50 ${seconds(median(assemblyMs))}`,
  )
} finally {
  await loader.end()
  await database.close()
  await admin.query(`drop database ${name} with (force)`)
  await admin.end()
}
