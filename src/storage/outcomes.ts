/**
 * The price list, outcomes and feedback (migration 0012), and the named queries of the outcomes answer.
 * Money stays exact: numeric columns come back as text and are turned into scaled BigInts above this layer.
 */
import { type Kysely, sql } from "kysely"
import { CHANNELS, type Channel } from "../core/channels.js"
import { histogramPercentiles } from "../core/latency-histogram.js"
import { formatScaled, parseNumeric } from "../core/money.js"
import type { DB } from "./schema.js"
import { deriveSessions } from "./sessions.js"

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

/** A half-open interval of instants, [from, to). */
type Piece = readonly [Date, Date]

const QUARTER_MS = 15 * 60_000
const DAY_MS = 86_400_000
const floorTo = (at: Date, step: number) => new Date(Math.floor(at.getTime() / step) * step)
const ceilTo = (at: Date, step: number) => new Date(Math.ceil(at.getTime() / step) * step)

/** `column` inside one of the pieces (false when there are none). */
function within(column: ReturnType<typeof sql.ref>, pieces: readonly Piece[]) {
  const parts = pieces
    .filter(([from, to]) => from < to)
    .map(([from, to]) => sql`(${column} >= ${from} and ${column} < ${to})`)
  return parts.length === 0 ? sql`false` : sql`(${sql.join(parts, sql` or `)})`
}

/**
 * [start, end) on the 15-minute grid: its whole UTC days (`days`, [from, to), maybe empty), its other whole
 * quarter-hours (`quarters`, before and after the days) and the partial quarter-hours at either end
 * (`edges`, off the grid; empty on it), which together cover it exactly once.
 */
export function onGrid(start: Date, end: Date): { days: Piece; quarters: Piece[]; edges: Piece[] } {
  const innerStart = ceilTo(start, QUARTER_MS)
  const innerEnd = floorTo(end, QUARTER_MS)
  if (innerStart >= innerEnd) return { days: [innerStart, innerStart], quarters: [], edges: [[start, end]] }
  const dayStart = ceilTo(innerStart, DAY_MS)
  const dayEnd = floorTo(innerEnd, DAY_MS)
  if (dayStart >= dayEnd)
    return { days: [dayStart, dayStart], quarters: [[innerStart, innerEnd]], edges: edgesOf(start, end) }
  return {
    days: [dayStart, dayEnd],
    quarters: [
      [innerStart, dayStart],
      [dayEnd, innerEnd],
    ],
    edges: edgesOf(start, end),
  }
}

const edgesOf = (start: Date, end: Date): Piece[] => [
  [start, ceilTo(start, QUARTER_MS)],
  [floorTo(end, QUARTER_MS), end],
]

/** The lookback outcome_touches holds (the answer's default, DEFAULT_LOOKBACK_DAYS). */
const FACTS_LOOKBACK_MS = 7 * 86_400_000
const factsCover = (r: OutcomeQueryRange) => r.lookbackMs === FACTS_LOOKBACK_MS

