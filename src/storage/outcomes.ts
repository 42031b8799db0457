/**
 * The price list, outcomes and feedback (migration 0012), and the named queries of the outcomes answer.
 * Money stays exact: numeric columns come back as text and are turned into scaled BigInts above this layer.
 */
import { type Kysely, sql } from "kysely"
import type { Channel } from "../core/channels.js"
import { formatScaled, parseNumeric } from "../core/money.js"
import type { DB } from "./schema.js"

export interface PriceRow {
  model: string
  currency: string
  effectiveFrom: Date
  inputPerMillion: string
  outputPerMillion: string
}

/** Every price of `currency`, per model newest first. */
export async function listPrices(db: Kysely<DB>, currency: string): Promise<PriceRow[]> {
  const rows = await db
    .selectFrom("model_prices")
    .select(["model", "currency", "effective_from", "input_per_million", "output_per_million"])
    .where("currency", "=", currency)
    .orderBy("model")
    .orderBy("effective_from", "desc")
    .execute()
  return rows.map((r) => ({
    model: r.model,
    currency: r.currency,
    effectiveFrom: r.effective_from,
    inputPerMillion: r.input_per_million,
    outputPerMillion: r.output_per_million,
  }))
}

/** Records a price; the same model, currency and instant replaces its prices (costs fixed so far stay). */
export async function upsertPrice(db: Kysely<DB>, price: PriceRow): Promise<void> {
  await db
    .insertInto("model_prices")
    .values({
      model: price.model,
      currency: price.currency,
      effective_from: price.effectiveFrom,
      input_per_million: price.inputPerMillion,
      output_per_million: price.outputPerMillion,
    })
    .onConflict((oc) =>
      oc.columns(["model", "currency", "effective_from"]).doUpdateSet({
        input_per_million: price.inputPerMillion,
        output_per_million: price.outputPerMillion,
      }),
    )
    .execute()
}

export interface OutcomeRecord {
  id: string
  subscriptionId: string
  name: string
  value: string | null
  currency: string | null
  userIdentifier: string
  sessionId: string | null
  channel: Channel | null
  occurredAt: Date
  idempotencyKey: string
}

/**
 * Inserts an outcome unless its idempotency key is already recorded for the subscription; answers the
 * stored outcome and whether this call recorded it.
 */
export async function insertOutcome(
  db: Kysely<DB>,
  outcome: Omit<OutcomeRecord, "id">,
): Promise<{ recorded: boolean; outcome: OutcomeRecord }> {
  const inserted = await db
    .insertInto("outcomes")
    .values({
      subscription_id: outcome.subscriptionId,
      name: outcome.name,
      value: outcome.value,
      currency: outcome.currency,
      user_identifier: outcome.userIdentifier,
      session_id: outcome.sessionId,
      channel: outcome.channel,
      occurred_at: outcome.occurredAt,
      idempotency_key: outcome.idempotencyKey,
    })
    .onConflict((oc) => oc.columns(["subscription_id", "idempotency_key"]).doNothing())
    .returning("id")
    .executeTakeFirst()
  const row = await db
    .selectFrom("outcomes")
    .selectAll()
    .where("subscription_id", "=", outcome.subscriptionId)
    .where("idempotency_key", "=", outcome.idempotencyKey)
    .executeTakeFirstOrThrow()
  return {
    recorded: inserted !== undefined,
    outcome: {
      id: row.id,
      subscriptionId: row.subscription_id,
      name: row.name,
      // numeric(20, 6) text, trailing zeros dropped: "19.990000" -> "19.99".
      value: row.value === null ? null : formatScaled(parseNumeric(row.value, 6), 6),
      currency: row.currency,
      userIdentifier: row.user_identifier,
      sessionId: row.session_id,
      channel: row.channel as Channel | null,
      occurredAt: row.occurred_at,
      idempotencyKey: row.idempotency_key,
    },
  }
}

/** The visible, allowed turn with this id: its subscription, channel and session. */
export async function findTurnForFeedback(
  db: Kysely<DB>,
  usageId: string,
): Promise<{ subscriptionId: string; channel: Channel; sessionId: string | null } | undefined> {
  const row = await db
    .selectFrom("token_usage_logs")
    .select(["subscription_id", "channel", "session_id"])
    .where("id", "=", usageId)
    .where("status", "<>", "denied")
    .executeTakeFirst()
  return (
    row && { subscriptionId: row.subscription_id, channel: row.channel as Channel, sessionId: row.session_id }
  )
}

/** The channel of a session's latest allowed turn, or undefined when the session has none. */
export async function findSessionChannel(
  db: Kysely<DB>,
  subscriptionId: string,
  sessionId: string,
): Promise<Channel | undefined> {
  const row = await db
    .selectFrom("token_usage_logs")
    .select("channel")
    .where("subscription_id", "=", subscriptionId)
    .where("session_id", "=", sessionId)
    .where("status", "<>", "denied")
    .orderBy("created_at", "desc")
    .limit(1)
    .executeTakeFirst()
  return row?.channel as Channel | undefined
}

