/**
 * The analytics service: resolves the period a request asks about, reads the rollups (or the ledger, see
 * {@link AnalyticsService}), and assembles the three answers: comprehensive, channel comparison, channel
 * trends. No web framework types; the HTTP routes call these with validated query strings.
 */
import type { Kysely } from "kysely"
import { type AnalyticsRange, MAX_HOURLY_DAYS, resolveAnalyticsRange } from "../core/analytics-range.js"
import { type Channel, isChannel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { MONEY_DECIMALS, parseNumeric } from "../core/money.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import {
  addDays,
  daysBetweenInclusive,
  eachDay,
  type LocalDate,
  localHoursBetween,
  localRangeToInstants,
  offsetsAreWholeHours,
  todayIn,
  zonedStartOfDay,
} from "../core/time-zones.js"
import type { Database } from "../storage/database.js"
import { outcomeCredits } from "../storage/outcomes.js"
import type { DB } from "../storage/schema.js"
import { withScope } from "../storage/scoped.js"
import { findSubscriptionById } from "../storage/subscriptions.js"
import type { Comparison, ComprehensiveAnalytics, Period, TrendPoint, Trends } from "./answers.js"
import {
  channelScores,
  dailyTrends,
  type FiguresByChannel,
  figuresFromLocalRows,
  figuresFromTotals,
  hourlyDistribution,
  type PeriodFigures,
  rankChannels,
  type UsersByChannel,
  usageFields,
  usersFromRows,
} from "./assemble.js"
import { type BreakdownDimension, type BreakdownItem, type BreakdownSort, breakdown } from "./breakdown.js"
import { DEFAULT_LOOKBACK_DAYS } from "./outcomes.js"
import {
  type AnalyticsQueries,
  hourlyRollupQueries,
  type LocalDayUsageRow,
  ledgerQueries,
  type QueryRange,
  rollupQueries,
} from "./queries.js"

/** The query parameters of every analytics endpoint, as received. */
export interface AnalyticsQuery {
  from?: string | undefined
  to?: string | undefined
  tz?: string | undefined
  channels?: string | undefined
  /** Only the turns of this chatbot (read from the rollups, which are keyed by chatbot). */
  chatbotId?: string | undefined
  /** Only the turns of this end user (read from the ledger: the rollups hold no end users). */
  userIdentifier?: string | undefined
}

export interface TrendsQuery extends AnalyticsQuery {
  granularity?: "daily" | "hourly" | undefined
}

/** What a breakdown asks for: the period and filters, the dimension, the order and the page. */
export interface BreakdownQuery extends AnalyticsQuery {
  by: BreakdownDimension
  sort?: BreakdownSort | undefined
  order?: "asc" | "desc" | undefined
  limit?: number | undefined
  offset?: number | undefined
}

/** One page of a breakdown, with the period it covers. */
export interface Breakdown {
  subscriptionId: string
  timezone: string
  period: Period
  by: BreakdownDimension
  sort: BreakdownSort
  order: "asc" | "desc"
  items: BreakdownItem[]
  totalItems: number
  /** The offset of the next page; null on the last. */
  nextOffset: number | null
  generatedAt: Date
}

export interface AnalyticsServiceDependencies {
  database: Database
  clock: Clock
  /**
   * Where answers are read from: "rollups" (default; the ledger is still used for periods the 15-minute
   * grid cannot cut exactly) or "ledger" (always the raw ledger: the benchmark's baseline).
   */
  source?: "rollups" | "ledger"
}

/** A resolved request: its period, the period before, and their exact instants. */
interface Resolved {
  subscription: Subscription
  range: AnalyticsRange
  dates: LocalDate[]
  /** The period's days that are over (all of them once the period is), which trend and growth read. */
  completeDates: LocalDate[]
  /** The complete days' instants while the period runs (for their users); null when all days are. */
  complete: QueryRange | null
  current: QueryRange
  /** What growth compares against: as many days as `completeDates`, immediately before the period. */
  previous: QueryRange
  previousFrom: LocalDate
  previousTo: LocalDate
  queries: AnalyticsQueries
}