/** The shares of the outcomes of `o` from their stored touches (see {@link outcomeCredits}). */
function factShares(r: OutcomeQueryRange, pieces: readonly Piece[]) {
  const touches = sql`
    select t.outcome_id, t.channel, t.touches, t.first_at, t.first_id, t.last_at, t.last_id
    from outcome_touches t
    where t.subscription_id = ${r.subscriptionId} and ${within(sql.ref("t.occurred_at"), pieces)}`
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
  // Turns consumed and not yet derived may touch the outcomes (their touches, migration 0024).
  await deriveSessions(db, r.subscriptionId)
  const lookback = sql`${`${Math.round(r.lookbackMs)} milliseconds`}::interval`
  const window = sql`l.subscription_id = ${r.subscriptionId} and l.status <> 'denied'
    and l.created_at >= o.occurred_at - ${lookback} and l.created_at <= o.occurred_at`
  // Under the default lookback the credits of the period's whole quarter-hours are summed from
  // outcome_credits (per UTC day for its whole days); only its partial quarter-hours at either end, off
  // the grid, credit outcome by outcome from their stored touches.
  const grid = factsCover(r) ? onGrid(r.start, r.end) : undefined
  const pieces: Piece[] = grid ? grid.edges : [[r.start, r.end]]
  const shares = factsCover(r)
    ? factShares(r, pieces)
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
  const channels = r.channels as Channel[]
  const cells = grid
    ? sql`
      union all
      select nullif(channel, ''), name, conversions, value from outcome_credit_days
      where subscription_id = ${r.subscriptionId} and attribution = ${r.attribution}
        and day >= ${grid.days[0]}::timestamptz at time zone 'UTC' and day < ${grid.days[1]}::timestamptz at time zone 'UTC'
        and (channel = '' or channel = any(${channels}::text[]))
      union all
      select nullif(channel, ''), name, conversions, value from outcome_credits
      where subscription_id = ${r.subscriptionId} and attribution = ${r.attribution}
        and ${within(sql.ref("bucket_start"), grid.quarters)}
        and (channel = '' or channel = any(${channels}::text[]))`
    : sql``
  const result = await sql<CreditRow>`
    with o as materialized (
      select id, name, value, user_identifier, session_id, channel, occurred_at from outcomes
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("occurred_at"), pieces)}
    ), ${shares}
    select channel, name, sum(conversions)::text as conversions, round(sum(value), 12)::text as value
    from (
      select s.channel, o.name, coalesce(s.share, 1) as conversions, coalesce(o.value, 0) * coalesce(s.share, 1) as value
      from o left join shares s on s.oid = o.id
      where s.channel is null or s.channel = any(${channels}::text[])
      ${cells}
    ) as credited
    group by channel, name
    having sum(conversions) <> 0
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

/**
 * The figures of {@link turnFigures}, {@link detailFigures} and {@link convertedSessions} from the rollups
 * of migrations 0005, 0019 and 0021, for any period: every count, cost, sentiment and session exact; the
 * latency percentiles from the log-spaced histogram (within 1% plus half a millisecond,
 * core/latency-histogram.ts). The whole UTC days inside the period are read per day where a table has
 * days, its other whole quarter-hours per quarter-hour, and its partial quarter-hours at either end (a
 * period off the 15-minute grid) from the raw ledger and turn_details rows.
 */
export async function rollupFigures(db: Kysely<DB>, r: OutcomeQueryRange): Promise<RollupFigures> {
  // The session tables include every turn consumed before this call (migration 0024).
  await deriveSessions(db, r.subscriptionId)
  const channels = r.channels as Channel[]
  const grid = onGrid(r.start, r.end)
  const quarters = [...grid.quarters, grid.days]
  // Independent reads: on a pool (the trusted service) they run side by side; in a tenant's transaction
  // they queue on its one connection.
  const [usage, buckets, histogram, sessions] = await Promise.all([
    sql<{ channel: string | null; turns: number; tokens_used: string }>`
    select channel, coalesce(sum(turns), 0)::int as turns, coalesce(sum(tokens_used), 0)::text as tokens_used
    from (
      select channel, turn_count as turns, tokens_used from channel_usage_buckets
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("bucket_start"), quarters)}
        and denial_reason = '' and channel = any(${channels}::text[])
      union all
      select channel, 1, billed_tokens from token_usage_logs
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("created_at"), grid.edges)}
        and status <> 'denied' and channel = any(${channels}::text[])
    ) as parts
    group by grouping sets ((channel), ())
  `.execute(db),
    sql<DetailFiguresRow & { settled: number; errors: number }>`
    select channel, coalesce(sum(settled), 0)::int as settled, coalesce(sum(errors), 0)::int as errors,
      coalesce(sum(priced), 0)::int as priced, coalesce(sum(cost_micros), 0)::text as cost_micros,
      coalesce(sum(sentiment_count), 0)::int as sentiment_count,
      coalesce(sum(sentiment_sum), 0)::text as sentiment_sum,
      coalesce(sum(very_negative), 0)::int as very_negative, coalesce(sum(negative), 0)::int as negative,
      coalesce(sum(neutral), 0)::int as neutral, coalesce(sum(positive), 0)::int as positive,
      coalesce(sum(very_positive), 0)::int as very_positive
    from (
      select channel, settled, errors, priced, cost_micros, sentiment_count, sentiment_sum, very_negative,
        negative, neutral, positive, very_positive
      from outcome_buckets
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("bucket_start"), quarters)}
        and channel = any(${channels}::text[])
      union all
      select channel, 1, (outcome = 'error')::int, 0, 0, 0, 0, 0, 0, 0, 0, 0 from token_usage_logs
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("created_at"), grid.edges)}
        and status = 'settled' and channel = any(${channels}::text[])
      union all
      select channel, 0, 0, (cost_micros is not null)::int, coalesce(cost_micros, 0),
        (sentiment is not null)::int, coalesce(sentiment, 0), (sentiment < -0.6)::int,
        (sentiment >= -0.6 and sentiment < -0.2)::int, (sentiment >= -0.2 and sentiment <= 0.2)::int,
        (sentiment > 0.2 and sentiment <= 0.6)::int, (sentiment > 0.6)::int
      from turn_details
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("created_at"), grid.edges)}
        and channel = any(${channels}::text[])
    ) as parts
    group by grouping sets ((channel), ())
  `.execute(db),
    sql<{ channel: string | null; latency_bucket: number; turns: number }>`
    select channel, latency_bucket, sum(turns)::int as turns
    from (
      select channel, latency_bucket, turns from latency_days
      where subscription_id = ${r.subscriptionId} and day >= ${grid.days[0]}::timestamptz at time zone 'UTC'
        and day < ${grid.days[1]}::timestamptz at time zone 'UTC' and channel = any(${channels}::text[])
      union all
      select channel, latency_bucket, turns from latency_quarters
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("bucket_start"), grid.quarters)}
        and channel = any(${channels}::text[])
      union all
      select channel, omnimeter_latency_bucket(latency_ms), 1 from token_usage_logs
      where subscription_id = ${r.subscriptionId} and ${within(sql.ref("created_at"), grid.edges)}
        and status = 'settled' and latency_ms is not null and channel = any(${channels}::text[])
    ) as parts
    group by grouping sets ((channel, latency_bucket), (latency_bucket))
  `.execute(db),
    sessionFigures(db, r),
  ])
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
        sessions: sessions.find((row) => row.channel === channel)?.sessions ?? 0,
        latency: latency[0] === null ? null : latency.map((ms) => ms ?? 0),
      }
    }),
    details: buckets.rows,
    converted: sessions.map((row) => ({ channel: row.channel, converted: row.converted })),
  }
}

/**
 * The period's sessions and converted sessions, per channel (a session on two channels counts on each)
 * and in total (once), exact for any period.
 *
 * Sessions: the spans (ledger_sessions per channel, session_spans over all channels) meeting the period's
 * cover on the grid [floor S, ceil E) are the spans ending at or after floor S minus those starting at or
 * after ceil E, two suffix sums of session_edges (per UTC day for whole days). Taken out: the spans that
 * meet the cover without a turn inside it (first before it, last after it; read per row, none when the
 * period ends now), and, off the grid, the sessions whose turns in the cover all fall in its slivers outside
 * the period (read from the ledger rows of those two partial quarter-hours). The total over some channels
 * only, not all six, counts distinct sessions over their ledger_sessions rows one by one instead.
 *
 * Converted: the sessions an outcome of the period names that have a turn on the channel inside the
 * period, decided per outcome from the session's nearest turns around it (outcome_session_turns).
 */
export async function sessionFigures(
  db: Kysely<DB>,
  r: OutcomeQueryRange,
): Promise<Array<{ channel: string | null; sessions: number; converted: number }>> {
  const channels = r.channels as Channel[]
  const all = CHANNELS.every((channel) => channels.includes(channel))
  const keys = all ? [...channels, "*"] : channels
  const coverStart = floorTo(r.start, QUARTER_MS)
  const coverEnd = ceilTo(r.end, QUARTER_MS)
  const startDay = ceilTo(coverStart, DAY_MS)
  const endDay = ceilTo(coverEnd, DAY_MS)
  // A span whose last quarter-hour is after this one ends at or after the period's start.
  const lastBefore = new Date(r.start.getTime() - QUARTER_MS)
  // A quarter-hour q ends by the period's end E when q <= E - 15 minutes: one comparison per row.
  const lastQuarter = new Date(r.end.getTime() - QUARTER_MS)
  // A span [first, last] (quarter-hours) has a turn in [S, E) for sure when its first or last quarter-hour
  // lies inside; otherwise, if it meets the period at all, the ledger says.
  const surely = (p: string) => sql`
    (${sql.ref(`${p}.first_bucket`)} >= ${r.start} and ${sql.ref(`${p}.first_bucket`)} <= ${lastQuarter})
    or (${sql.ref(`${p}.last_bucket`)} >= ${r.start} and ${sql.ref(`${p}.last_bucket`)} <= ${lastQuarter})`
  const turnInside = (
    session: ReturnType<typeof sql.ref>,
    channel: ReturnType<typeof sql.ref> | undefined,
    [from, to]: Piece = [r.start, r.end],
  ) => sql`
    exists (
      select 1 from token_usage_logs l
      where l.subscription_id = ${r.subscriptionId} and l.session_id = ${session}
        and l.created_at >= ${from} and l.created_at < ${to} and l.status <> 'denied'
        and ${channel ? sql`l.channel = ${channel}` : sql`l.channel = any(${channels}::text[])`})`
  // Counted by the first read but without a turn in [S, E): silent through the cover, or only in its slivers.
  const slivers = within(sql.ref("l.created_at"), [
    [coverStart, r.start],
    [r.end, coverEnd],
  ])
  const countedRead = sql<{ channel: string; meets: string }>`
    select channel, sum(n)::text as meets from (
      select channel, ends as n from session_edges
      where subscription_id = ${r.subscriptionId} and bucket_start >= ${coverStart} and bucket_start < ${startDay}
        and channel = any(${keys}::text[])
      union all
      select channel, ends from session_edge_days
      where subscription_id = ${r.subscriptionId} and day >= ${startDay}::timestamptz at time zone 'UTC'
        and channel = any(${keys}::text[])
      union all
      select channel, -starts from session_edges
      where subscription_id = ${r.subscriptionId} and bucket_start >= ${coverEnd} and bucket_start < ${endDay}
        and channel = any(${keys}::text[])
      union all
      select channel, -starts from session_edge_days
      where subscription_id = ${r.subscriptionId} and day >= ${endDay}::timestamptz at time zone 'UTC'
        and channel = any(${keys}::text[])
    ) as edges
    group by channel
  `.execute(db)
  const absentRead = sql<{ channel: string; absent: number }>`
    select p.channel, count(*)::int as absent from ledger_sessions p
    where p.subscription_id = ${r.subscriptionId} and p.last_bucket >= ${coverEnd} and p.first_bucket < ${coverStart}
      and p.channel = any(${channels}::text[])
      and not ${turnInside(sql.ref("p.session_id"), sql.ref("p.channel"), [coverStart, coverEnd])}
    group by p.channel
    union all
    select '*', count(*)::int from session_spans p
    where ${all} and p.subscription_id = ${r.subscriptionId} and p.last_bucket >= ${coverEnd}
      and p.first_bucket < ${coverStart}
      and not ${turnInside(sql.ref("p.session_id"), undefined, [coverStart, coverEnd])}
    union all
    select channel, count(*)::int from (
      select distinct l.session_id, l.channel from token_usage_logs l
      where l.subscription_id = ${r.subscriptionId} and ${slivers} and l.status <> 'denied'
        and l.session_id is not null and l.channel = any(${channels}::text[])
    ) as p
    where not ${turnInside(sql.ref("p.session_id"), sql.ref("p.channel"))}
    group by channel
    union all
    select '*', count(*)::int from (
      select distinct l.session_id from token_usage_logs l
      where ${all} and l.subscription_id = ${r.subscriptionId} and ${slivers} and l.status <> 'denied'
        and l.session_id is not null
    ) as p
    where not ${turnInside(sql.ref("p.session_id"), undefined)}
  `.execute(db)
  // The total over some channels only: distinct sessions, row by row.
  const someRead = all
    ? undefined
    : sql<{ sessions: number }>`
          select count(distinct p.session_id)::int as sessions from ledger_sessions p
          where p.subscription_id = ${r.subscriptionId} and p.last_bucket > ${lastBefore}
            and p.first_bucket < ${r.end} and p.channel = any(${channels}::text[])
            and (${surely("p")} or ${turnInside(sql.ref("p.session_id"), sql.ref("p.channel"))})
        `.execute(db)
  // Converted: a session with an outcome o in [S, E) and a turn on the channel in [S, E), which is when its
  // latest turn at or before some such o is at or after S, or its earliest turn after o is before E
  // (outcome_session_turns, migration 0025): one index range of the period's outcomes, made distinct by
  // hashing (count(distinct) would sort).
  const convertedRead = sql<{ channel: string | null; converted: number }>`
    with met as materialized (
      select distinct t.session_id, t.channel from outcome_session_turns t
      where t.subscription_id = ${r.subscriptionId} and t.occurred_at >= ${r.start} and t.occurred_at < ${r.end}
        and t.channel = any(${channels}::text[]) and (t.turn_before >= ${r.start} or t.turn_after < ${r.end})
    )
    select channel, count(*)::int as converted from met group by channel
    union all
    select null, count(*)::int from (select distinct session_id from met) as sessions
  `.execute(db)
  // Independent reads: side by side on a pool, queued on a tenant transaction's one connection.
  const [counted, absent, some, converted] = await Promise.all([
    countedRead,
    absentRead,
    someRead,
    convertedRead,
  ])
  const sessionsOf = (key: string) =>
    Number(counted.rows.find((row) => row.channel === key)?.meets ?? 0) -
    absent.rows.filter((row) => row.channel === key).reduce((sum, row) => sum + row.absent, 0)
  const total = all ? sessionsOf("*") : (some?.rows[0]?.sessions ?? 0)
  return [
    ...channels.map((channel) => ({
      channel,
      sessions: sessionsOf(channel),
      converted: converted.rows.find((row) => row.channel === channel)?.converted ?? 0,
    })),
    {
      channel: null,
      sessions: total,
      converted: converted.rows.find((row) => row.channel === null)?.converted ?? 0,
    },
  ]
}
