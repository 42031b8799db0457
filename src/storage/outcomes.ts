/**
 * The price list, outcomes and feedback (migration 0012), and the named queries of the outcomes answer.
 * Money stays exact: numeric columns come back as text and are turned into scaled BigInts above this layer.
 */
import { type Kysely, sql } from "kysely"
import type { Channel } from "../core/channels.js"
import { histogramPercentiles } from "../core/latency-histogram.js"
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

/**
 * Turns, tokens, settlements, errors, sessions and the latency percentiles, per channel and in total, from
 * the raw ledger (exact percentiles; periods off the 15-minute grid, and the benchmark's baseline).
 */
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

/** Priced turns and their cost, and the sentiment figures, per channel and in total, from turn_details. */
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

/** The lookback outcome_touches holds (the answer's default, DEFAULT_LOOKBACK_DAYS). */
const FACTS_LOOKBACK_MS = 7 * 86_400_000
const factsCover = (r: OutcomeQueryRange) => r.lookbackMs === FACTS_LOOKBACK_MS

/** The shares of the period's outcomes from their stored touches (see {@link outcomeCredits}). */
function factShares(r: OutcomeQueryRange) {
  const touches = sql`
    select t.outcome_id, t.channel, t.touches, t.first_at, t.first_id, t.last_at, t.last_id
    from outcome_touches t
    where t.subscription_id = ${r.subscriptionId} and t.occurred_at >= ${r.start} and t.occurred_at < ${r.end}`
  const credited =
    r.attribution === "linear"
      ? sql`select outcome_id, channel, touches::numeric / sum(touches) over (partition by outcome_id)
          from (${touches}) t`
      : r.attribution === "last_touch"
        ? sql`select distinct on (outcome_id) outcome_id, channel, 1::numeric from (${touches}) t
            order by outcome_id, last_at desc, last_id desc`
        : sql`select distinct on (outcome_id) outcome_id, channel, 1::numeric from (${touches}) t
            order by outcome_id, first_at, first_id`
  return sql`
    shares as (
      select o.id as oid, o.channel, 1::numeric as share from o where o.channel is not null
      union all
      select * from (${credited}) as credited
    )`
}

/**
 * The period's outcomes credited to channels under the attribution model, per channel and outcome name.
 * Touches are the subscription's allowed turns in [occurred_at - lookback, occurred_at]; an outcome's own
 * channel wins, else its session's touches, else its user's. last_touch credits the latest touch's channel,
 * first_touch the earliest's (ties by turn id), linear every touch an equal share. Channels outside the
 * request are dropped from the answer (their credit is not moved elsewhere); uncredited outcomes come back
 * with channel null.
 *
 * Under the default 7-day lookback the touches come from outcome_touches (kept by triggers, migration 0019):
 * no ledger read. Under another lookback each outcome looks up its own touches (indexes
 * token_usage_logs_session_time and _user_time): one index probe under last_touch and first_touch, its
 * touches in the lookback under linear.
 */
export async function outcomeCredits(db: Kysely<DB>, r: OutcomeQueryRange): Promise<CreditRow[]> {
  const lookback = sql`${`${Math.round(r.lookbackMs)} milliseconds`}::interval`
  const window = sql`l.subscription_id = ${r.subscriptionId} and l.status <> 'denied'
    and l.created_at >= o.occurred_at - ${lookback} and l.created_at <= o.occurred_at`
  const shares = factsCover(r)
    ? factShares(r)
    : r.attribution === "linear"
      ? sql`
    by_session as (
      select o.id as oid, t.channel, t.n from o
      cross join lateral (
        select l.channel, count(*) as n from token_usage_logs l
        where ${window} and l.session_id = o.session_id group by l.channel) t
      where o.channel is null and o.session_id is not null
    ), by_user as (
      select o.id as oid, t.channel, t.n from o
      cross join lateral (
        select l.channel, count(*) as n from token_usage_logs l
        where ${window} and l.user_identifier = o.user_identifier group by l.channel) t
      where o.channel is null and not exists (select 1 from by_session s where s.oid = o.id)
    ), shares as (
      select o.id as oid, o.channel, 1::numeric as share from o where o.channel is not null
      union all
      select oid, channel, n::numeric / sum(n) over (partition by oid)
      from (select * from by_session union all select * from by_user) as touches
    )`
      : sql`
    shares as (
      select o.id as oid, coalesce(o.channel, s.channel, u.channel) as channel, 1::numeric as share
      from o
      left join lateral (
        select l.channel from token_usage_logs l
        where ${window} and l.session_id = o.session_id and o.channel is null
        order by l.created_at ${sql.raw(r.attribution === "last_touch" ? "desc" : "asc")},
          l.id ${sql.raw(r.attribution === "last_touch" ? "desc" : "asc")}
        limit 1) s on true
      left join lateral (
        select l.channel from token_usage_logs l
        where ${window} and l.user_identifier = o.user_identifier and o.channel is null and s.channel is null
        order by l.created_at ${sql.raw(r.attribution === "last_touch" ? "desc" : "asc")},
          l.id ${sql.raw(r.attribution === "last_touch" ? "desc" : "asc")}
        limit 1) u on true
    )`
  const result = await sql<CreditRow>`
    with o as materialized (
      select id, name, value, user_identifier, session_id, channel, occurred_at from outcomes
      where subscription_id = ${r.subscriptionId} and occurred_at >= ${r.start} and occurred_at < ${r.end}
    ), ${shares}
    select s.channel, o.name, sum(coalesce(s.share, 1))::text as conversions,
      round(sum(coalesce(o.value, 0) * coalesce(s.share, 1)), 12)::text as value
    from o left join shares s on s.oid = o.id
    where s.channel is null or s.channel = any(${r.channels as Channel[]}::text[])
    group by s.channel, o.name
  `.execute(db)
  return result.rows
}

