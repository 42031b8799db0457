/**
 * Channel recommendations (issue 15): the subscription's channels ranked and judged from the outcomes
 * answer (core/recommendations.ts says how), and, when asked, one person's preferred channel from their
 * sessions (journeys.ts personSessions, the one session definition) and their outcomes.
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import { resolveAnalyticsRange } from "../core/analytics-range.js"
import type { Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { ValidationError } from "../core/errors.js"
import { isText, TEXT_RULE } from "../core/formats.js"
import {
  type ChannelRecommendation,
  creditConversions,
  type PersonChannelActivity,
  type PreferredChannel,
  preferredChannel,
  recommendChannels,
} from "../core/recommendations.js"
import type { TenantScope } from "../core/tenant.js"
import { localRangeToInstants } from "../core/time-zones.js"
import { PERSON_ID_MAX_LENGTH } from "../experiments/inputs.js"
import type { Database } from "../storage/database.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { personSessions } from "./journeys.js"
import type { OutcomeService } from "./outcomes.js"

export interface RecommendationsQuery {
  from?: string | undefined
  to?: string | undefined
  tz?: string | undefined
  channels?: string | undefined
  /** One person by one of their identifiers (and, when it is linked, all of the person's). */
  userIdentifier?: string | undefined
  /** One person by the id their identifiers are linked to. */
  personId?: string | undefined
}

export interface PersonRecommendation extends PreferredChannel {
  personId: string | null
  userIdentifier: string | null
  channels: PersonChannelActivity[]
}

export interface RecommendationsAnswer {
  subscriptionId: string
  currency: string
  period: { from: string; to: string; timeZone: string; start: Date; end: Date }
  /** Whether any outcome was recorded in the period: without one no channel is judged. */
  outcomesKnown: boolean
  channels: ChannelRecommendation[]
  person: PersonRecommendation | null
}

type Who = { personId: string } | { userIdentifier: string }

/**
 * Which ledger rows (`l`, with its link `p`) and outcomes (`o`) are the person's: a person id's linked
 * identifiers; a user identifier on any channel, and the identifiers of every person it is linked to.
 */
function personCondition(
  subscriptionId: string,
  who: Who,
): { turns: RawBuilder<boolean>; outcomes: RawBuilder<boolean> } {
  const persons =
    "personId" in who
      ? sql`select ${who.personId}::text`
      : sql`select person_id from person_identifiers where subscription_id = ${subscriptionId} and user_identifier = ${who.userIdentifier}`
  const own =
    "personId" in who ? sql<boolean>`false` : sql<boolean>`o.user_identifier = ${who.userIdentifier}`
  return {
    turns:
      "personId" in who
        ? sql<boolean>`p.person_id = ${who.personId}`
        : sql<boolean>`(l.user_identifier = ${who.userIdentifier} or p.person_id in (${persons}))`,
    outcomes: sql<boolean>`(${own} or exists (
      select 1 from person_identifiers i where i.subscription_id = o.subscription_id
        and i.person_id in (${persons}) and i.user_identifier = o.user_identifier
        and (o.channel is null or i.channel = o.channel)))`,
  }
}

/** Per channel: the person's allowed turns, billed tokens and latest turn. */
async function personTurns(
  db: Kysely<DB>,
  subscriptionId: string,
  start: Date,
  end: Date,
  channels: readonly Channel[],
  only: RawBuilder<boolean>,
): Promise<Array<{ channel: Channel; turns: number; tokens: number; last: Date }>> {
  const result = await sql<{ channel: Channel; turns: number; tokens: string; last: Date | string }>`
    select l.channel, count(*)::int as turns, sum(l.billed_tokens)::text as tokens, max(l.created_at) as last
    from token_usage_logs l
    left join person_identifiers p
      on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
    where l.subscription_id = ${subscriptionId} and l.created_at >= ${start} and l.created_at < ${end}
      and l.status <> 'denied' and l.user_identifier is not null and l.channel in (${sql.join(channels)})
      and ${only}
    group by l.channel`.execute(db)
  return result.rows.map((row) => ({
    channel: row.channel,
    turns: Number(row.turns),
    tokens: Number(row.tokens),
    last: new Date(row.last),
  }))
}

export class RecommendationService {
  constructor(private readonly deps: { database: Database; clock: Clock; outcomes: OutcomeService }) {}

