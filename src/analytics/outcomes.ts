/**
 * What each channel earns and costs (issue 14): the price list, outcomes, feedback, and the outcomes
 * answer. Money is exact throughout: numeric text from the database becomes scaled BigInts
 * (core/money.ts), and only ratios (ROI, rates) become numbers, rounded once at the end.
 */
import type { Kysely } from "kysely"
import { resolveAnalyticsRange } from "../core/analytics-range.js"
import type { Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { isText, TEXT_RULE } from "../core/formats.js"
import { isUuid } from "../core/ids.js"
import {
  divideRounded,
  formatScaled,
  isCurrencyCode,
  MONEY_DECIMALS,
  parseNumeric,
  ratio,
  SENTIMENT_BUCKETS,
  type SentimentBucket,
  toScaled,
} from "../core/money.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { addDays, type LocalDate, localRangeToInstants, todayIn } from "../core/time-zones.js"
import { validate } from "../core/validate.js"
import {
  type FeedbackInput,
  FeedbackInputSchema,
  type OutcomeInput,
  OutcomeInputSchema,
  type PriceInput,
  PriceInputSchema,
} from "../meter/inputs.js"
import type { Database } from "../storage/database.js"
import {
  convertedSessions,
  detailFigures,
  type FeedbackRecord,
  feedbackFigures,
  findSessionChannel,
  findTurnForFeedback,
  insertFeedback,
  insertOutcome,
  listPrices,
  type OutcomeQueryRange,
  type OutcomeRecord,
  outcomeCredits,
  type PriceRow,
  rollupFigures,
  turnFigures,
  upsertPrice,
} from "../storage/outcomes.js"
import type { DB } from "../storage/schema.js"
import { withScope } from "../storage/scoped.js"
import { findSubscriptionByEntity, findSubscriptionById } from "../storage/subscriptions.js"

export const ATTRIBUTION_MODELS = ["last_touch", "first_touch", "linear"] as const
export type AttributionModel = (typeof ATTRIBUTION_MODELS)[number]
/** The attribution lookback when a request names none: 7 days. */
export const DEFAULT_LOOKBACK_DAYS = 7
/** An outcome may be dated at most this far ahead of the server's clock (clock skew). */
const FUTURE_TOLERANCE_MS = 5 * 60_000

export interface OutcomesQuery {
  from?: string | undefined
  to?: string | undefined
  tz?: string | undefined
  channels?: string | undefined
  attribution?: string | undefined
  lookbackDays?: number | undefined
}

/** Money as an exact decimal string of the currency's major unit. */
type Money = string

export interface OutcomeFigures {
  cost: Money
  pricedTurns: number
  unpricedTurns: number
  settledTurns: number
  turns: number
  tokensUsed: number
  /** Per outcome name, by name: the credited outcomes (fractions under linear attribution). */
  conversions: Array<{ name: string; count: number }>
  conversionCount: number
  sessions: number
  convertedSessions: number
  conversionRate: number | null
  value: Money
  roi: number | null
  costPerConversion: Money | null
  tokensPerConversion: number | null
  latencyMs: { p50: number | null; p90: number | null; p99: number | null }
  errorRate: number | null
  sentimentAvg: number | null
  sentimentCount: number
  sentimentDistribution: Record<SentimentBucket, number>
  csatAvg: number | null
  csatCount: number
  thumbsUp: number
  thumbsDown: number
}

export interface OutcomesAnswer {
  subscriptionId: string
  timezone: string
  currency: string
  attribution: AttributionModel
  lookbackDays: number
  period: { from: string; to: string; start: Date; end: Date; days: number; completeTo: string | null }
  channels: Array<{ channel: Channel } & OutcomeFigures>
  totals: OutcomeFigures
  /** Outcomes of the period no channel could be credited with: no own channel, no touch in the lookback. */
  unattributed: { count: number; value: Money }
  generatedAt: Date
}

export interface Price {
  model: string
  currency: string
  effectiveFrom: Date
  inputPerMillion: Money
  outputPerMillion: Money
}

/** Money scale inside this file: 10^-12 of the major unit, enough for any cost exactly. */
const SCALE = 12
const MICRO_TO_SCALE = 10n ** BigInt(SCALE - MONEY_DECIMALS)

/**
 * Prices, outcomes, feedback and the outcomes answer.
 * @example
 * const outcomes = new OutcomeService({ database, clock: systemClock, currency: "USD" })
 * await outcomes.putPrice("gpt-4o-mini", { inputPerMillion: "0.15", outputPerMillion: "0.6" })
 * const answer = await outcomes.outcomes(subscriptionId, { attribution: "linear" })
 */
export class OutcomeService {
  private readonly database: Database
  private readonly clock: Clock
  readonly currency: string
  private readonly source: "rollups" | "ledger"

  constructor(dependencies: {
    database: Database
    clock: Clock
    currency: string
    /** Where the answer's turn figures come from: "rollups" (default) or "ledger" (the raw rows). */
    source?: "rollups" | "ledger"
  }) {
    this.database = dependencies.database
    this.clock = dependencies.clock
    this.currency = dependencies.currency
    this.source = dependencies.source ?? "rollups"
  }

  /** The price list in the operator's currency, per model newest first. */
  async prices(): Promise<Price[]> {
    const rows = await listPrices(this.database.db, this.currency)
    return rows.map(priceOf)
  }

  /** Sets a model's prices from `effectiveFrom` (default now). Costs fixed before are never rewritten. */
  async putPrice(model: string, input: PriceInput): Promise<Price> {
    const price = validate(PriceInputSchema, input)
    if (model.length === 0 || model.length > 128 || !isText(model))
      throw new ValidationError("model", `must be 1 to 128 characters; ${TEXT_RULE}`)
    if (price.currency !== undefined) this.requireCurrency(price.currency, "currency")
    const inputPerMillion = amount(price.inputPerMillion, "input_per_million")
    const outputPerMillion = amount(price.outputPerMillion, "output_per_million")
    const row: PriceRow = {
      model,
      currency: this.currency,
      effectiveFrom: price.effectiveFrom ? new Date(price.effectiveFrom) : new Date(this.clock.now()),
      inputPerMillion: formatScaled(inputPerMillion, MONEY_DECIMALS),
      outputPerMillion: formatScaled(outputPerMillion, MONEY_DECIMALS),
    }
    await upsertPrice(this.database.db, row)
    return priceOf(row)
  }

  /**
   * Records that an end user reached a goal; the same idempotency key records it once (`recorded` false on
   * a repeat, with the outcome first stored).
   */
  async recordOutcome(
    input: OutcomeInput,
    scope?: TenantScope,
  ): Promise<{ recorded: boolean; outcome: OutcomeRecord }> {
    const outcome = validate(OutcomeInputSchema, input)
    const value = outcome.value === undefined ? undefined : amount(outcome.value, "value")
    if (outcome.currency !== undefined) this.requireCurrency(outcome.currency, "currency")
    const now = this.clock.now()
    const occurredAt = outcome.occurredAt ? new Date(outcome.occurredAt) : new Date(now)
    if (occurredAt.getTime() > now + FUTURE_TOLERANCE_MS)
      throw new ValidationError(
        "occurred_at",
        "is in the future (more than 5 minutes ahead of the server's clock)",
      )
    return withScope(
      this.database,
      scope,
      async (db) => {
        const subscription = await this.subscriptionFor(db, outcome, scope)
        return insertOutcome(db, {
          subscriptionId: subscription.id,
          name: outcome.name,
          value: value === undefined ? null : formatScaled(value, MONEY_DECIMALS),
          currency: value === undefined ? null : this.currency,
          userIdentifier: outcome.userIdentifier,
          sessionId: outcome.sessionId ?? null,
          channel: outcome.channel ?? null,
          occurredAt,
          idempotencyKey: outcome.idempotencyKey,
        })
      },
      { transaction: true },
    )
  }

  /** Records a rating of a turn (`usageId`) or a session; the same idempotency key records it once. */
  async recordFeedback(
    input: FeedbackInput,
    scope?: TenantScope,
  ): Promise<{ recorded: boolean; feedback: FeedbackRecord }> {
    const feedback = validate(FeedbackInputSchema, input)
    if ((feedback.csat === undefined) === (feedback.thumbs === undefined))
      throw new ValidationError("csat", "give either csat (1 to 5) or thumbs (up or down)")
    if ((feedback.usageId === undefined) === (feedback.sessionId === undefined))
      throw new ValidationError("usage_id", "give either usage_id (a turn) or session_id (a session)")
    const createdAt = new Date(this.clock.now())
    return withScope(
      this.database,
      scope,
      async (db) => {
        let subscriptionId: string
        let channel: Channel
        let sessionId: string | null = feedback.sessionId ?? null
        if (feedback.usageId !== undefined) {
          const usageId = feedback.usageId.toLowerCase()
          if (!isUuid(usageId)) throw new ValidationError("usage_id", "must be a UUID")
          const turn = await findTurnForFeedback(db, usageId)
          if (!turn) throw new OmnimeterError("usage_not_found", `No usage ${usageId} exists.`, { usageId })
          subscriptionId = turn.subscriptionId
          channel = feedback.channel ?? turn.channel
          sessionId = turn.sessionId
        } else {
          const subscription = await this.subscriptionFor(db, feedback, scope)
          subscriptionId = subscription.id
          const found = feedback.channel ?? (await findSessionChannel(db, subscriptionId, sessionId ?? ""))
          if (!found)
            throw new OmnimeterError("not_found", `Session ${sessionId} has no turns; send its channel.`)
          channel = found
        }
        return insertFeedback(db, {
          subscriptionId,
          usageId: feedback.usageId?.toLowerCase() ?? null,
          sessionId,
          channel,
          csat: feedback.csat ?? null,
          thumbs: feedback.thumbs ?? null,
          idempotencyKey: feedback.idempotencyKey,
          createdAt,
        })
      },
      { transaction: true },
    )
  }

  /** Per channel and in total: cost, conversions, value, ROI, response times, sentiment and CSAT. */
  async outcomes(subscriptionId: string, query: OutcomesQuery, scope?: TenantScope): Promise<OutcomesAnswer> {
    const attribution = (query.attribution ?? "last_touch") as AttributionModel
    if (!ATTRIBUTION_MODELS.includes(attribution))
      throw new ValidationError("attribution", `must be one of ${ATTRIBUTION_MODELS.join(", ")}`)
    const lookbackDays = query.lookbackDays ?? DEFAULT_LOOKBACK_DAYS
    if (!Number.isInteger(lookbackDays) || lookbackDays < 0 || lookbackDays > 90)
      throw new ValidationError("lookback_days", "must be a whole number of days from 0 to 90")
    return withScope(this.database, scope, async (db) => {
      const subscription = await findSubscriptionById(db, subscriptionId)
      if (!subscription)
        throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
      const range = resolveAnalyticsRange(query, subscription.timezone, new Date(this.clock.now()))
      const instants = localRangeToInstants(range.from, range.to, range.timeZone)
      const r: OutcomeQueryRange = {
        subscriptionId,
        ...instants,
        channels: range.channels,
        lookbackMs: lookbackDays * 86_400_000,
        attribution,
      }
      // The rollups answer every period (a period off the 15-minute grid reads its partial quarter-hours
      // at either end from the raw rows); the benchmark's baseline reads the raw rows throughout.
      // Independent reads: on a pool (the trusted service) they run side by side; in a tenant's transaction
      // they queue on its one connection.
      const [{ turns, details, converted }, ratings, credits] = await Promise.all([
        this.source === "rollups"
          ? rollupFigures(db, r)
          : Promise.all([turnFigures(db, r), detailFigures(db, r), convertedSessions(db, r)]).then(
              ([turns, details, converted]) => ({ turns, details, converted }),
            ),
        feedbackFigures(db, r),
        outcomeCredits(db, r),
      ])
      const figuresOf = (channel: Channel | null): OutcomeFigures =>
        assemble(
          turns.find((row) => row.channel === channel),
          details.find((row) => row.channel === channel),
          ratings.find((row) => row.channel === channel),
          channel === null
            ? credits.filter((row) => row.channel !== null)
            : credits.filter((row) => row.channel === channel),
          converted.find((row) => row.channel === channel)?.converted ?? 0,
        )
      const unattributed = credits.filter((row) => row.channel === null)
      return {
        subscriptionId,
        timezone: range.timeZone,
        currency: this.currency,
        attribution,
        lookbackDays,
        period: {
          from: range.from,
          to: range.to,
          start: instants.start,
          end: instants.end,
          days: range.days,
          completeTo: lastCompleteDay(
            range.from,
            range.to,
            todayIn(range.timeZone, new Date(this.clock.now())),
          ),
        },
        channels: range.channels.map((channel) => ({ channel, ...figuresOf(channel) })),
        totals: figuresOf(null),
        unattributed: {
          count: unattributed.reduce((sum, row) => sum + Number(row.conversions), 0),
          value: formatMoney(unattributed.reduce((sum, row) => sum + parseNumeric(row.value, SCALE), 0n)),
        },
        generatedAt: new Date(this.clock.now()),
      }
    })
  }

  private requireCurrency(code: string, field: string): void {
    if (!isCurrencyCode(code)) throw new ValidationError(field, `"${code}" is not an ISO 4217 currency code`)
    if (code !== this.currency)
      throw new ValidationError(
        field,
        `amounts are recorded in the operator's currency, ${this.currency}; convert ${code} before sending`,
      )
  }

  /** The subscription an outcome or rating is for: the key's own, or the admin key's entity. */
  private async subscriptionFor(
    db: Kysely<DB>,
    input: { entityId?: string | undefined; entityType?: string | undefined },
    scope: TenantScope | undefined,
  ): Promise<Subscription> {
    let subscription: Subscription | undefined
    if (input.entityId !== undefined || input.entityType !== undefined) {
      if (input.entityId === undefined) throw new ValidationError("entity_id", "is required with entity_type")
      if (input.entityType === undefined)
        throw new ValidationError("entity_type", "is required with entity_id")
      subscription = await findSubscriptionByEntity(db, input.entityType, input.entityId)
      if (subscription && scope && subscription.id !== scope.subscriptionId) subscription = undefined
    } else if (scope) {
      subscription = await findSubscriptionById(db, scope.subscriptionId)
    } else {
      throw new ValidationError("entity_id", "is required with the admin key (or use a subscription key)")
    }
    if (!subscription) throw new OmnimeterError("subscription_not_found", "No such subscription exists.")
    return subscription
  }
}

function amount(value: string | number, field: string): bigint {
  const scaled = toScaled(value, MONEY_DECIMALS)
  if (scaled === undefined)
    throw new ValidationError(field, "must be a non-negative decimal with at most 6 decimals (e.g. 12.5)")
  return scaled
}

function priceOf(row: PriceRow): Price {
  return {
    model: row.model,
    currency: row.currency,
    effectiveFrom: row.effectiveFrom,
    inputPerMillion: formatScaled(parseNumeric(row.inputPerMillion, MONEY_DECIMALS), MONEY_DECIMALS),
    outputPerMillion: formatScaled(parseNumeric(row.outputPerMillion, MONEY_DECIMALS), MONEY_DECIMALS),
  }
}

/** An amount at SCALE as money: exact for costs; values under linear attribution rounded to micro-units. */
const formatMoney = (scaled: bigint): Money => formatScaled(scaled, SCALE)

function assemble(
  turns:
    | {
        turns: number
        tokens_used: string
        settled: number
        errors: number
        sessions: number
        latency: number[] | null
      }
    | undefined,
  details:
    | {
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
    | undefined,
  ratings: { csat_count: number; csat_sum: number; thumbs_up: number; thumbs_down: number } | undefined,
  credits: Array<{ name: string; conversions: string; value: string }>,
  converted: number,
): OutcomeFigures {
  // Micro-units with up to 6 decimals, read at scale 6: the major unit at scale 12.
  const cost = parseNumeric(details?.cost_micros ?? "0", MONEY_DECIMALS)
  // Value to micro-units (half away from zero): exact but for linear shares.
  const value =
    parseNumeric(
      formatScaled(
        credits.reduce((sum, c) => sum + parseNumeric(c.value, SCALE), 0n),
        SCALE,
      ),
      MONEY_DECIMALS,
    ) * MICRO_TO_SCALE
  // Conversions in 10^-12 shares, exact enough for any rounding to 4 decimals below.
  const conversionsScaled = credits.reduce((sum, c) => sum + parseNumeric(c.conversions, SCALE), 0n)
  const byName: Record<string, bigint> = {}
  for (const c of credits) byName[c.name] = (byName[c.name] ?? 0n) + parseNumeric(c.conversions, SCALE)
  const one = 10n ** BigInt(SCALE)
  const tokensUsed = BigInt(turns?.tokens_used ?? "0")
  const settled = turns?.settled ?? 0
  const priced = details?.priced ?? 0
  const sessions = turns?.sessions ?? 0
  const sentimentCount = details?.sentiment_count ?? 0
  const csatCount = ratings?.csat_count ?? 0
  const latency = turns?.latency ?? null
  return {
    cost: formatMoney(cost),
    pricedTurns: priced,
    unpricedTurns: settled - priced,
    settledTurns: settled,
    turns: turns?.turns ?? 0,
    tokensUsed: Number(tokensUsed),
    conversions: Object.entries(byName)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, scaled]) => ({ name, count: ratio(scaled, one, 4) ?? 0 })),
    conversionCount: ratio(conversionsScaled, one, 4) ?? 0,
    sessions,
    convertedSessions: converted,
    conversionRate: ratio(BigInt(converted), BigInt(sessions), 4),
    value: formatMoney(value),
    roi: cost === 0n ? null : ratio(value - cost, cost, 4),
    costPerConversion:
      conversionsScaled === 0n
        ? null
        : formatScaled(divideRounded(cost * one, conversionsScaled * MICRO_TO_SCALE), MONEY_DECIMALS),
    tokensPerConversion: conversionsScaled === 0n ? null : ratio(tokensUsed * one, conversionsScaled, 2),
    latencyMs: { p50: latency?.[0] ?? null, p90: latency?.[1] ?? null, p99: latency?.[2] ?? null },
    errorRate: ratio(BigInt(turns?.errors ?? 0), BigInt(settled), 4),
    sentimentAvg:
      sentimentCount === 0
        ? null
        : ratio(parseNumeric(details?.sentiment_sum ?? "0", 4), BigInt(sentimentCount) * 10_000n, 4),
    sentimentCount,
    sentimentDistribution: Object.fromEntries(
      SENTIMENT_BUCKETS.map((bucket) => [bucket, details?.[bucket] ?? 0]),
    ) as Record<SentimentBucket, number>,
    csatAvg: ratio(BigInt(ratings?.csat_sum ?? 0), BigInt(csatCount), 2),
    csatCount,
    thumbsUp: ratings?.thumbs_up ?? 0,
    thumbsDown: ratings?.thumbs_down ?? 0,
  }
}

/** The period's last day that is over (the partial-day rule of the analytics answers); null before any is. */
function lastCompleteDay(from: LocalDate, to: LocalDate, today: LocalDate): LocalDate | null {
  if (from >= today) return null
  return to < today ? to : addDays(today, -1)
}