const QUARTER_HOUR_MS = 15 * 60_000
const onGrid = (instant: Date) => instant.getTime() % QUARTER_HOUR_MS === 0

/**
 * Channel analytics of one subscription over a range of local days.
 * @example
 * const analytics = new AnalyticsService({ database, clock: systemClock })
 * const answer = await analytics.comprehensive(subscriptionId, { from: "2026-11-01", to: "2026-11-25" })
 * answer.channels.find((c) => c.channel === "whatsapp")?.peakUsageHour
 */
export class AnalyticsService {
  private readonly database: Database
  private readonly clock: Clock
  private readonly source: "rollups" | "ledger"

  constructor(dependencies: AnalyticsServiceDependencies) {
    this.database = dependencies.database
    this.clock = dependencies.clock
    this.source = dependencies.source ?? "rollups"
  }

  /** Every channel asked for with all its metrics, and the totals. */
  async comprehensive(
    subscriptionId: string,
    query: AnalyticsQuery,
    scope?: TenantScope,
  ): Promise<ComprehensiveAnalytics> {
    return this.inScope(scope, async (db) => {
      const r = await this.resolve(db, subscriptionId, query)
      const { current, previous, users, completeUsers, previousUsers } = await this.readPeriods(db, r)
      const values = await this.channelValues(db, r)
      const scores = channelScores(current.channels, values)
      const figuresOf = (channel: Channel): PeriodFigures => ({
        current: required(current.channels.get(channel)),
        users: users.channels.get(channel) ?? 0,
        people: users.people.channels.get(channel) ?? 0,
        completeUsers: completeUsers.channels.get(channel) ?? 0,
        previous: required(previous.channels.get(channel)),
        previousUsers: previousUsers.channels.get(channel) ?? 0,
      })
      return {
        ...this.header(r),
        efficiencyBasis: values ? "value" : "messages",
        channels: r.range.channels.map((channel) => {
          const figures = figuresOf(channel)
          return {
            channel,
            ...usageFields(figures, r.completeDates),
            ...required(scores.get(channel)),
            hourlyDistribution: hourlyDistribution(figures.current),
            dailyTrends: dailyTrends(figures.current, r.dates),
          }
        }),
        totals: {
          ...usageFields(
            {
              current: current.total,
              users: users.total,
              people: users.people.total,
              completeUsers: completeUsers.total,
              previous: previous.total,
              previousUsers: previousUsers.total,
            },
            r.completeDates,
          ),
          hourlyDistribution: hourlyDistribution(current.total),
          dailyTrends: dailyTrends(current.total, r.dates),
        },
      }
    })
  }

  /** The channels side by side, ranked by tokensUsed, with the best and worst channel per metric. */
  async comparison(subscriptionId: string, query: AnalyticsQuery, scope?: TenantScope): Promise<Comparison> {
    return this.inScope(scope, async (db) => {
      const r = await this.resolve(db, subscriptionId, query)
      const { current, previous, users, completeUsers, previousUsers } = await this.readPeriods(db, r)
      const values = await this.channelValues(db, r)
      const scores = channelScores(current.channels, values)
      const rows = r.range.channels.map((channel) => ({
        channel,
        ...usageFields(
          {
            current: required(current.channels.get(channel)),
            users: users.channels.get(channel) ?? 0,
            people: users.people.channels.get(channel) ?? 0,
            completeUsers: completeUsers.channels.get(channel) ?? 0,
            previous: required(previous.channels.get(channel)),
            previousUsers: previousUsers.channels.get(channel) ?? 0,
          },
          r.completeDates,
        ),
        ...required(scores.get(channel)),
      }))
      const total = usageFields(
        {
          current: current.total,
          users: users.total,
          people: users.people.total,
          completeUsers: completeUsers.total,
          previous: previous.total,
          previousUsers: previousUsers.total,
        },
        r.completeDates,
      )
      return {
        ...this.header(r),
        efficiencyBasis: values ? "value" : "messages",
        ...rankChannels(rows),
        totals: {
          tokensUsed: total.tokensUsed,
          rawTokens: total.rawTokens,
          messageCount: total.messageCount,
          deniedCount: total.deniedCount,
          uniqueUsers: total.uniqueUsers,
          uniquePeople: total.uniquePeople,
          avgTokensPerMessage: total.avgTokensPerMessage,
        },
      }
    })
  }