  /**
   * The subscription's channels ranked with their action, and with `personId` or `userIdentifier` that
   * person's preferred channel.
   * @example
   * const answer = await recommendations.recommendations(subscriptionId, { personId: "crm-42" })
   * answer.channels[0]?.sentence // "Steer traffic to WhatsApp: 15% of 400 sessions converted ..."
   */
  async recommendations(
    subscriptionId: string,
    query: RecommendationsQuery,
    scope?: TenantScope,
  ): Promise<RecommendationsAnswer> {
    const who = whoOf(query)
    const range = { from: query.from, to: query.to, tz: query.tz, channels: query.channels }
    const outcomes = await this.deps.outcomes.outcomes(subscriptionId, range, scope)
    const outcomesKnown = outcomes.totals.conversionCount > 0 || outcomes.unattributed.count > 0
    const channels = recommendChannels(
      outcomes.channels.map((c) => ({
        channel: c.channel,
        sessions: c.sessions,
        convertedSessions: c.convertedSessions,
        tokensUsed: c.tokensUsed,
        conversions: c.conversionCount,
        value: Number(c.value),
        cost: Number(c.cost),
      })),
      outcomes.currency,
      outcomesKnown,
    )
    const person = who === null ? null : await this.person(subscriptionId, range, who, scope)
    return {
      subscriptionId,
      currency: outcomes.currency,
      period: {
        from: outcomes.period.from,
        to: outcomes.period.to,
        timeZone: outcomes.timezone,
        start: outcomes.period.start,
        end: outcomes.period.end,
      },
      outcomesKnown,
      channels,
      person,
    }
  }

  private async person(
    subscriptionId: string,
    query: {
      from?: string | undefined
      to?: string | undefined
      tz?: string | undefined
      channels?: string | undefined
    },
    who: Who,
    scope: TenantScope | undefined,
  ): Promise<PersonRecommendation> {
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db, subscription) => {
      const range = resolveAnalyticsRange(query, subscription.timezone, new Date(this.deps.clock.now()))
      const { start, end } = localRangeToInstants(range.from, range.to, range.timeZone)
      const condition = personCondition(subscriptionId, who)
      const sessions =
        range.channels.length === 0
          ? []
          : await personSessions(db, subscriptionId, start, end, range.channels, condition.turns)
      const turns =
        range.channels.length === 0
          ? []
          : await personTurns(db, subscriptionId, start, end, range.channels, condition.turns)
      const outcomeRows = await sql<{ channel: Channel | null; occurred_at: Date | string }>`
        select o.channel, o.occurred_at from outcomes o
        where o.subscription_id = ${subscriptionId} and o.occurred_at >= ${start} and o.occurred_at < ${end}
          and ${condition.outcomes}`.execute(db)
      const credits = creditConversions(
        sessions,
        outcomeRows.rows
          .map((row) => ({ channel: row.channel, occurredAt: new Date(row.occurred_at) }))
          .filter((row) => row.channel === null || range.channels.includes(row.channel)),
      )
      const activity: PersonChannelActivity[] = turns
        .map((t) => ({
          channel: t.channel,
          sessions: sessions.filter((s) => s.channel === t.channel).length,
          turns: t.turns,
          tokensUsed: t.tokens,
          conversions: credits.get(t.channel) ?? 0,
          lastActiveAt: t.last,
        }))
        .sort((a, b) => b.sessions - a.sessions || a.channel.localeCompare(b.channel))
      return {
        personId: "personId" in who ? who.personId : null,
        userIdentifier: "userIdentifier" in who ? who.userIdentifier : null,
        channels: activity,
        ...preferredChannel(activity),
      }
    })
  }
}

function whoOf(query: RecommendationsQuery): Who | null {
  if (query.personId !== undefined && query.userIdentifier !== undefined)
    throw new ValidationError("person_id", "give either person_id or user_identifier, not both")
  if (query.personId !== undefined) {
    const personId = query.personId
    if (personId.length === 0 || personId.length > PERSON_ID_MAX_LENGTH)
      throw new ValidationError("person_id", `must be 1 to ${PERSON_ID_MAX_LENGTH} characters`)
    if (!isText(personId)) throw new ValidationError("person_id", TEXT_RULE)
    return { personId }
  }
  if (query.userIdentifier !== undefined) return { userIdentifier: query.userIdentifier }
  return null
}
