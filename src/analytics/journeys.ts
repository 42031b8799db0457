/**
 * Customer journeys over a period: each person's sessions (see core/journeys.ts for what a session is),
 * read from the ledger joined to the people's identifiers when asked, so a link made today applies to
 * every past turn.
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
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
import type { AnalyticsQuery } from "./service.js"

export interface JourneysAnswer extends Journeys {
  subscriptionId: string
  period: { from: LocalDate; to: LocalDate; timeZone: string; start: Date; end: Date }
  channels: Channel[]
  sessionGapMinutes: number
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
  const result = await sql<{ answer: RawAggregates | string }>`${journeyAggregatesSql(
    subscriptionId,
    start,
    end,
    channels,
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

/** The statement of {@link journeyAggregates}: one row, `answer`, a JSON object (see RawAggregates). */
export function journeyAggregatesSql(
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
): RawBuilder<unknown> {
  const conversions = firstConversionsSql(subscriptionId, start, new Date(end.getTime() - 1))
  const sessions =
    channels.length === 0
      ? sql`select null::text as person, null::text as channel, null::timestamptz as started_at where false`
      : sessionsFromStoreSql(subscriptionId, start, end, channels)
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

export class JourneyService {
  constructor(private readonly deps: { database: Database; clock: Clock }) {}

  /** Transitions, top paths, cross-channel share, first and last touch over the period. */
  async journeys(
    subscriptionId: string,
    query: AnalyticsQuery,
    scope?: TenantScope,
  ): Promise<JourneysAnswer> {
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db, subscription) => {
      const range = resolveAnalyticsRange(query, subscription.timezone, new Date(this.deps.clock.now()))
      const { start, end } = localRangeToInstants(range.from, range.to, range.timeZone)
      const aggregates = await journeyAggregates(db, subscriptionId, start, end, range.channels)
      return {
        subscriptionId,
        period: { from: range.from, to: range.to, timeZone: range.timeZone, start, end },
        channels: range.channels,
        sessionGapMinutes: SESSION_GAP_MINUTES,
        ...journeysFromAggregates(aggregates),
      }
    })
  }
}