  /** One channel's usage per local day or hour of the period, zero-filled, and its figures. */
  async trends(
    subscriptionId: string,
    channelName: string,
    query: TrendsQuery,
    scope?: TenantScope,
  ): Promise<Trends> {
    if (!isChannel(channelName)) throw new ValidationError("channel", `unknown channel "${channelName}"`)
    const channel = channelName
    return this.inScope(scope, async (db) => {
      const resolved = await this.resolve(db, subscriptionId, query)
      if (!resolved.range.channels.includes(channel)) {
        throw new ValidationError("channels", `must include the channel of the path (${channel}) when given`)
      }
      const granularity = query.granularity ?? "daily"
      if (granularity === "hourly" && resolved.range.days > MAX_HOURLY_DAYS) {
        throw new ValidationError(
          "granularity",
          `hourly points are served for periods of at most ${MAX_HOURLY_DAYS} days; this one has ${resolved.range.days}`,
        )
      }
      const r: Resolved = {
        ...resolved,
        range: { ...resolved.range, channels: [channel] },
        current: { ...resolved.current, channels: [channel] },
        previous: { ...resolved.previous, channels: [channel] },
        complete: resolved.complete === null ? null : { ...resolved.complete, channels: [channel] },
      }
      const { current, previous, users, completeUsers, previousUsers, localDays } = await this.readPeriods(
        db,
        r,
      )
      const figures = required(current.channels.get(channel))
      const points =
        granularity === "daily" ? dailyPoints(r, channel, localDays) : await this.hourlyPoints(db, r)
      return {
        ...this.header(r),
        channel,
        granularity,
        points,
        summary: usageFields(
          {
            current: figures,
            users: users.channels.get(channel) ?? 0,
            people: users.people.channels.get(channel) ?? 0,
            completeUsers: completeUsers.channels.get(channel) ?? 0,
            previous: required(previous.channels.get(channel)),
            previousUsers: previousUsers.channels.get(channel) ?? 0,
          },
          r.completeDates,
        ),
      }
    })
  }

  /**
   * The period's turns by chatbot, end user or session (see breakdown.ts: read from the ledger). Sorted by
   * `sort` (default tokens_used; key ascending, everything else descending, unless `order` says).
   */
  async breakdown(subscriptionId: string, query: BreakdownQuery, scope?: TenantScope): Promise<Breakdown> {
    return this.inScope(scope, async (db) => {
      const r = await this.resolve(db, subscriptionId, query)
      const sort = query.sort ?? "tokens_used"
      const order = query.order ?? (sort === "key" ? "asc" : "desc")
      const limit = query.limit ?? 50
      const offset = query.offset ?? 0
      const page = await breakdown(db, r.current, { by: query.by, sort, order, limit, offset })
      return {
        subscriptionId: r.subscription.id,
        timezone: r.range.timeZone,
        period: period(r.range.from, r.range.to, r.range.days, r.current, r.completeDates.at(-1) ?? null),
        by: query.by,
        sort,
        order,
        items: page.items,
        totalItems: page.totalItems,
        nextOffset: offset + page.items.length < page.totalItems ? offset + page.items.length : null,
        generatedAt: new Date(this.clock.now()),
      }
    })
  }

