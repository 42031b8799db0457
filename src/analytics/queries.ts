/**
 * The analytics queries, each one named function with typed rows, in two interchangeable sources:
 * `rollupQueries` reads the rollups the ledger's triggers maintain (migration 0005), `ledgerQueries`
 * answers the same questions from the raw ledger. The service uses the rollups; the ledger source is the
 * fallback for periods the 15-minute grid cannot cut exactly, and the baseline the benchmark compares with.
 *
 * Local days and hours are computed by PostgreSQL (`AT TIME ZONE`) so that only aggregated rows leave the
 * database. Token sums come back as JavaScript numbers (bigint columns are parsed as numbers, exact below
 * 2^53).
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import type { Channel } from "../core/channels.js"
import type { DB } from "../storage/schema.js"

/** Which rows a query covers: one subscription, the instants `[start, end)`, some channels. */
export interface QueryRange {
  subscriptionId: string
  start: Date
  end: Date
  channels: readonly Channel[]
}

/** A range read in a timezone. */
export interface ZonedQueryRange extends QueryRange {
  timeZone: string
}

/** Sums of one channel's turns with one outcome ('' = allowed, else the denial reason). */
export interface UsageRow {
  channel: Channel
  denialReason: string
  turns: number
  tokens: number
  rawTokens: number
}

export interface LocalDayUsageRow extends UsageRow {
  /** YYYY-MM-DD in the range's timezone. */
  localDate: string
}

export interface LocalHourUsageRow extends UsageRow {
  /** Hour of day 0-23 in the range's timezone. */
  hour: number
}

export interface HourStartUsageRow extends UsageRow {
  /** The instant the local hour starts. */
  hourStart: Date
}

/** Distinct users of one channel, or of all channels of the range when `channel` is null. */
export interface UniqueUsersRow {
  channel: Channel | null
  users: number
}

/** The questions analytics asks of the database. */
export interface AnalyticsQueries {
  /** Usage per local day and, separately, per local hour of day, in one pass. */
  usageByLocalDayAndHour(
    db: Kysely<DB>,
    range: ZonedQueryRange,
  ): Promise<{ days: LocalDayUsageRow[]; hours: LocalHourUsageRow[] }>
  /** Usage per channel and outcome over the whole range. */
  usageTotals(db: Kysely<DB>, range: QueryRange): Promise<UsageRow[]>
  /** Usage per local hour (each hour a distinct instant, so a repeated DST hour is two rows). */
  usageByLocalHourStart(db: Kysely<DB>, range: ZonedQueryRange): Promise<HourStartUsageRow[]>
  /** Exact distinct users per channel and in total (the row with channel null). */
  uniqueUsers(db: Kysely<DB>, range: QueryRange): Promise<UniqueUsersRow[]>
}

interface RawUsage {
  channel: Channel
  denial_reason: string
  turns: number
  tokens: number
  raw_tokens: number
}

const usage = (row: RawUsage): UsageRow => ({
  channel: row.channel,
  denialReason: row.denial_reason,
  turns: Number(row.turns),
  tokens: Number(row.tokens),
  rawTokens: Number(row.raw_tokens),
})

const channelList = (channels: readonly Channel[]): RawBuilder<unknown> =>
  sql.join(channels.map((channel) => sql.lit(channel)))

/**
 * The rows of a source table in a range, as (channel, denial_reason, at, turns, tokens, raw_tokens): the
 * one place the two sources differ.
 */
interface SourceRows {
  rows(range: QueryRange): RawBuilder<unknown>
}

const bucketSource: SourceRows = {
  rows: (range) => sql`
    select channel, denial_reason, bucket_start as at, turn_count as turns, tokens_used as tokens, raw_tokens
    from channel_usage_buckets
    where subscription_id = ${range.subscriptionId} and bucket_start >= ${range.start}
      and bucket_start < ${range.end} and channel in (${channelList(range.channels)})`,
}

const ledgerSource: SourceRows = {
  rows: (range) => sql`
    select channel, coalesce(denial_reason, '') as denial_reason, omnimeter_bucket(created_at) as at,
      1 as turns, billed_tokens as tokens, raw_tokens
    from token_usage_logs
    where subscription_id = ${range.subscriptionId} and created_at >= ${range.start}
      and created_at < ${range.end} and channel in (${channelList(range.channels)})`,
}

