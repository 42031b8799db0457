/**
 * Customer journeys over a period: each person's sessions (see core/journeys.ts for what a session is),
 * read from the ledger joined to the people's identifiers when asked, so a link made today applies to
 * every past turn.
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import { resolveAnalyticsRange } from "../core/analytics-range.js"
import type { Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { assembleJourneys, type Journeys, SESSION_GAP_MINUTES, type SessionRow } from "../core/journeys.js"
import type { TenantScope } from "../core/tenant.js"
import { type LocalDate, localRangeToInstants } from "../core/time-zones.js"
import type { Database } from "../storage/database.js"
import { firstConversions, PERSON_KEY_SQL } from "../storage/people.js"
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
 * The sessions of the people active in [start, end) on `channels`: allowed turns with a user_identifier;
 * turns sharing a session_id are one session, other turns start one after SESSION_GAP_MINUTES of
 * inactivity on the channel.
 */
export async function personSessions(
  db: Kysely<DB>,
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  /** Only the turns of one person: a condition on the ledger row `l` and its link `p` (see personCondition). */
  only: RawBuilder<boolean> = sql<boolean>`true`,
): Promise<SessionRow[]> {
  if (channels.length === 0) return []
  const gap = sql.lit(`${SESSION_GAP_MINUTES} minutes`)
  const result = await sql<{ person: string; channel: Channel; started_at: Date | string }>`
    with turns as (
      select ${PERSON_KEY_SQL} as person, l.channel, l.session_id, l.created_at
      from token_usage_logs l
      left join person_identifiers p
        on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
      where l.subscription_id = ${subscriptionId} and l.created_at >= ${start} and l.created_at < ${end}
        and l.status <> 'denied' and l.user_identifier is not null
        and l.channel in (${sql.join(channels)}) and ${only}
    ), marked as (
      select person, channel, session_id, created_at,
        coalesce(created_at - lag(created_at) over (partition by person, channel, session_id order by created_at)
          >= interval ${gap}, true) as starts
      from turns
    )
    select person, channel, min(created_at) as started_at from marked
      where session_id is not null group by person, channel, session_id
    union all
    select person, channel, created_at from marked where session_id is null and starts
  `.execute(db)
  return result.rows.map((row) => ({
    person: row.person,
    channel: row.channel,
    startedAt: row.started_at instanceof Date ? row.started_at : new Date(row.started_at),
  }))
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
      const sessions = await personSessions(db, subscriptionId, start, end, range.channels)
      const conversions = await firstConversions(db, subscriptionId, start, new Date(end.getTime() - 1))
      return {
        subscriptionId,
        period: { from: range.from, to: range.to, timeZone: range.timeZone, start, end },
        channels: range.channels,
        sessionGapMinutes: SESSION_GAP_MINUTES,
        ...assembleJourneys(sessions, conversions),
      }
    })
  }
}
