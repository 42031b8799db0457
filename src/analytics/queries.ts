/**
 * The analytics queries, each one named function with typed rows, in two interchangeable sources:
 * `rollupQueries` and `hourlyRollupQueries` read the rollups the ledger's triggers maintain (migration 0005), `ledgerQueries`
 * answers the same questions from the raw ledger. The service uses the rollups; the ledger source is the
 * fallback for periods the 15-minute grid cannot cut exactly, and the baseline the benchmark compares with.
 *
 * Local days and hours are computed by PostgreSQL (`AT TIME ZONE`) so that only aggregated rows leave the
 * database. Token sums come back as JavaScript numbers (bigint columns are parsed as numbers, exact below
 * 2^53).
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import { CHANNELS, type Channel } from "../core/channels.js"
import { PERSON_KEY_SQL } from "../storage/people.js"
import type { DB } from "../storage/schema.js"

/**
 * Which rows a query covers: one subscription, the instants `[start, end)`, some channels, and optionally
 * one chatbot and one end user. The rollups are keyed by chatbot (migration 0014) and answer a chatbot filter;
 * they hold no end user, so a user filter is for {@link ledgerQueries} only (the service picks it).
 */
export interface QueryRange {
  subscriptionId: string
  start: Date
  end: Date
  channels: readonly Channel[]
  chatbotId?: string | undefined
  userIdentifier?: string | undefined
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

/**
 * Distinct users and people of one channel, or of all channels of the range when `channel` is null. A
 * person is a linked identity (person_identifiers, issue 15) or, unlinked, one identifier on one channel.
 */
export interface UniqueUsersRow {
  channel: Channel | null
  users: number
  people: number
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
  /**
   * Exact distinct users and people per channel and in total (the row with channel null), for each of
   * `ranges` (same subscription, channels and filters; any instants), in one pass over the rows they share:
   * the answer's i-th element is the i-th range's.
   */
  uniqueUsers(db: Kysely<DB>, ranges: readonly QueryRange[]): Promise<UniqueUsersRow[][]>
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

/** The rollups' condition for the range's chatbot, if any. */
const rollupChatbot = (range: QueryRange): RawBuilder<unknown> => {
  if (range.userIdentifier !== undefined) {
    // A programming error, not a caller's: the rollups cannot answer it and must not ignore it.
    throw new Error("the rollups hold no end users: a user filter reads the ledger")
  }
  return range.chatbotId === undefined ? sql`true` : sql`chatbot_id = ${range.chatbotId}`
}

/** The ledger's conditions for the range's chatbot and end user, if any. */
const ledgerFilters = (range: QueryRange): RawBuilder<unknown> =>
  sql`${range.chatbotId === undefined ? sql`true` : sql`chatbot_id = ${range.chatbotId}`} and ${
    range.userIdentifier === undefined ? sql`true` : sql`user_identifier = ${range.userIdentifier}`
  }`

const bucketsOf = (table: "channel_usage_buckets" | "channel_usage_hourly"): SourceRows => ({
  rows: (range) => sql`
    select channel, denial_reason, bucket_start as at, turn_count as turns, tokens_used as tokens, raw_tokens
    from ${sql.table(table)}
    where subscription_id = ${range.subscriptionId} and bucket_start >= ${range.start}
      and bucket_start < ${range.end} and channel in (${channelList(range.channels)})
      and ${rollupChatbot(range)}`,
})

const ledgerSource: SourceRows = {
  rows: (range) => sql`
    select channel, coalesce(denial_reason, '') as denial_reason, omnimeter_bucket(created_at) as at,
      1 as turns, billed_tokens as tokens, raw_tokens
    from token_usage_logs
    where subscription_id = ${range.subscriptionId} and created_at >= ${range.start}
      and created_at < ${range.end} and channel in (${channelList(range.channels)}) and ${ledgerFilters(range)}`,
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

/** The channel as one bit (website 1, whatsapp 2, ... api 32), so a user's channels fold into a mask. */
const channelBit: RawBuilder<number> = sql`case channel ${sql.join(
  CHANNELS.map((channel, index) => sql`when ${sql.lit(channel)} then ${sql.lit(1 << index)}`),
  sql` `,
)} else 0 end`

/**
 * (user_identifier, channel, channel_bit, ranges) of the allowed ledger rows in `[start, end)`, `ranges`
 * being the bit set of the ranges asked about that these rows belong to.
 */
const allowedLedgerUsers = (
  range: QueryRange,
  start: Date,
  end: Date,
  ranges: number,
): RawBuilder<unknown> => sql`
  select user_identifier, channel, ${channelBit} as channel_bit, ${sql.lit(ranges)} as ranges from token_usage_logs
  where subscription_id = ${range.subscriptionId} and created_at >= ${start} and created_at < ${end}
    and channel in (${channelList(range.channels)}) and status <> 'denied' and user_identifier <> ''
    and ${ledgerFilters(range)}`

/**
 * count(*) in total and per channel of rows holding a channel `mask`, named `${prefix}total` and
 * `${prefix}<channel>`; a mask of 0 (no allowed turn in that range) is nobody.
 */
const maskCounts = (mask: RawBuilder<unknown>, prefix: string): RawBuilder<unknown> =>
  sql.join([
    sql`count(*) filter (where ${mask} <> 0)::bigint as ${sql.ref(`${prefix}total`)}`,
    ...CHANNELS.map(
      (channel, index) =>
        sql`count(*) filter (where ${mask} & ${sql.lit(1 << index)} <> 0)::bigint as ${sql.ref(`${prefix}${channel}`)}`,
    ),
  ])

/** Per range i, `m${i}`: the bit_or of the channel bits of `seen` rows in that range. */
const rangeMasks = (count: number): RawBuilder<unknown> =>
  sql.join(
    Array.from(
      { length: count },
      (_, i) =>
        sql`coalesce(bit_or(channel_bit) filter (where ranges & ${sql.lit(1 << i)} <> 0), 0) as ${sql.ref(`m${i}`)}`,
    ),
  )

/** Per range i, the counts of {@link maskCounts} for users (`u${i}_`) and for people (`p${i}_`). */
const rangeCounts = (count: number, prefix: "u" | "p"): RawBuilder<unknown> =>
  sql.join(Array.from({ length: count }, (_, i) => maskCounts(sql.ref(`m${i}`), `${prefix}${i}_`)))

/**
 * Distinct users and people of (user_identifier, channel, channel_bit, ranges) rows, per range: one hash
 * aggregate folds each user's channels into one mask per range, another each person's (the identifier's
 * link, looked up now, so links apply to past turns), then one pass over each counts them in total and per
 * channel. Ranges that share rows (a period, its complete days and the period before, within one UTC
 * year) read them once. A subscription that links no identifier (most do not) skips the people's
 * aggregate: each identifier is then a person on one channel, so a channel's people are its users and the
 * total is the sum over the channels. A first probe tells which: unlinked, the users' aggregate reads the
 * rows as they are scanned, where the statement of both aggregates keeps them in a common table (written
 * to disk past work_mem) for its second pass, which cost a third of the comprehensive answer's longest
 * read (bench/RESULTS.md, issue 18). That statement reads whether any link exists again, so a link made
 * between the two is seen by both aggregates or by neither.
 */
async function countDistinct(
  db: Kysely<DB>,
  ranges: readonly QueryRange[],
  rows: RawBuilder<unknown>,
): Promise<UniqueUsersRow[][]> {
  const [first] = ranges
  if (first === undefined) return []
  const anyLink = sql`exists (select 1 from person_identifiers where subscription_id = ${first.subscriptionId})`
  const probe = await sql<{ linked: boolean }>`select ${anyLink} as linked`.execute(db)
  const result = await (probe.rows[0]?.linked === true
    ? sql<Record<string, number | boolean>>`
        with seen as (${rows}),
        links as (select ${anyLink} as linked)
        select * from
          links,
          (select ${rangeCounts(ranges.length, "u")}
            from (select ${rangeMasks(ranges.length)} from seen group by user_identifier) as users) as u,
          (select ${rangeCounts(ranges.length, "p")}
            from (
              select ${rangeMasks(ranges.length)} from seen as l
              left join person_identifiers p on p.subscription_id = ${first.subscriptionId}
                and p.channel = l.channel and p.user_identifier = l.user_identifier
              where (select linked from links)
              group by ${PERSON_KEY_SQL}
            ) as people) as pp
      `
    : sql<Record<string, number | boolean>>`
        select false as linked, ${rangeCounts(ranges.length, "u")}
        from (select ${rangeMasks(ranges.length)} from (${rows}) as seen group by user_identifier) as users
      `
  ).execute(db)
  const row = result.rows[0] ?? {}
  const count = (name: string) => Number(row[name] ?? 0)
  const linked = row.linked === true
  return ranges.map((range, i) => {
    const people = (channel: Channel) => count(`${linked ? "p" : "u"}${i}_${channel}`)
    return [
      {
        channel: null,
        users: count(`u${i}_total`),
        people: linked
          ? count(`p${i}_total`)
          : range.channels.reduce((sum, channel) => sum + people(channel), 0),
      },
      ...range.channels.map((channel) => ({
        channel,
        users: count(`u${i}_${channel}`),
        people: people(channel),
      })),
    ]
  })
}

/** The allowed ledger rows of every range, each with its range's bit. */
const ledgerUsersOf = (ranges: readonly QueryRange[]): RawBuilder<unknown> =>
  sql.join(
    ranges.map((range, i) => allowedLedgerUsers(range, range.start, range.end, 1 << i)),
    sql` union all `,
  )

const DAY_MS = 86_400_000

/**
 * The whole UTC days inside `[start, end)` as `[firstDay, endDay)` midnights, or undefined when there is
 * none. Users of those days come from `channel_user_days`; the partial days at either edge from the
 * ledger.
 */
export function wholeUtcDays(start: Date, end: Date): { first: Date; end: Date } | undefined {
  const first = Math.ceil(start.getTime() / DAY_MS) * DAY_MS
  const last = Math.floor(end.getTime() / DAY_MS) * DAY_MS
  return first < last ? { first: new Date(first), end: new Date(last) } : undefined
}

/**
 * Per UTC year, the bit(366) mask of the days of `[first, end)` (UTC midnights): bit d is day of year
 * d + 1, as in `channel_user_days.days`.
 * @example dayMasks(new Date("2026-01-02Z"), new Date("2026-01-04Z")) // Map { 2026 => "0110000..." }
 */
export function dayMasks(first: Date, end: Date): Map<number, string> {
  const bits = new Map<number, string[]>()
  for (let at = first.getTime(); at < end.getTime(); at += DAY_MS) {
    const day = new Date(at)
    const year = day.getUTCFullYear()
    const dayOfYear = Math.round((at - Date.UTC(year, 0, 1)) / DAY_MS)
    let mask = bits.get(year)
    if (mask === undefined) {
      mask = Array<string>(366).fill("0")
      bits.set(year, mask)
    }
    mask[dayOfYear] = "1"
  }
  return new Map([...bits].map(([year, mask]) => [year, mask.join("")]))
}

/** A year's days of a range: its bit(366) mask and the first and last day set in it (0-based bits). */
interface YearDays {
  year: number
  mask: string
  first: number
  last: number
}

/** The days of `[first, end)` (UTC midnights) per UTC year, each contiguous: see {@link dayMasks}. */
function yearDays(first: Date, end: Date): YearDays[] {
  return [...dayMasks(first, end)].map(([year, mask]) => ({
    year,
    mask,
    first: mask.indexOf("1"),
    last: mask.lastIndexOf("1"),
  }))
}

/**
 * Whether a day map (`channel_user_days`: days, first_day, last_day, year) has a day among `days`. The
 * stored bounds decide most rows by comparisons: a year's days of a range are contiguous, so a map whose
 * first or last day falls inside them has one, and a map that ends before them or starts after them has
 * none. Only a map that spans them without a day at either bound is ANDed with their mask (CASE evaluates
 * its branches in order).
 */
const hasDayIn = (days: readonly YearDays[]): RawBuilder<boolean> =>
  sql<boolean>`case year ${sql.join(
    days.map(
      ({ year, mask, first, last }) => sql`when ${sql.lit(year)} then case
        when last_day < ${sql.lit(first)} or first_day > ${sql.lit(last)} then false
        when first_day >= ${sql.lit(first)} or last_day <= ${sql.lit(last)} then true
        else (days & ${sql.lit(mask)}::bit(366)) <> B'0'::bit(366) end`,
    ),
    sql` `,
  )} else false end`

/**
 * Users from their day maps for the whole UTC days of each range, and from the ledger at its edges, in one
 * scan of the day maps of every year the ranges touch: a row's `ranges` bit i is set when it has a day of
 * range i (see {@link hasDayIn}).
 */
const rollupUniqueUsers: AnalyticsQueries["uniqueUsers"] = (db, ranges) => {
  const [first] = ranges
  if (first === undefined) return Promise.resolve([])
  const parts: RawBuilder<unknown>[] = []
  const inRange: RawBuilder<unknown>[] = []
  /** Per year, the first and last day of any range: rows outside them are left out by their bounds. */
  const hull = new Map<number, { first: number; last: number }>()
  /** The ledger's stretches outside whole days, each read once with the bits of every range it serves. */
  const edges = new Map<string, { range: QueryRange; start: Date; end: Date; ranges: number }>()
  const edge = (range: QueryRange, start: Date, end: Date, bit: number) => {
    if (start.getTime() >= end.getTime()) return
    const key = JSON.stringify([
      range.subscriptionId,
      start,
      end,
      range.channels,
      range.chatbotId,
      range.userIdentifier,
    ])
    const known = edges.get(key)
    edges.set(key, { range, start, end, ranges: (known?.ranges ?? 0) | bit })
  }
  ranges.forEach((range, i) => {
    const whole = wholeUtcDays(range.start, range.end)
    if (whole === undefined) {
      edge(range, range.start, range.end, 1 << i)
      return
    }
    const days = yearDays(whole.first, whole.end)
    for (const { year, first, last } of days) {
      const known = hull.get(year)
      hull.set(year, {
        first: Math.min(known?.first ?? first, first),
        last: Math.max(known?.last ?? last, last),
      })
    }
    inRange.push(sql`case when ${hasDayIn(days)} then ${sql.lit(1 << i)} else 0 end`)
    edge(range, range.start, whole.first, 1 << i)
    edge(range, whole.end, range.end, 1 << i)
  })
  // A period and its complete days share their first edge: one scan, both bits.
  for (const { range, start, end, ranges: bits } of edges.values())
    parts.push(allowedLedgerUsers(range, start, end, bits))
  if (hull.size > 0) {
    // Rows are filtered by their bounds only: a row inside a year's hull with no day of any range (a gap
    // between two ranges) gets no bit, and a user without one counts in no range. Testing the maps here
    // too would AND each row twice (bench/RESULTS.md, issue 18).
    parts.unshift(sql`
      select user_identifier, channel, ${channelBit} as channel_bit, ${sql.join(inRange, sql` + `)} as ranges
      from channel_user_days
      where subscription_id = ${first.subscriptionId}
        and year in (${sql.join([...hull.keys()].map((year) => sql.lit(year)))})
        and channel in (${channelList(first.channels)}) and ${rollupChatbot(first)}
        and case year ${sql.join(
          [...hull].map(
            ([year, bounds]) =>
              sql`when ${sql.lit(year)} then last_day >= ${sql.lit(bounds.first)} and first_day <= ${sql.lit(bounds.last)}`,
          ),
          sql` `,
        )} else false end`)
  }
  return countDistinct(db, ranges, sql.join(parts, sql` union all `))
}

/** Reads the rollups: 15-minute buckets (exact for every zone), users' day maps, the ledger at the edges. */
export const rollupQueries: AnalyticsQueries = queriesOver(
  bucketsOf("channel_usage_buckets"),
  rollupUniqueUsers,
)

/** Like {@link rollupQueries} with hourly buckets: exact for periods in which the zone's offset is whole hours. */
export const hourlyRollupQueries: AnalyticsQueries = queriesOver(
  bucketsOf("channel_usage_hourly"),
  rollupUniqueUsers,
)

/** Reads the raw ledger only. */
export const ledgerQueries: AnalyticsQueries = queriesOver(ledgerSource, (db, ranges) =>
  countDistinct(db, ranges, ledgerUsersOf(ranges)),
)