export interface FeedbackRecord {
  id: string
  subscriptionId: string
  usageId: string | null
  sessionId: string | null
  channel: Channel
  csat: number | null
  thumbs: "up" | "down" | null
  createdAt: Date
}

/** Inserts a rating unless its idempotency key is already recorded; answers the stored one. */
export async function insertFeedback(
  db: Kysely<DB>,
  feedback: Omit<FeedbackRecord, "id"> & { idempotencyKey: string },
): Promise<{ recorded: boolean; feedback: FeedbackRecord }> {
  const inserted = await db
    .insertInto("feedback")
    .values({
      subscription_id: feedback.subscriptionId,
      usage_id: feedback.usageId,
      session_id: feedback.sessionId,
      channel: feedback.channel,
      csat: feedback.csat,
      thumbs: feedback.thumbs,
      idempotency_key: feedback.idempotencyKey,
      created_at: feedback.createdAt,
    })
    .onConflict((oc) => oc.columns(["subscription_id", "idempotency_key"]).doNothing())
    .returning("id")
    .executeTakeFirst()
  const row = await db
    .selectFrom("feedback")
    .selectAll()
    .where("subscription_id", "=", feedback.subscriptionId)
    .where("idempotency_key", "=", feedback.idempotencyKey)
    .executeTakeFirstOrThrow()
  return {
    recorded: inserted !== undefined,
    feedback: {
      id: row.id,
      subscriptionId: row.subscription_id,
      usageId: row.usage_id,
      sessionId: row.session_id,
      channel: row.channel as Channel,
      csat: row.csat,
      thumbs: row.thumbs as "up" | "down" | null,
      createdAt: row.created_at,
    },
  }
}

/** The instants of an outcomes answer: [start, end), the channels asked for, the attribution lookback. */
export interface OutcomeQueryRange {
  subscriptionId: string
  start: Date
  end: Date
  channels: readonly Channel[]
  lookbackMs: number
  attribution: "last_touch" | "first_touch" | "linear"
}

/** Per channel (`channel` null: the totals over the channels asked for). */
export interface TurnFiguresRow {
  channel: string | null
  turns: number
  tokens_used: string
  settled: number
  errors: number
  sessions: number
  latency: number[] | null
}

/** Turns, tokens, settlements, errors, sessions and the latency percentiles, per channel and in total. */
export async function turnFigures(db: Kysely<DB>, r: OutcomeQueryRange): Promise<TurnFiguresRow[]> {
  const result = await sql<TurnFiguresRow>`
    select l.channel, count(*)::int as turns, coalesce(sum(l.billed_tokens), 0)::text as tokens_used,
      count(*) filter (where l.status = 'settled')::int as settled,
      count(*) filter (where l.status = 'settled' and l.outcome = 'error')::int as errors,
      count(distinct l.session_id)::int as sessions,
      percentile_disc(array[0.5, 0.9, 0.99]::float8[]) within group (order by l.latency_ms)
        filter (where l.status = 'settled' and l.latency_ms is not null) as latency
    from token_usage_logs l
    where l.subscription_id = ${r.subscriptionId} and l.created_at >= ${r.start} and l.created_at < ${r.end}
      and l.status <> 'denied' and l.channel = any(${r.channels as Channel[]}::text[])
    group by grouping sets ((l.channel), ())
  `.execute(db)
  return result.rows
}

export interface DetailFiguresRow {
  channel: string | null
  priced: number
  cost_micros: string
  sentiment_count: number
  sentiment_sum: string
  very_negative: number
  negative: number
  neutral: number
  positive: number
  very_positive: number
}

/** Priced turns and their cost, and the sentiment figures, per channel and in total. */
export async function detailFigures(db: Kysely<DB>, r: OutcomeQueryRange): Promise<DetailFiguresRow[]> {
  const result = await sql<DetailFiguresRow>`
    select d.channel, count(d.cost_micros)::int as priced, coalesce(sum(d.cost_micros), 0)::text as cost_micros,
      count(d.sentiment)::int as sentiment_count, coalesce(sum(d.sentiment), 0)::text as sentiment_sum,
      count(*) filter (where d.sentiment < -0.6)::int as very_negative,
      count(*) filter (where d.sentiment >= -0.6 and d.sentiment < -0.2)::int as negative,
      count(*) filter (where d.sentiment >= -0.2 and d.sentiment <= 0.2)::int as neutral,
      count(*) filter (where d.sentiment > 0.2 and d.sentiment <= 0.6)::int as positive,
      count(*) filter (where d.sentiment > 0.6)::int as very_positive
    from turn_details d
    where d.subscription_id = ${r.subscriptionId} and d.created_at >= ${r.start} and d.created_at < ${r.end}
      and d.channel = any(${r.channels as Channel[]}::text[])
    group by grouping sets ((d.channel), ())
  `.execute(db)
  return result.rows
}

export interface FeedbackFiguresRow {
  channel: string | null
  csat_count: number
  csat_sum: number
  thumbs_up: number
  thumbs_down: number
}