/**
 * Sessions of the period's turns that an outcome of the period names, per channel and in total, from the
 * raw ledger (see {@link rollupFigures} for the rollups' reading).
 */
export async function convertedSessions(
  db: Kysely<DB>,
  r: OutcomeQueryRange,
): Promise<Array<{ channel: string | null; converted: number }>> {
  // The outcomes' sessions first, then one scan of the period's turns against them as an array parameter,
  // which PostgreSQL hashes; a join or IN subquery here was planned as a loop (seconds on PGlite).
  const named = await sql<{ session_id: string }>`
    select distinct session_id from outcomes
    where subscription_id = ${r.subscriptionId} and occurred_at >= ${r.start} and occurred_at < ${r.end}
      and session_id is not null
  `.execute(db)
  if (named.rows.length === 0) return []
  const result = await sql<{ channel: string | null; converted: number }>`
    select l.channel, count(distinct l.session_id)::int as converted
    from token_usage_logs l
    where l.subscription_id = ${r.subscriptionId} and l.created_at >= ${r.start} and l.created_at < ${r.end}
      and l.status <> 'denied' and l.channel = any(${r.channels as Channel[]}::text[])
      and l.session_id = any(${named.rows.map((row) => row.session_id)}::text[])
    group by grouping sets ((l.channel), ())
  `.execute(db)
  return result.rows
}

export interface RollupFigures {
  turns: TurnFiguresRow[]
  details: DetailFiguresRow[]
  converted: Array<{ channel: string | null; converted: number }>
}

const DAY_MS = 86_400_000

/**
 * The figures of {@link turnFigures}, {@link detailFigures} and {@link convertedSessions} from the rollups
 * of migration 0019 and the analytics rollups of 0005, for a period on the 15-minute grid: every count,
 * cost, sentiment and session exact; the latency percentiles from the log-spaced histogram (within 1% plus
 * half a millisecond, core/latency-histogram.ts). The histogram is read per UTC day for the whole days
 * inside the period and per quarter-hour at its two edges.
 */
