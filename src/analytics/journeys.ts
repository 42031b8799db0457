/**
 * Customer journeys over a period: each person's sessions (see core/journeys.ts for what a session is),
 * read from the ledger joined to the people's identifiers when asked, so a link made today applies to
 * every past turn.
 */
import { performance } from "node:perf_hooks"
import { type Kysely, type RawBuilder, sql } from "kysely"
import { PeriodicJob } from "../background.js"
import { resolveAnalyticsRange } from "../core/analytics-range.js"
import type { Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import {
  type JourneyAggregates,
  type Journeys,
  journeysFromAggregates,
  MAX_PATH_STEPS,
  SESSION_GAP_MINUTES,
  type SessionRow,
} from "../core/journeys.js"
import type { TenantScope } from "../core/tenant.js"
import { type LocalDate, localRangeToInstants } from "../core/time-zones.js"
import type { Database } from "../storage/database.js"
import { firstConversionsSql, PERSON_KEY_SQL } from "../storage/people.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { deriveSessions } from "../storage/sessions.js"
import type { AnalyticsQuery } from "./service.js"

export interface JourneysAnswer extends Journeys {
  subscriptionId: string
  period: { from: LocalDate; to: LocalDate; timeZone: string; start: Date; end: Date }
  channels: Channel[]
  sessionGapMinutes: number
  /** When the figures were computed: now, or a stored answer's time (at most JOURNEYS_MAX_AGE_MS ago). */
  computedAt: Date
}

/**
 * The SQL of the sessions that start in [start, end) on `channels`, from the ledger's turns, as rows
 * (person, channel, started_at): allowed turns with a user_identifier; a person's turns sharing a
 * session_id on a channel are one session, starting at the first of them; the person's other turns on a
 * channel start one after SESSION_GAP_MINUTES of inactivity. A session belongs to the period it starts in,
 * so the turns before the period are read too (their sessions may run into it). The definition, from
 * turns: what recommendations read for one person, and what the journeys statement's session tables
 * (sessionsFromStoreSql) are tested against. Starts are cut to milliseconds, as JavaScript Dates hold
 * them. Person and channel compare bytewise (collate "C": the same equality, and the order of the lowercase
 * channel names).
 */
function sessionsSql(
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  only: RawBuilder<boolean>,
): RawBuilder<unknown> {
  const gap = sql.lit(`${SESSION_GAP_MINUTES} minutes`)
  return sql`
    with turns as (
      select ${PERSON_KEY_SQL} collate "C" as person, l.channel collate "C" as channel, l.session_id, l.created_at
      from token_usage_logs l
      left join person_identifiers p
        on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
      where l.subscription_id = ${subscriptionId} and l.created_at < ${end}
        and l.status <> 'denied' and l.user_identifier is not null
        and l.channel in (${sql.join(channels)}) and ${only}
    )
    select person, channel, date_trunc('milliseconds', started_at) as started_at from (
      select person, channel, min(created_at) as started_at from turns
      where session_id is not null group by person, channel, session_id
    ) as named where started_at >= ${start}
    union all
    select person, channel, date_trunc('milliseconds', created_at) from (
      select person, channel, created_at,
        created_at - lag(created_at) over (partition by person, channel order by created_at) as idle
      from turns where session_id is null
    ) as free where (idle is null or idle >= interval ${gap}) and created_at >= ${start}`
}

/**
 * The same sessions as {@link sessionsSql}, of every person, from the session tables the ledger's trigger
 * keeps (migration 0022), in place of the turns: an identifier's session-id rows grouped by person (read
 * before the period only when another identifier shares the session id), and its gap runs merged per
 * person and channel as intervals (a run starts a session when it starts SESSION_GAP_MINUTES or more after
 * the latest end before it). Runs ending more than the gap before the period cannot change a session that
 * starts in it: a run chaining into the period ends within the gap of its start.
 */
function sessionsFromStoreSql(
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
): RawBuilder<unknown> {
  const gap = sql.lit(`${SESSION_GAP_MINUTES} minutes`)
  const reach = new Date(start.getTime() - SESSION_GAP_MINUTES * 60_000)
  return sql`
    select person, channel, date_trunc('milliseconds', started_at) as started_at from (
      select ${PERSON_KEY_SQL} collate "C" as person, l.channel collate "C" as channel, min(l.started_at) as started_at
      from journey_sessions l
      left join person_identifiers p
        on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
      where l.subscription_id = ${subscriptionId} and l.started_at < ${end} and (l.started_at >= ${start} or l.shared)
        and l.channel in (${sql.join(channels)})
      group by 1, 2, l.session_id
    ) as named where started_at >= ${start}
    union all
    select person, channel, date_trunc('milliseconds', started_at) from (
      select person, channel, started_at,
        started_at - max(ended_at) over (partition by person, channel order by started_at, ended_at
          rows between unbounded preceding and 1 preceding) as idle
      from (
        select ${PERSON_KEY_SQL} collate "C" as person, l.channel collate "C" as channel, l.started_at, l.ended_at
        from journey_gap_sessions l
        left join person_identifiers p
          on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
        where l.subscription_id = ${subscriptionId} and l.started_at < ${end} and l.ended_at >= ${reach}
          and l.channel in (${sql.join(channels)})
      ) as runs
    ) as merged where (idle is null or idle >= interval ${gap}) and started_at >= ${start}`
}

/**
 * The sessions that start in [start, end) on `channels`, from the ledger's turns (see sessionsSql),
 * optionally of one person only.
 */
export async function personSessions(
  db: Kysely<DB>,
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  /** Only the turns of one person: a condition on the ledger row `l` and its link `p`. */
  only: RawBuilder<boolean> = sql<boolean>`true`,
): Promise<SessionRow[]> {
  if (channels.length === 0) return []
  const result = await sql<{ person: string; channel: Channel; started_at: Date | string }>`${sessionsSql(
    subscriptionId,
    start,
    end,
    channels,
    only,
  )}`.execute(db)
  return result.rows.map((row) => ({
    person: row.person,
    channel: row.channel,
    startedAt: row.started_at instanceof Date ? row.started_at : new Date(row.started_at),
  }))
}

/**
 * The journeys' aggregates computed in the database, in one statement: only a few hundred rows of JSON
 * leave it, whatever the number of people. The same definitions as core/journeys.ts assembleJourneys (the
 * database tests compare the two): sessions ordered by start, then channel; a transition per change of
 * channel between consecutive sessions with the median gap (percentile_cont(0.5): the mean of the middle
 * two for an even count); the path of channels with repeats collapsed, cut to MAX_PATH_STEPS; the first and
 * last touch among the sessions started at or before the first conversion (all sessions when none was).
 */
export async function journeyAggregates(
  db: Kysely<DB>,
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  /** Where the sessions come from: the session tables (the service), or the ledger's turns (the benchmark's before). */
  source: SessionSource = "sessions",
): Promise<JourneyAggregates> {
  const empty: JourneyAggregates = {
    people: 0,
    sessions: 0,
    crossChannelPeople: 0,
    transitions: [],
    paths: [],
    firstTouch: [],
    lastTouch: [],
    convertedPeople: null,
  }
  // The session tables include every turn consumed before this call (migration 0024).
  if (source === "sessions") await deriveSessions(db, subscriptionId)
  const result = await sql<{ answer: RawAggregates | string }>`${journeyAggregatesSql(
    subscriptionId,
    start,
    end,
    channels,
    source,
  )}`.execute(db)
  const row = result.rows[0]
  if (row === undefined) return empty
  const raw: RawAggregates = typeof row.answer === "string" ? JSON.parse(row.answer) : row.answer
  const converted = raw.first.reduce((sum, touch) => sum + Number(touch.people), 0)
  return {
    people: Number(raw.people),
    sessions: Number(raw.sessions),
    crossChannelPeople: Number(raw.cross),
    transitions: raw.transitions.map((t) => ({
      from: t.from,
      to: t.to,
      count: Number(t.count),
      medianGapSeconds: Number(t.median),
    })),
    paths: raw.paths.map((p) => ({
      channels: p.steps,
      people: Number(p.people),
      converted: Number(p.converted),
    })),
    firstTouch: raw.first.map((f) => ({ channel: f.channel, people: Number(f.people) })),
    lastTouch: raw.last.map((l) => ({ channel: l.channel, people: Number(l.people) })),
    convertedPeople: raw.known ? converted : null,
  }
}

/** The sessions the journeys statement reads: the session tables (migration 0022) or the ledger's turns. */
export type SessionSource = "sessions" | "turns"

/** The statement of {@link journeyAggregates}: one row, `answer`, a JSON object (see RawAggregates). */
export function journeyAggregatesSql(
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  source: SessionSource = "sessions",
): RawBuilder<unknown> {
  const conversions = firstConversionsSql(subscriptionId, start, new Date(end.getTime() - 1))
  const sessions =
    channels.length === 0
      ? sql`select null::text as person, null::text as channel, null::timestamptz as started_at where false`
      : source === "sessions"
        ? sessionsFromStoreSql(subscriptionId, start, end, channels)
        : sessionsSql(subscriptionId, start, end, channels, sql<boolean>`true`)
  return sql`
    with sessions as materialized (${sessions}),
    ordered as materialized (
      select person, channel, started_at,
        lag(channel) over w as previous_channel, lag(started_at) over w as previous_start
      from sessions window w as (partition by person order by started_at, channel)
    ),
    conversions as materialized (
      select person, date_trunc('milliseconds', occurred_at) as converted_at from (${conversions}) as c
    ),
    persons as (
      select o.person,
        (array_agg(o.channel order by o.started_at, o.channel)
          filter (where o.previous_channel is distinct from o.channel))[1:${sql.lit(MAX_PATH_STEPS)}] as steps,
        count(distinct o.channel) as channels,
        count(*) as sessions
      from ordered o group by o.person
    ),
    touches as (
      select o.person,
        coalesce((array_agg(o.channel order by o.started_at, o.channel) filter (where o.started_at <= c.converted_at))[1],
          (array_agg(o.channel order by o.started_at, o.channel))[1]) as first_touch,
        coalesce((array_agg(o.channel order by o.started_at desc, o.channel desc) filter (where o.started_at <= c.converted_at))[1],
          (array_agg(o.channel order by o.started_at desc, o.channel desc))[1]) as last_touch
      from ordered o join conversions c on c.person = o.person
      group by o.person
    )
    select json_build_object(
      'people', (select count(*) from persons),
      'sessions', (select coalesce(sum(sessions), 0) from persons),
      'cross', (select count(*) from persons where channels >= 2),
      'known', exists (select 1 from conversions),
      'transitions', (select coalesce(json_agg(t), '[]') from (
        select previous_channel as "from", channel as "to", count(*) as count,
          percentile_cont(0.5) within group (order by extract(epoch from started_at - previous_start)::float8) as median
        from ordered where previous_channel <> channel group by 1, 2) as t),
      'paths', (select coalesce(json_agg(x), '[]') from (
        select p.steps, count(*) as people, count(t.person) as converted
        from persons p left join touches t on t.person = p.person group by p.steps) as x),
      'first', (select coalesce(json_agg(f), '[]') from (
        select first_touch as channel, count(*) as people from touches group by 1) as f),
      'last', (select coalesce(json_agg(l), '[]') from (
        select last_touch as channel, count(*) as people from touches group by 1) as l)
    ) as answer`
}

/** The JSON journeyAggregates' statement answers. */
interface RawAggregates {
  people: number | string
  sessions: number | string
  cross: number | string
  known: boolean
  transitions: Array<{ from: Channel; to: Channel; count: number | string; median: number | string }>
  paths: Array<{ steps: Channel[]; people: number | string; converted: number | string }>
  first: Array<{ channel: Channel; people: number | string }>
  last: Array<{ channel: Channel; people: number | string }>
}

/**
 * How old a stored journeys answer may be when it is served: turns written since then are not in it (a
 * change of links makes it stale at once). `fresh=true` always computes.
 */
export const JOURNEYS_MAX_AGE_MS = 5 * 60_000
/** Stored answers this old, read in the last day, are re-derived by {@link JourneyRefreshJob}. */
export const JOURNEYS_REFRESH_AGE_MS = 3 * 60_000
/** A stored answer not read for this long is no longer re-derived, and is removed. */
const JOURNEYS_KEEP_UNREAD_MS = 24 * 3_600_000

/** A request's key in journey_answers. */
interface AnswerKey {
  subscriptionId: string
  from: LocalDate
  to: LocalDate
  timeZone: string
  channels: readonly Channel[]
}

/** The stored answer of a request, if any. */
async function storedAnswer(
  db: Kysely<DB>,
  key: AnswerKey,
): Promise<{ aggregates: JourneyAggregates; computedAt: Date; readAt: Date } | undefined> {
  const row = await db
    .selectFrom("journey_answers")
    .select(["aggregates", "computed_at", "read_at"])
    .where("subscription_id", "=", key.subscriptionId)
    .where("period_from", "=", sql<Date>`${key.from}::date`)
    .where("period_to", "=", sql<Date>`${key.to}::date`)
    .where("time_zone", "=", key.timeZone)
    .where("channels", "=", sql<string[]>`${sql.val([...key.channels])}::text[]`)
    .executeTakeFirst()
  if (!row) return undefined
  const aggregates = (
    typeof row.aggregates === "string" ? JSON.parse(row.aggregates) : row.aggregates
  ) as JourneyAggregates
  return { aggregates, computedAt: new Date(row.computed_at), readAt: new Date(row.read_at) }
}

/** Stores (or replaces) a request's answer, computed at `computedAt`. */
async function storeAnswer(
  db: Kysely<DB>,
  key: AnswerKey,
  aggregates: JourneyAggregates,
  computedAt: Date,
  readAt: Date,
): Promise<void> {
  await db
    .insertInto("journey_answers")
    .values({
      subscription_id: key.subscriptionId,
      period_from: key.from,
      period_to: key.to,
      time_zone: key.timeZone,
      channels: sql<string[]>`${sql.val([...key.channels])}::text[]`,
      computed_at: computedAt,
      read_at: readAt,
      aggregates: JSON.stringify(aggregates),
    })
    .onConflict((oc) =>
      oc
        .columns(["subscription_id", "period_from", "period_to", "time_zone", "channels"])
        .doUpdateSet({ computed_at: computedAt, read_at: readAt, aggregates: JSON.stringify(aggregates) }),
    )
    .execute()
}

export class JourneyService {
  /** Answers that took at least this long to compute are stored (the rest are computed on every read). */
  private readonly storeAfterMs: number

  constructor(private readonly deps: { database: Database; clock: Clock; storeAfterMs?: number }) {
    this.storeAfterMs = deps.storeAfterMs ?? 1000
  }

  /**
   * Transitions, top paths, cross-channel share, first and last touch over the period. A request whose
   * answer took storeAfterMs or more to compute is answered from its stored answer while that is at most
   * JOURNEYS_MAX_AGE_MS old (and no link changed since); `fresh` computes it now.
   */
  async journeys(
    subscriptionId: string,
    query: AnalyticsQuery,
    scope?: TenantScope,
    options: { fresh?: boolean } = {},
  ): Promise<JourneysAnswer> {
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db, subscription) => {
      const now = new Date(this.deps.clock.now())
      const range = resolveAnalyticsRange(query, subscription.timezone, now)
      const { start, end } = localRangeToInstants(range.from, range.to, range.timeZone)
      const key: AnswerKey = { subscriptionId, ...range }
      const answer = (aggregates: JourneyAggregates, computedAt: Date): JourneysAnswer => ({
        subscriptionId,
        period: { from: range.from, to: range.to, timeZone: range.timeZone, start, end },
        channels: range.channels,
        sessionGapMinutes: SESSION_GAP_MINUTES,
        computedAt,
        ...journeysFromAggregates(aggregates),
      })
      const stored = options.fresh ? undefined : await storedAnswer(db, key)
      if (stored && now.getTime() - stored.computedAt.getTime() <= JOURNEYS_MAX_AGE_MS) {
        // Reads keep it re-derived (JourneyRefreshJob); once an hour is enough to say so.
        if (now.getTime() - stored.readAt.getTime() > 3_600_000) {
          await storeAnswer(db, key, stored.aggregates, stored.computedAt, now)
        }
        return answer(stored.aggregates, stored.computedAt)
      }
      const started = performance.now()
      const aggregates = await journeyAggregates(db, subscriptionId, start, end, range.channels)
      if (stored || performance.now() - started >= this.storeAfterMs) {
        await storeAnswer(db, key, aggregates, now, now)
      }
      return answer(aggregates, now)
    })
  }

  /**
   * Re-derives up to `limit` stored answers older than JOURNEYS_REFRESH_AGE_MS (stale ones first) that were
   * read in the last day, and removes the ones nobody read for a day. Each is claimed in its own
   * transaction (FOR UPDATE SKIP LOCKED), so instances share the work. Returns how many it re-derived.
   */
  async refreshStored(limit = 10): Promise<number> {
    const now = new Date(this.deps.clock.now())
    const forgotten = new Date(now.getTime() - JOURNEYS_KEEP_UNREAD_MS)
    await this.deps.database.db.deleteFrom("journey_answers").where("read_at", "<", forgotten).execute()
    let done = 0
    for (; done < limit; done++) {
      const refreshed = await this.deps.database.db.transaction().execute(async (db) => {
        const row = await db
          .selectFrom("journey_answers")
          .select(["subscription_id", "time_zone", "channels", "read_at"])
          .select([sql<string>`period_from::text`.as("from"), sql<string>`period_to::text`.as("to")])
          .where("computed_at", "<", new Date(now.getTime() - JOURNEYS_REFRESH_AGE_MS))
          .orderBy("computed_at")
          .limit(1)
          .forUpdate()
          .skipLocked()
          .executeTakeFirst()
        if (!row) return false
        const key: AnswerKey = {
          subscriptionId: row.subscription_id,
          from: row.from as LocalDate,
          to: row.to as LocalDate,
          timeZone: row.time_zone,
          channels: row.channels as Channel[],
        }
        const { start, end } = localRangeToInstants(key.from, key.to, key.timeZone)
        const aggregates = await journeyAggregates(db, key.subscriptionId, start, end, key.channels)
        await storeAnswer(db, key, aggregates, new Date(this.deps.clock.now()), new Date(row.read_at))
        return true
      })
      if (!refreshed) break
    }
    return done
  }
}

/** Re-derives the stored journeys answers before they reach their freshness bound (every minute). */
export class JourneyRefreshJob extends PeriodicJob {
  constructor(private readonly journeys: JourneyService) {
    super(60_000)
  }

  runOnce(): Promise<number> {
    return this.journeys.refreshStored()
  }
}