/** Ratings given in the period, per channel and in total. */
export async function feedbackFigures(db: Kysely<DB>, r: OutcomeQueryRange): Promise<FeedbackFiguresRow[]> {
  const result = await sql<FeedbackFiguresRow>`
    select f.channel, count(f.csat)::int as csat_count, coalesce(sum(f.csat), 0)::int as csat_sum,
      count(*) filter (where f.thumbs = 'up')::int as thumbs_up,
      count(*) filter (where f.thumbs = 'down')::int as thumbs_down
    from feedback f
    where f.subscription_id = ${r.subscriptionId} and f.created_at >= ${r.start} and f.created_at < ${r.end}
      and f.channel = any(${r.channels as Channel[]}::text[])
    group by grouping sets ((f.channel), ())
  `.execute(db)
  return result.rows
}

export interface CreditRow {
  /** null: the outcomes no channel could be credited with. */
  channel: string | null
  name: string
  /** Sum of the credited shares (1 per outcome, fractions under linear attribution), numeric text. */
  conversions: string
  /** Sum of value x share, numeric text (rounded to 12 decimals). */
  value: string
}

/**
 * The period's outcomes credited to channels under the attribution model, per channel and outcome name.
 * Touches are the subscription's allowed turns in [occurred_at - lookback, occurred_at]; an outcome's own
 * channel wins, else its session's touches, else its user's. last_touch credits the latest touch's channel,
 * first_touch the earliest's (ties by turn id), linear every touch an equal share. Channels outside the
 * request are dropped from the answer (their credit is not moved elsewhere); uncredited outcomes come back
 * with channel null.
 */
export async function outcomeCredits(db: Kysely<DB>, r: OutcomeQueryRange): Promise<CreditRow[]> {
  const lookback = `${Math.round(r.lookbackMs)} milliseconds`
  const result = await sql<CreditRow>`
    with o as materialized (
      select id, name, value, user_identifier, session_id, channel, occurred_at from outcomes
      where subscription_id = ${r.subscriptionId} and occurred_at >= ${r.start} and occurred_at < ${r.end}
    ), turns as materialized (
      select l.id, l.channel, l.created_at, l.session_id, l.user_identifier from token_usage_logs l
      where l.subscription_id = ${r.subscriptionId} and l.status <> 'denied'
        and l.created_at >= ${r.start}::timestamptz - ${lookback}::interval and l.created_at < ${r.end}
        and (l.session_id is not null or l.user_identifier is not null)
    ), by_session as (
      select o.id as oid, t.channel, t.created_at, t.id as tid from o
      join turns t on t.session_id = o.session_id
        and t.created_at between o.occurred_at - ${lookback}::interval and o.occurred_at
      where o.channel is null and o.session_id is not null
    ), by_user as (
      select o.id as oid, t.channel, t.created_at, t.id as tid from o
      join turns t on t.user_identifier = o.user_identifier
        and t.created_at between o.occurred_at - ${lookback}::interval and o.occurred_at
      where o.channel is null and not exists (select 1 from by_session s where s.oid = o.id)
    ), touches as (
      select * from by_session union all select * from by_user
    ), shares as (
      select o.id as oid, o.channel, 1::numeric as share from o where o.channel is not null
      union all
      select * from (
        select distinct on (oid) oid, channel, 1::numeric from touches
        where ${r.attribution} = 'last_touch' order by oid, created_at desc, tid desc) last
      union all
      select * from (
        select distinct on (oid) oid, channel, 1::numeric from touches
        where ${r.attribution} = 'first_touch' order by oid, created_at, tid) first
      union all
      select oid, channel, count(*)::numeric / sum(count(*)) over (partition by oid) from touches
      where ${r.attribution} = 'linear' group by oid, channel
    )
    select s.channel, o.name, sum(coalesce(s.share, 1))::text as conversions,
      round(sum(coalesce(o.value, 0) * coalesce(s.share, 1)), 12)::text as value
    from o left join shares s on s.oid = o.id
    where s.channel is null or s.channel = any(${r.channels as Channel[]}::text[])
    group by s.channel, o.name
  `.execute(db)
  return result.rows
}

/** Sessions of the period's turns that an outcome of the period names, per channel and in total. */
export async function convertedSessions(
  db: Kysely<DB>,
  r: OutcomeQueryRange,
): Promise<Array<{ channel: string | null; converted: number }>> {
  const result = await sql<{ channel: string | null; converted: number }>`
    select l.channel, count(distinct l.session_id)::int as converted
    from token_usage_logs l
    where l.subscription_id = ${r.subscriptionId} and l.created_at >= ${r.start} and l.created_at < ${r.end}
      and l.status <> 'denied' and l.channel = any(${r.channels as Channel[]}::text[])
      and l.session_id in (
        select session_id from outcomes
        where subscription_id = ${r.subscriptionId} and occurred_at >= ${r.start} and occurred_at < ${r.end}
          and session_id is not null)
    group by grouping sets ((l.channel), ())
  `.execute(db)
  return result.rows
}