  private async hourlyPoints(db: Kysely<DB>, r: Resolved): Promise<TrendPoint[]> {
    const rows = await r.queries.usageByLocalHourStart(db, { ...r.current, timeZone: r.range.timeZone })
    const byStart = new Map<number, TrendPoint>()
    const points = localHoursBetween(r.current.start, r.current.end, r.range.timeZone).map((hour) => {
      const point: TrendPoint = {
        start: hour.start,
        date: hour.date,
        hour: hour.hour,
        tokensUsed: 0,
        rawTokens: 0,
        messageCount: 0,
        deniedCount: 0,
      }
      byStart.set(hour.start.getTime(), point)
      return point
    })
    for (const row of rows) {
      const point = byStart.get(row.hourStart.getTime())
      if (point === undefined) {
        throw new OmnimeterError(
          "internal_error",
          `usage at ${row.hourStart.toISOString()} fits no local hour`,
        )
      }
      addToPoint(point, row)
    }
    return points
  }

  /**
   * The value credited to each channel of the period (last-touch attribution, the outcomes answer's default
   * lookback), in micro-units, when the period's outcomes earned any; undefined otherwise, and under a
   * chatbot or end-user filter (outcomes are not per chatbot), where efficiency stays messages per token.
   */
  private async channelValues(db: Kysely<DB>, r: Resolved): Promise<Map<Channel, number> | undefined> {
    if (r.current.chatbotId !== undefined || r.current.userIdentifier !== undefined) return undefined
    const credits = await outcomeCredits(db, {
      subscriptionId: r.current.subscriptionId,
      start: r.current.start,
      end: r.current.end,
      channels: r.current.channels,
      lookbackMs: DEFAULT_LOOKBACK_DAYS * 86_400_000,
      attribution: "last_touch",
    })
    const values = new Map<Channel, number>()
    let total = 0n
    for (const credit of credits) {
      if (credit.channel === null || !isChannel(credit.channel)) continue
      // Last touch credits whole outcomes: the value is exact in micro-units.
      const micros = parseNumeric(credit.value, MONEY_DECIMALS)
      values.set(credit.channel, (values.get(credit.channel) ?? 0) + Number(micros))
      total += micros
    }
    return total > 0n ? values : undefined
  }

  private header(r: Resolved) {
    const previousDays = daysBetweenInclusive(r.previousFrom, r.previousTo)
    return {
      subscriptionId: r.subscription.id,
      timezone: r.range.timeZone,
      period: period(r.range.from, r.range.to, r.range.days, r.current, r.completeDates.at(-1) ?? null),
      previousPeriod: period(r.previousFrom, r.previousTo, previousDays, r.previous, r.previousTo),
      generatedAt: new Date(this.clock.now()),
    }
  }

  private async resolve(db: Kysely<DB>, subscriptionId: string, query: AnalyticsQuery): Promise<Resolved> {
    const subscription = await findSubscriptionById(db, subscriptionId)
    if (subscription === undefined) {
      throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
    }
    const now = new Date(this.clock.now())
    const range = resolveAnalyticsRange(query, subscription.timezone, now)
    const at = (from: LocalDate, to: LocalDate): QueryRange => ({
      subscriptionId,
      ...localRangeToInstants(from, to, range.timeZone),
      channels: range.channels,
      chatbotId: query.chatbotId,
      userIdentifier: query.userIdentifier,
    })
    const current = at(range.from, range.to)
    // The partial-day rule: today is not over and later days have not begun, so trend and growth read only
    // the days before today, and growth compares them with as many days just before the period.
    const dates = eachDay(range.from, range.to)
    const today = todayIn(range.timeZone, now)
    const completeDates = dates.filter((date) => date < today)
    const running = completeDates.length < dates.length && completeDates.length > 0
    const previousFrom = running ? addDays(range.from, -completeDates.length) : range.previousFrom
    const previousTo = range.previousTo
    const previous = at(previousFrom, previousTo)
    const lastComplete = completeDates.at(-1)
    const complete = running && lastComplete !== undefined ? at(range.from, lastComplete) : null
    // Buckets are 15 minutes of UTC: a period whose edges fall off that grid (a 19th-century local mean time)
    // is answered from the ledger, exactly, rather than approximately from the rollups. So is one end user's
    // usage: the rollups sum over users (the cost: the period's ledger rows of the subscription are read).
    const aligned = [current.start, current.end, previous.start, previous.end].every(onGrid)
    const queries =
      this.source === "ledger" || !aligned || query.userIdentifier !== undefined
        ? ledgerQueries
        : offsetsAreWholeHours(previous.start, current.end, range.timeZone)
          ? hourlyRollupQueries
          : rollupQueries
    return {
      subscription,
      range,
      dates,
      completeDates,
      complete,
      current,
      previous,
      previousFrom,
      previousTo,
      queries,
    }
  }