function queriesOver(source: SourceRows, uniqueUsers: AnalyticsQueries["uniqueUsers"]): AnalyticsQueries {
  return {
    async usageByLocalDayAndHour(db, range) {
      const result = await sql<RawUsage & { local_date: string | null; local_hour: number | null }>`
        select channel, denial_reason, local_date::text as local_date, local_hour,
          sum(turns)::bigint as turns, sum(tokens)::bigint as tokens, sum(raw_tokens)::bigint as raw_tokens
        from (
          select channel, denial_reason, turns, tokens, raw_tokens, local_time::date as local_date,
            extract(hour from local_time)::int as local_hour
          from (
            select channel, denial_reason, turns, tokens, raw_tokens, at at time zone ${range.timeZone} as local_time
            from (${source.rows(range)}) as source
          ) as zoned
        ) as local
        group by grouping sets ((channel, denial_reason, local_date), (channel, denial_reason, local_hour))
      `.execute(db)
      const days: LocalDayUsageRow[] = []
      const hours: LocalHourUsageRow[] = []
      for (const row of result.rows) {
        if (row.local_date !== null) days.push({ ...usage(row), localDate: row.local_date })
        else if (row.local_hour !== null) hours.push({ ...usage(row), hour: Number(row.local_hour) })
      }
      return { days, hours }
    },

    async usageTotals(db, range) {
      const result = await sql<RawUsage>`
        select channel, denial_reason, sum(turns)::bigint as turns, sum(tokens)::bigint as tokens,
          sum(raw_tokens)::bigint as raw_tokens
        from (${source.rows(range)}) as source
        group by channel, denial_reason
      `.execute(db)
      return result.rows.map(usage)
    },

    async usageByLocalHourStart(db, range) {
      // A local hour starts where the local minute is 0; every 15-minute bucket belongs to the hour that
      // started `local minute` minutes before it.
      const result = await sql<RawUsage & { hour_start: Date | string }>`
        select channel, denial_reason,
          at - make_interval(mins => extract(minute from at at time zone ${range.timeZone})::int) as hour_start,
          sum(turns)::bigint as turns, sum(tokens)::bigint as tokens, sum(raw_tokens)::bigint as raw_tokens
        from (${source.rows(range)}) as source
        group by 1, 2, 3
      `.execute(db)
      return result.rows.map((row) => ({ ...usage(row), hourStart: new Date(row.hour_start) }))
    },

    uniqueUsers,
  }
}

const allowedLedgerUsers = (range: QueryRange, start: Date, end: Date): RawBuilder<unknown> => sql`
  select channel, user_identifier from token_usage_logs
  where subscription_id = ${range.subscriptionId} and created_at >= ${start} and created_at < ${end}
    and channel in (${channelList(range.channels)}) and status <> 'denied' and user_identifier <> ''`

async function countDistinct(db: Kysely<DB>, rows: RawBuilder<unknown>): Promise<UniqueUsersRow[]> {
  const result = await sql<{ channel: Channel | null; users: number }>`
    select case when grouping(channel) = 1 then null else channel end as channel,
      count(distinct user_identifier)::bigint as users
    from (${rows}) as seen
    group by grouping sets ((channel), ())
  `.execute(db)
  return result.rows.map((row) => ({ channel: row.channel, users: Number(row.users) }))
}

const DAY_MS = 86_400_000

/**
 * The whole UTC days inside `[start, end)` as `[firstDay, endDay)` midnights, or undefined when there is
 * none. Users of those days come from `channel_daily_users`; the partial days at either edge from the
 * ledger.
 */
export function wholeUtcDays(start: Date, end: Date): { first: Date; end: Date } | undefined {
  const first = Math.ceil(start.getTime() / DAY_MS) * DAY_MS
  const last = Math.floor(end.getTime() / DAY_MS) * DAY_MS
  return first < last ? { first: new Date(first), end: new Date(last) } : undefined
}

const isoDay = (instant: Date) => instant.toISOString().slice(0, 10)

/** Reads the rollups: 15-minute buckets, and users per UTC day plus the ledger at the edges. */
export const rollupQueries: AnalyticsQueries = queriesOver(bucketSource, (db, range) => {
  const whole = wholeUtcDays(range.start, range.end)
  if (whole === undefined) return countDistinct(db, allowedLedgerUsers(range, range.start, range.end))
  return countDistinct(
    db,
    sql`
      select channel, user_identifier from channel_daily_users
      where subscription_id = ${range.subscriptionId} and day >= ${isoDay(whole.first)}::date
        and day < ${isoDay(whole.end)}::date and channel in (${channelList(range.channels)})
      union all ${allowedLedgerUsers(range, range.start, whole.first)}
      union all ${allowedLedgerUsers(range, whole.end, range.end)}`,
  )
})

/** Reads the raw ledger only. */
export const ledgerQueries: AnalyticsQueries = queriesOver(ledgerSource, (db, range) =>
  countDistinct(db, allowedLedgerUsers(range, range.start, range.end)),
)