export async function rollupFigures(db: Kysely<DB>, r: OutcomeQueryRange): Promise<RollupFigures> {
  const channels = r.channels as Channel[]
  const usage = await sql<{ channel: string | null; turns: number; tokens_used: string }>`
    select channel, coalesce(sum(turn_count), 0)::int as turns, coalesce(sum(tokens_used), 0)::text as tokens_used
    from channel_usage_buckets
    where subscription_id = ${r.subscriptionId} and bucket_start >= ${r.start} and bucket_start < ${r.end}
      and denial_reason = '' and channel = any(${channels}::text[])
    group by grouping sets ((channel), ())
  `.execute(db)
  const buckets = await sql<DetailFiguresRow & { settled: number; errors: number }>`
    select channel, coalesce(sum(settled), 0)::int as settled, coalesce(sum(errors), 0)::int as errors,
      coalesce(sum(priced), 0)::int as priced, coalesce(sum(cost_micros), 0)::text as cost_micros,
      coalesce(sum(sentiment_count), 0)::int as sentiment_count,
      coalesce(sum(sentiment_sum), 0)::text as sentiment_sum,
      coalesce(sum(very_negative), 0)::int as very_negative, coalesce(sum(negative), 0)::int as negative,
      coalesce(sum(neutral), 0)::int as neutral, coalesce(sum(positive), 0)::int as positive,
      coalesce(sum(very_positive), 0)::int as very_positive
    from outcome_buckets
    where subscription_id = ${r.subscriptionId} and bucket_start >= ${r.start} and bucket_start < ${r.end}
      and channel = any(${channels}::text[])
    group by grouping sets ((channel), ())
  `.execute(db)
  // The whole UTC days inside [start, end): read per day; the quarter-hours before and after them.
  const fullStart = new Date(Math.ceil(r.start.getTime() / DAY_MS) * DAY_MS)
  const fullEnd = new Date(Math.max(fullStart.getTime(), Math.floor(r.end.getTime() / DAY_MS) * DAY_MS))
  const histogram = await sql<{ channel: string | null; latency_bucket: number; turns: number }>`
    select channel, latency_bucket, sum(turns)::int as turns
    from (
      select channel, latency_bucket, turns from latency_days
      where subscription_id = ${r.subscriptionId} and day >= ${fullStart}::timestamptz at time zone 'UTC'
        and day < ${fullEnd}::timestamptz at time zone 'UTC' and channel = any(${channels}::text[])
      union all
      select channel, latency_bucket, turns from latency_quarters
      where subscription_id = ${r.subscriptionId} and bucket_start >= ${r.start}
        and bucket_start < least(${fullStart}::timestamptz, ${r.end}::timestamptz)
        and channel = any(${channels}::text[])
      union all
      select channel, latency_bucket, turns from latency_quarters
      where subscription_id = ${r.subscriptionId} and bucket_start >= greatest(${fullEnd}::timestamptz, ${r.start}::timestamptz)
        and bucket_start < ${r.end} and channel = any(${channels}::text[])
    ) as parts
    group by grouping sets ((channel, latency_bucket), (latency_bucket))
  `.execute(db)
  // A session met the period when one of its allowed turns is in it: its span of quarter-hours meets the
  // period and begins or ends inside it, or (rare: a session older than the period that went on after it)
  // the ledger shows a turn inside.
  const sessions = await sql<{ channel: string | null; sessions: number; converted: number }>`
    with spans as (
      select session_id, channel, first_bucket, last_bucket from ledger_sessions
      where subscription_id = ${r.subscriptionId} and last_bucket >= ${r.start} and first_bucket < ${r.end}
        and channel = any(${channels}::text[])
    ), met as (
      select session_id, channel from spans where first_bucket >= ${r.start} or last_bucket < ${r.end}
      union all
      select p.session_id, p.channel from spans p
      where p.first_bucket < ${r.start} and p.last_bucket >= ${r.end} and exists (
        select 1 from token_usage_logs l
        where l.subscription_id = ${r.subscriptionId} and l.created_at >= ${r.start} and l.created_at < ${r.end}
          and l.session_id = p.session_id and l.channel = p.channel and l.status <> 'denied')
    ), named as (
      select distinct session_id from outcomes
      where subscription_id = ${r.subscriptionId} and occurred_at >= ${r.start} and occurred_at < ${r.end}
        and session_id is not null
    ), marked as materialized (
      select m.session_id, m.channel, n.session_id is not null as converted
      from met m left join named n on n.session_id = m.session_id
    )
    -- One row per (session, channel) by the primary key: a channel's sessions are its rows; the totals
    -- count a session on several channels once.
    select channel, count(*)::int as sessions, count(*) filter (where converted)::int as converted
    from marked group by channel
    union all
    select null, count(*)::int, count(*) filter (where converted)::int
    from (select session_id, bool_or(converted) as converted from marked group by session_id) as distinct_sessions
  `.execute(db)
  const latencyOf = (channel: string | null) =>
    histogramPercentiles(
      histogram.rows.filter((row) => row.channel === channel).map((row) => [row.latency_bucket, row.turns]),
      [0.5, 0.9, 0.99],
    )
  const keys = [...channels, null]
  return {
    turns: keys.map((channel) => {
      const used = usage.rows.find((row) => row.channel === channel)
      const settled = buckets.rows.find((row) => row.channel === channel)
      const latency = latencyOf(channel)
      return {
        channel,
        turns: used?.turns ?? 0,
        tokens_used: used?.tokens_used ?? "0",
        settled: settled?.settled ?? 0,
        errors: settled?.errors ?? 0,
        sessions: sessions.rows.find((row) => row.channel === channel)?.sessions ?? 0,
        latency: latency[0] === null ? null : latency.map((ms) => ms ?? 0),
      }
    }),
    details: buckets.rows,
    converted: sessions.rows.map((row) => ({ channel: row.channel, converted: row.converted })),
  }
}