  private async readPeriods(
    db: Kysely<DB>,
    r: Resolved,
  ): Promise<{
    current: FiguresByChannel
    previous: FiguresByChannel
    users: UsersByChannel
    completeUsers: UsersByChannel
    previousUsers: UsersByChannel
    localDays: LocalDayUsageRow[]
  }> {
    const channels = r.range.channels
    // Independent reads: on a pool (the trusted service) they run side by side; in a tenant's transaction
    // they queue on its one connection. The users of the period, of the period before and of the complete
    // days come from one pass over the rows they share.
    const [local, userRows, previousRows] = await Promise.all([
      r.queries.usageByLocalDayAndHour(db, { ...r.current, timeZone: r.range.timeZone }),
      r.queries.uniqueUsers(
        db,
        r.complete === null ? [r.current, r.previous] : [r.current, r.previous, r.complete],
      ),
      r.queries.usageTotals(db, r.previous),
    ])
    const [currentUsers = [], previousUserRows = [], completeUserRows] = userRows
    const users = usersFromRows(currentUsers)
    const previous = figuresFromTotals(channels, previousRows)
    // Users of the complete days only: all of the period's once it is over, none before its first day ends.
    const none: UsersByChannel = {
      channels: new Map<Channel, number>(),
      total: 0,
      people: { channels: new Map<Channel, number>(), total: 0 },
    }
    const previousUsers = usersFromRows(previousUserRows)
    const completeUsers =
      r.completeDates.length === 0
        ? none
        : r.complete === null
          ? users
          : usersFromRows(completeUserRows ?? [])
    return {
      current: figuresFromLocalRows(channels, local.days, local.hours),
      previous,
      users,
      completeUsers,
      previousUsers,
      localDays: local.days,
    }
  }

  private async inScope<T>(scope: TenantScope | undefined, fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    try {
      return await withScope(this.database, scope, fn)
    } catch (error) {
      // A zone the runtime knows but the database's zone data does not (they ship separately).
      if (isUnknownTimeZoneError(error)) {
        throw new ValidationError("tz", `the database does not know this timezone: ${error.message}`)
      }
      throw error
    }
  }
}

function dailyPoints(r: Resolved, channel: Channel, days: readonly LocalDayUsageRow[]): TrendPoint[] {
  const byDate = new Map<string, TrendPoint>()
  const points = r.dates.map((date) => {
    const point: TrendPoint = {
      start: zonedStartOfDay(date, r.range.timeZone),
      date,
      hour: null,
      tokensUsed: 0,
      rawTokens: 0,
      messageCount: 0,
      deniedCount: 0,
    }
    byDate.set(date, point)
    return point
  })
  for (const row of days) {
    const point = byDate.get(row.localDate)
    if (point === undefined || row.channel !== channel) continue
    addToPoint(point, row)
  }
  return points
}

function isUnknownTimeZoneError(error: unknown): error is Error {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === "22023" &&
    /time zone/i.test(error.message)
  )
}

function addToPoint(
  point: TrendPoint,
  row: { denialReason: string; turns: number; tokens: number; rawTokens: number },
): void {
  if (row.denialReason === "") {
    point.tokensUsed += row.tokens
    point.rawTokens += row.rawTokens
    point.messageCount += row.turns
  } else {
    point.deniedCount += row.turns
  }
}

function period(
  from: LocalDate,
  to: LocalDate,
  days: number,
  instants: QueryRange,
  completeTo: LocalDate | null,
): Period {
  return { from, to, days, start: instants.start, end: instants.end, completeTo }
}

function required<T>(value: T | undefined): T {
  if (value === undefined)
    throw new OmnimeterError("internal_error", "analytics figures are missing a channel")
  return value
}
