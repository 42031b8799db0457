/**
 * The metering service: the one question every chat turn asks ("may this turn run, and what does it
 * cost?") and everything around it. Pure rules come from src/core, atomic state changes from the ledger
 * and the rate limiter; this file only orders them.
 *
 * Request path of one turn: validate -> find the subscription and the channel's overrides (one query) ->
 * preflight (status, plan, enabled, length) -> rate limit (reserve), and meanwhile for a keyed turn:
 * idempotent replay? -> quota and ledger row (one statement) -> on a quota denial, give the rate
 * reservation back.
 */

import type { Kysely } from "kysely"
import Sentiment from "sentiment"
import { billedTokens, hundredthsToMultiplier, MAX_TOKENS_PER_TURN } from "../core/billing.js"
import {
  admissionThreshold,
  admitPercent,
  type Capacity,
  priorityCurveProblem,
  quotaLimitFor,
} from "../core/capacity.js"
import type { Channel } from "../core/channels.js"
import { type Clock, systemClock } from "../core/clock.js"
import {
  type CapacityScope,
  capacityShed,
  type Denial,
  messageLengthOf,
  preflight,
  quotaExceeded,
  quotaReserved,
  rateLimited,
  resolveChannelSettings,
  subscriptionNotFound,
  turnTooLargeForCapacity,
} from "../core/decision.js"
import { DatabaseUnavailableError, OmnimeterError, ValidationError } from "../core/errors.js"
import { withVariantOverrides } from "../core/experiments.js"
import { isUuid, uuidV7 } from "../core/ids.js"
import { formatScaled, isCurrencyCode, normalizeAfinn, parseNumeric, roundTo } from "../core/money.js"
import { billingPeriodAt } from "../core/period.js"
import { isValidTimeZone, type Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { validate } from "../core/validate.js"
import { ExperimentAssigner } from "../experiments/assigner.js"
import { ExperimentService } from "../experiments/service.js"
import { InProcessRateLimiter } from "../limits/in-process.js"
import type { RateLimiter, RateLimitState, SharedWindowRequest } from "../limits/rate-limiter.js"
import { type Database, type DatabaseOptions, openDatabase } from "../storage/database.js"
import { type GroupCommitOptions, GroupCommitter } from "../storage/group-commit.js"
import {
  type BatchOutcome,
  type BatchTurn,
  type ChargedTurn,
  consumeBatch,
  findBatchOutcomes,
  findChargedTurnByKey,
  settleTurn,
  usedTokensInPeriod,
} from "../storage/ledger.js"
import type { DB } from "../storage/schema.js"
import { withScope } from "../storage/scoped.js"
import { SessionDeriveJob } from "../storage/sessions.js"
import {
  entityContextsKey,
  findSubscriptionContexts,
  findSubscriptionContextsOf,
} from "../storage/subscriptions.js"
import { ChannelConfigService } from "./channel-config.js"
import { ContextCache, contextOf, type TurnContext } from "./context-cache.js"
import type {
  AllowedDecision,
  ChannelConfig,
  Decision,
  DeniedDecision,
  QuotaStatus,
  SettleResult,
} from "./decisions.js"
import { METER_DEFAULTS } from "./defaults.js"
import {
  type ChannelConfigPatch,
  type ConsumeInput,
  ConsumeInputSchema,
  type CreateSubscriptionInput,
  type SettleInput,
  SettleInputSchema,
  type UpdateSubscriptionInput,
} from "./inputs.js"
import { type MeteredTurn, type MeteredTurnOptions, runMeteredTurn } from "./metered-turn.js"
import { requireUuid, SubscriptionService } from "./subscriptions.js"

export type { TenantScope } from "../core/tenant.js"

/** Hot-path knobs; the defaults suit both databases. */
export interface MeterTuning {
  /**
   * How long a turn's subscription context (plan, status, channel settings) is reused from memory; 0 turns
   * the cache off. Changes made through this meter apply at once; changes made through another instance
   * within this bound. Quota is always checked in the database, whatever this is. Default 1000 ms on
   * PostgreSQL, 60,000 ms on PGlite (a single process: every change goes through it).
   */
  contextCacheTtlMs?: number
  /**
   * What the context cache measures its time-to-live with. Default: the monotonic `performance.now`,
   * since staleness is about real time and the wall clock can jump; tests pass their manual clock.
   */
  contextCacheClock?: Clock
  /**
   * Group commit: most turns per batch, and most batches in flight (default 4, and never more than the
   * database runs at once: 1 on the embedded database).
   */
  groupCommit?: Omit<GroupCommitOptions<BatchTurn, BatchOutcome>, "laneOf" | "unknownOutcome">
}

/**
 * A capacity shared by every subscription of the deployment (e.g. the LLM provider's tokens-per-minute
 * limit), shed by channel priority like a subscription's own. Exact across instances only on a shared
 * limiter (Redis); in-process it is this process's alone.
 */
export interface OperatorCapacity extends Capacity {
  /** Percent of the capacity each priority 1..10 may fill; default: the default curve. */
  priorityCurve?: readonly number[] | null
}

/** What a subscription gets when its creator leaves a field out. */
export interface MeterDefaults {
  /** IANA timezone of subscriptions created without one (default "UTC"); an unknown zone throws at once. */
  defaultTimezone?: string
  /** The deployment-wide capacity, when the operator sets one (see {@link OperatorCapacity}). */
  operatorCapacity?: OperatorCapacity
  /** The operator's ISO 4217 currency: prices, costs and outcome values are in it (default "USD"). */
  currency?: string
}

export interface MeterDependencies extends MeterTuning, MeterDefaults {
  database: Database
  rateLimiter: RateLimiter
  clock: Clock
}

export interface MeterOptions extends DatabaseOptions, MeterTuning, MeterDefaults {
  /**
   * An already open database: its owner closes it and drains its session queue (`SessionDeriveJob`).
   * Without it, the meter opens one, and runs that job itself until {@link Meter.close}.
   */
  database?: Database
  /** Defaults to the in-process limiter: exact for one process. */
  rateLimiter?: RateLimiter
  clock?: Clock
}

/**
 * Opens the database (embedded PGlite unless `databaseUrl` is given), applies migrations and returns a
 * ready meter.
 * @example
 * const meter = await createMeter({ dataDir: "./.omnimeter" })
 * const decision = await meter.validateAndConsumeTokens({
 *   entityId: "acme", entityType: "organization", estimatedTokens: 350,
 *   operationType: "chat", channel: "whatsapp", chatbotId: "support-bot",
 *   sessionId: "s-1", userIdentifier: "+15550100", message: "Where is my order?",
 * })
 * if (decision.allowed) await meter.settle(decision.usageId, { actualTokens: 410 })
 */
export async function createMeter(options: MeterOptions = {}): Promise<Meter> {
  const clock = options.clock ?? systemClock
  // Before opening anything, so a bad option leaves no database open behind it.
  if (options.defaultTimezone !== undefined && !isValidTimeZone(options.defaultTimezone))
    throw new ValidationError("defaultTimezone", `unknown IANA timezone "${options.defaultTimezone}"`)
  if (options.currency !== undefined && !isCurrencyCode(options.currency))
    throw new ValidationError("currency", `"${options.currency}" is not an ISO 4217 currency code`)
  const ownsDatabase = options.database === undefined
  const database = options.database ?? (await openDatabase(options))
  const rateLimiter = options.rateLimiter ?? new InProcessRateLimiter(clock)
  // A meter that opened its database also drains its session queue (the server's container does it for
  // the database it opens): a library process that never reads an outcomes or journeys answer would
  // otherwise keep one queued row per allowed turn. (The embedded database queues nothing: the job's start
  // starts nothing there, migration 0026.)
  const sessions = ownsDatabase ? new SessionDeriveJob({ database }) : undefined
  sessions?.start()
  return new Meter(
    {
      database,
      rateLimiter,
      clock,
      ...(options.contextCacheTtlMs !== undefined ? { contextCacheTtlMs: options.contextCacheTtlMs } : {}),
      ...(options.contextCacheClock !== undefined ? { contextCacheClock: options.contextCacheClock } : {}),
      ...(options.groupCommit !== undefined ? { groupCommit: options.groupCommit } : {}),
      ...(options.defaultTimezone !== undefined ? { defaultTimezone: options.defaultTimezone } : {}),
      ...(options.operatorCapacity !== undefined ? { operatorCapacity: options.operatorCapacity } : {}),
      ...(options.currency !== undefined ? { currency: options.currency } : {}),
    },
    ownsDatabase,
    sessions,
  )
}

export { METER_DEFAULTS } from "./defaults.js"

export class Meter {
  private readonly database: Database
  private readonly limiter: RateLimiter
  private readonly clock: Clock
  private readonly operatorCapacity: OperatorCapacity | undefined
  /** The operator's currency (ISO 4217). */
  readonly currency: string
  private readonly contexts: ContextCache
  /** Context sweeps running in the background; `close` waits for them. */
  private readonly refreshes = new Set<Promise<void>>()
  private readonly subscriptions: SubscriptionService
  private readonly channelConfigs: ChannelConfigService
  /** Every ledger write of the hot path goes through here: one statement and one commit per batch. */
  private readonly ledger: GroupCommitter<BatchTurn, BatchOutcome>
  /** Which running experiments a turn is in (issue 15); cached like the contexts, with the same bound. */
  private readonly assigner: ExperimentAssigner
  /** People across channels and experiments on channels: link, create, start, stop, results. */
  readonly experiments: ExperimentService

  constructor(
    dependencies: MeterDependencies,
    private readonly ownsDatabase = false,
    /** The session queue's deriver, when this meter opened the database (stopped by {@link close}). */
    private readonly sessions?: SessionDeriveJob,
  ) {
    this.database = dependencies.database
    this.limiter = dependencies.rateLimiter
    this.clock = dependencies.clock
    this.operatorCapacity = checkedOperatorCapacity(dependencies.operatorCapacity)
    const defaultTimezone = dependencies.defaultTimezone ?? METER_DEFAULTS.defaultTimezone
    this.currency = dependencies.currency ?? METER_DEFAULTS.currency
    if (!isCurrencyCode(this.currency))
      throw new ValidationError("currency", `"${this.currency}" is not an ISO 4217 currency code`)
    if (!isValidTimeZone(defaultTimezone))
      throw new ValidationError("defaultTimezone", `unknown IANA timezone "${defaultTimezone}"`)
    const defaultTtlMs = this.database.capabilities.singleProcess
      ? METER_DEFAULTS.contextCacheTtlMsSingleProcess
      : METER_DEFAULTS.contextCacheTtlMsShared
    const cacheClock = dependencies.contextCacheClock
    this.contexts = new ContextCache({
      ttlMs: dependencies.contextCacheTtlMs ?? defaultTtlMs,
      ...(cacheClock ? { now: () => cacheClock.now() } : {}),
    })
    const management = {
      database: this.database,
      clock: this.clock,
      invalidate: (subscriptionId: string) => this.contexts.invalidate(subscriptionId),
    }
    this.subscriptions = new SubscriptionService({ ...management, defaultTimezone })
    this.channelConfigs = new ChannelConfigService(management)
    this.assigner = new ExperimentAssigner(this.database, {
      ttlMs: dependencies.contextCacheTtlMs ?? defaultTtlMs,
      now: cacheClock ? () => cacheClock.now() : () => performance.now(),
    })
    this.experiments = new ExperimentService({
      database: this.database,
      clock: this.clock,
      invalidate: (subscriptionId) => this.assigner.invalidate(subscriptionId),
    })
    const db = this.database.db
    this.ledger = new GroupCommitter((turns) => consumeBatch(db, turns), {
      ...dependencies.groupCommit,
      maxInFlight: Math.min(
        dependencies.groupCommit?.maxInFlight ?? METER_DEFAULTS.groupCommitInFlight,
        this.database.capabilities.maxTransactionsInFlight,
      ),
      // One subscription, one lane: batches in flight together never share a quota counter row.
      laneOf: (turn) => Number.parseInt(turn.subscriptionId.slice(0, 8), 16),
      unknownOutcome: {
        // A lost connection may have lost the reply to a commit. A unique violation can only be a re-run
        // meeting its own first run on a pre-assigned id (keys are claimed with ON CONFLICT DO NOTHING).
        isUnknown: (error) =>
          error instanceof DatabaseUnavailableError || (error as { code?: unknown } | null)?.code === "23505",
        lookup: (turns) => findBatchOutcomes(db, turns),
        unresolved: (error, written) =>
          new DatabaseUnavailableError(
            written === "no"
              ? "The database connection was lost; this turn was not charged. Retry it."
              : "The database connection was lost while this turn was being charged, and whether it was charged is not known yet. Retry it with an idempotency key to be charged at most once.",
            error instanceof DatabaseUnavailableError ? error.retryAfterSeconds : 1,
            written === "no" ? "not_written" : "unknown",
            { cause: error },
          ),
      },
    })
  }

  /**
   * Decides whether a chat turn may run and, if so, charges it and writes it to the ledger before
   * answering. Denials are returned, not thrown; invalid input throws a {@link ValidationError}.
   */
  async validateAndConsumeTokens(input: ConsumeInput, scope?: TenantScope): Promise<Decision> {
    const turn = validate(ConsumeInputSchema, input)
    return this.consume(turn, scope)
  }

  /**
   * Meters one LLM turn end to end: consumes, runs `run` only when the turn is allowed, and settles it with
   * the tokens the result reports (OpenAI `usage.prompt_tokens`/`completion_tokens`, Anthropic
   * `usage.input_tokens`/`output_tokens`, the Vercel AI SDK's `usage`), or `options.usage(result)`. When
   * `run` throws, the turn is settled as an error with 0 tokens (its estimate refunded) and the error is
   * rethrown. A denial is returned as `{ allowed: false, decision }`; `run` never ran.
   * @example
   * const turn = await meter.meteredTurn(input, (decision) => openai.chat.completions.create(request))
   * if (turn.allowed) reply(turn.result.choices[0].message.content)
   * else reply(`Sorry: ${turn.decision.message}`)
   */
  meteredTurn<R>(
    input: ConsumeInput,
    run: (decision: AllowedDecision) => Promise<R>,
    options: MeteredTurnOptions<R> & { scope?: TenantScope } = {},
  ): Promise<MeteredTurn<AllowedDecision, DeniedDecision, R, SettleResult>> {
    return runMeteredTurn<AllowedDecision, DeniedDecision, R, SettleResult>(
      {
        consume: () => this.validateAndConsumeTokens(input, options.scope),
        isAllowed: (decision): decision is AllowedDecision => decision.allowed,
        settle: (decision, outcome) => this.settle(decision.usageId, outcome, options.scope),
      },
      run,
      options,
    )
  }

  private async consume(input: ConsumeInput, scope: TenantScope | undefined): Promise<Decision> {
    const channel = input.channel
    const context = await this.turnContext(input.entityType, input.entityId, channel, scope)
    if (!context) return deny(channel, undefined, subscriptionNotFound())
    // A variant's overrides go on top of the channel's; the plan still decides (resolveChannelSettings).
    const assigned = await this.assigner.assign(context.subscription.id, channel, input.userIdentifier)
    if (!assigned) return this.decide(input, scope, context, context.overrides)
    const decision = await this.decide(
      input,
      scope,
      context,
      withVariantOverrides(context.overrides, assigned.overrides),
    )
    // The decision is this turn's own object: given its experiments, not copied.
    decision.experiments = assigned.experiments
    return decision
  }

  private async decide(
    input: ConsumeInput,
    scope: TenantScope | undefined,
    { subscription }: TurnContext,
    overrides: TurnContext["overrides"],
  ): Promise<Decision> {
    const channel = input.channel
    const settings = resolveChannelSettings(subscription.plan, channel, overrides)
    const messageLength = input.message !== undefined ? messageLengthOf(input.message) : input.messageLength
    const now = new Date(this.clock.now())
    const period = billingPeriodAt(subscription.periodAnchor, now)
    const billed = billedTokens(input.estimatedTokens, settings.multiplierHundredths)
    const turn: BatchTurn = {
      // Assigned before the write, so that a lost reply is resolved by looking the turn up.
      id: uuidV7(now.getTime()),
      subscriptionId: subscription.id,
      channel,
      chatbotId: input.chatbotId ?? null,
      sessionId: input.sessionId ?? null,
      userIdentifier: input.userIdentifier ?? null,
      operationType: input.operationType ?? "chat",
      estimatedTokens: input.estimatedTokens,
      multiplierHundredths: settings.multiplierHundredths,
      messageLength: messageLength ?? null,
      idempotencyKey: input.idempotencyKey ?? null,
      createdAt: now,
      billedTokens: billed,
      periodStart: period.start,
      scope: scope?.subscriptionId ?? null,
      denialReason: null,
      priority: settings.priority,
      model: input.model ?? null,
      sentiment: sentimentOf(input),
    }

    const early = preflight({
      plan: subscription.plan,
      status: subscription.status,
      channel,
      settings,
      messageLength,
      estimatedTokens: input.estimatedTokens,
    })
    if (early) {
      const recorded = await this.ledger.submit({ ...turn, denialReason: early.reason })
      // A keyed turn whose twin was charged is that twin's replay, whatever changed since.
      if (recorded.kind === "duplicate") return this.replayTwin(subscription, turn, settings.priority)
      return deny(channel, subscription.id, early)
    }

    const key = `${subscription.id}:${channel}`
    const shared = sharedWindows(subscription, this.operatorCapacity, settings.priority)
    const sharedKeys = shared.map((w) => w.key)
    const tooLarge = shared.find(
      (w) => w.tokensPerMinute !== null && input.estimatedTokens > w.tokensPerMinute,
    )
    if (tooLarge?.tokensPerMinute != null) {
      const denial = turnTooLargeForCapacity(
        tooLarge.scope,
        input.estimatedTokens,
        tooLarge.tokensPerMinute,
        settings.priority,
      )
      const recorded = await this.ledger.submit({ ...turn, denialReason: denial.reason })
      if (recorded.kind === "duplicate") return this.replayTwin(subscription, turn, settings.priority)
      return deny(channel, subscription.id, denial)
    }
    // A keyed turn looks for its charged twin while the limiter reserves (two round trips overlapped, not
    // one after the other). A retry of a charged turn is its replay whatever the limiter said: the
    // reservation it held for that moment is given back, and the replay is neither limited nor counted.
    const reserving = this.limiter.consume({
      key,
      requestsPerMinute: settings.requestsPerMinute,
      tokensPerMinute: settings.tokensPerMinute,
      tokens: input.estimatedTokens,
      ...(shared.length > 0 ? { shared } : {}),
    })
    if (turn.idempotencyKey) {
      const [twin, reserved] = await Promise.allSettled([
        findChargedTurnByKey(this.database.db, subscription.id, turn.idempotencyKey),
        reserving,
      ])
      if (twin.status === "rejected" || twin.value) {
        if (reserved.status === "fulfilled" && reserved.value.granted)
          await this.limiter.release(key, reserved.value.reservationId, sharedKeys)
        if (twin.status === "rejected") throw twin.reason
        if (twin.value) return this.replay(subscription, twin.value, settings.priority)
      }
    }
    const rate = await reserving
    const rateLimit: RateLimitState = { limit: rate.limit, remaining: rate.remaining, resetMs: rate.resetMs }
    if (!rate.granted) {
      const shedBy = rate.sharedIndex === undefined ? undefined : shared[rate.sharedIndex]
      const denial = shedBy
        ? capacityShed(
            channel,
            shedBy.scope,
            rate.exceeded,
            settings.priority,
            shedBy.percent,
            rate.retryAfterMs,
          )
        : rateLimited(channel, rate.exceeded, rate.retryAfterMs)
      const recorded = await this.ledger.submit({ ...turn, denialReason: denial.reason })
      if (recorded.kind === "duplicate") return this.replayTwin(subscription, turn, settings.priority)
      return { ...deny(channel, subscription.id, denial), rateLimit }
    }

    const outcome = await this.ledger.submit(turn).catch(async (error: unknown) => {
      await this.limiter.release(key, rate.reservationId, sharedKeys)
      throw error
    })
    if (outcome.kind === "allowed") {
      return {
        allowed: true,
        usageId: outcome.usageId,
        subscriptionId: subscription.id,
        channel,
        multiplier: hundredthsToMultiplier(settings.multiplierHundredths),
        rawTokens: input.estimatedTokens,
        billedTokens: billed,
        remainingTokens: Math.max(0, outcome.tokenLimit - outcome.usedTokens),
        tokenLimit: outcome.tokenLimit,
        periodStart: period.start,
        periodEnd: period.end,
        priority: settings.priority,
        replayed: false,
        rateLimit,
      }
    }
    await this.limiter.release(key, rate.reservationId, sharedKeys)
    switch (outcome.kind) {
      case "duplicate":
        return this.replayTwin(subscription, turn, settings.priority)
      case "not_found":
        this.contexts.invalidate(subscription.id)
        return deny(channel, undefined, subscriptionNotFound())
      case "quota_exceeded": {
        if (outcome.reserved) {
          const reserve = {
            percent: subscription.quotaReservePercent,
            minPriority: subscription.quotaReserveMinPriority,
          }
          const mayUse = quotaLimitFor(outcome.tokenLimit, reserve, settings.priority)
          const remaining = Math.max(0, mayUse - outcome.usedTokens)
          const denial = quotaReserved(billed, remaining, settings.priority, reserve.minPriority)
          return { ...deny(channel, subscription.id, denial), rateLimit }
        }
        const remaining = Math.max(0, outcome.tokenLimit - outcome.usedTokens)
        return { ...deny(channel, subscription.id, quotaExceeded(billed, remaining)), rateLimit }
      }
      case "denied":
        throw new OmnimeterError("internal_error", "a charge was answered as a recorded denial")
    }
  }

  /**
   * The turn's subscription and channel overrides: from the context cache, else one database call (under
   * the caller's scope, so row level security decides what it may find). A cached subscription outside
   * the scope is answered as not found, exactly as the database would.
   */
  private async turnContext(
    entityType: string,
    entityId: string,
    channel: Channel,
    scope: TenantScope | undefined,
  ): Promise<TurnContext | undefined> {
    if (scope) requireUuid(scope.subscriptionId)
    let context = this.contexts.get(entityType, entityId, channel)
    this.sweepContexts()
    if (!context) {
      const generation = this.contexts.generation
      const readAt = this.contexts.time
      const contexts = await this.inScope(scope, (db) => findSubscriptionContexts(db, entityType, entityId))
      if (!contexts) return undefined
      this.contexts.set(entityType, entityId, contexts, generation, readAt)
      context = contextOf(contexts, channel)
    }
    if (scope && context.subscription.id !== scope.subscriptionId) return undefined
    return context
  }

  /**
   * When a sweep is due (see ContextCache, "refreshed in the background"), reads every cached entity that
   * served a turn since its last read again, in one query per {@link SWEEP_CHUNK} entities, off the turn's
   * path. Unscoped: it only renews entries a turn already found, and `turnContext` applies the turn's scope
   * to whatever the cache answers. A failed read changes nothing: the entries still expire on time, and the
   * first turn after that reads.
   */
  private sweepContexts(): void {
    const due = this.contexts.claimSweep()
    if (!due) return
    const generation = this.contexts.generation
    const readAt = this.contexts.time
    const chunk =
      this.database.capabilities.maxTransactionsInFlight > 1 ? SWEEP_CHUNK.shared : SWEEP_CHUNK.oneConnection
    const read: Promise<void> = (async () => {
      for (let i = 0; i < due.length; i += chunk) {
        const entities = due.slice(i, i + chunk)
        const found = await findSubscriptionContextsOf(this.database.db, entities)
        for (const { entityType, entityId } of entities) {
          const contexts = found.get(entityContextsKey(entityType, entityId))
          if (contexts) this.contexts.set(entityType, entityId, contexts, generation, readAt)
        }
      }
    })()
      .catch(() => {})
      .finally(() => this.refreshes.delete(read))
    this.refreshes.add(read)
  }

  /** The decision of the charged twin that made the batch answer `duplicate` for this keyed turn. */
  private async replayTwin(
    subscription: Subscription,
    turn: BatchTurn,
    priority: number,
  ): Promise<AllowedDecision> {
    const previous =
      turn.idempotencyKey &&
      (await findChargedTurnByKey(this.database.db, subscription.id, turn.idempotencyKey))
    if (!previous) throw new OmnimeterError("internal_error", "idempotent turn vanished after a key conflict")
    return this.replay(subscription, previous, priority)
  }

  private async replay(
    subscription: Subscription,
    previous: ChargedTurn,
    priority: number,
  ): Promise<AllowedDecision> {
    const period = billingPeriodAt(subscription.periodAnchor, previous.periodStart)
    const used = await usedTokensInPeriod(this.database.db, subscription.id, previous.periodStart)
    return {
      allowed: true,
      usageId: previous.usageId,
      subscriptionId: subscription.id,
      channel: previous.channel,
      multiplier: hundredthsToMultiplier(previous.multiplierHundredths),
      rawTokens: previous.estimatedTokens,
      billedTokens: previous.billedTokens,
      remainingTokens: Math.max(0, subscription.tokenLimit - used),
      tokenLimit: subscription.tokenLimit,
      periodStart: period.start,
      periodEnd: period.end,
      priority,
      replayed: true,
    }
  }

  /**
   * Replaces a turn's estimate with the tokens the LLM really used, refunding or charging the difference
   * atomically. Settling twice throws `usage_already_settled`; an unknown id throws `usage_not_found`.
   */
  async settle(usageId: string, input: SettleInput, scope?: TenantScope): Promise<SettleResult> {
    if (!isUuid(usageId)) throw new ValidationError("usageId", "must be a UUID")
    const settle = validate(SettleInputSchema, input)
    const actualTokens = actualTokensOf(settle)
    const outcome = await this.inScope(scope, (db) =>
      settleTurn(db, {
        usageId,
        actualTokens,
        settledAt: new Date(this.clock.now()),
        outcome: settle.outcome ?? null,
        latencyMs: settle.latencyMs ?? null,
        model: settle.model ?? null,
        inputTokens: settle.inputTokens ?? null,
        outputTokens: settle.outputTokens ?? null,
        currency: this.currency,
      }),
    )
    switch (outcome.kind) {
      case "settled":
        return {
          usageId,
          subscriptionId: outcome.subscriptionId,
          channel: outcome.channel,
          actualTokens,
          previousBilledTokens: outcome.previousBilledTokens,
          billedTokens: outcome.billedTokens,
          adjustment: outcome.billedTokens - outcome.previousBilledTokens,
          remainingTokens: Math.max(0, outcome.tokenLimit - outcome.usedTokens),
          overageTokens: Math.max(0, outcome.usedTokens - outcome.tokenLimit),
          model: outcome.model,
          // Micro-units to the major unit: exact, at most 12 decimals.
          cost: outcome.costMicros === null ? null : formatScaled(parseNumeric(outcome.costMicros, 6), 12),
          currency: this.currency,
        }
      case "already_settled":
        throw new OmnimeterError("usage_already_settled", `Usage ${usageId} is already settled.`, { usageId })
      case "denied":
        throw new OmnimeterError(
          "usage_not_found",
          `Usage ${usageId} was denied; there is nothing to settle.`,
          { usageId },
        )
      case "not_found":
        throw new OmnimeterError("usage_not_found", `No usage ${usageId} exists.`, { usageId })
    }
  }

  /** Creates a subscription; the token limit defaults to the plan's. */
  createSubscription(input: CreateSubscriptionInput): Promise<Subscription> {
    return this.subscriptions.create(input)
  }

  /** The subscription, or a `subscription_not_found` error (also for one outside `scope`). */
  getSubscription(subscriptionId: string, scope?: TenantScope): Promise<Subscription> {
    return this.subscriptions.get(subscriptionId, scope)
  }

  /** Subscriptions in id order, `limit` (1-500) at a time, after the `after` id. */
  listSubscriptions(limit = 100, after?: string): Promise<Subscription[]> {
    return this.subscriptions.list(limit, after)
  }

  /**
   * Changes plan, limit, status or timezone, effective at once. A downgrade disables the channels the new
   * plan lacks (their overrides stay, and apply again if the plan comes back).
   */
  updateSubscription(subscriptionId: string, input: UpdateSubscriptionInput): Promise<Subscription> {
    return this.subscriptions.update(subscriptionId, input)
  }

  /** Quota used and left in the subscription's current billing period. */
  getQuota(subscriptionId: string, scope?: TenantScope): Promise<QuotaStatus> {
    return this.subscriptions.quota(subscriptionId, scope)
  }

  /** Every channel's effective configuration for the subscription. */
  getChannelConfigs(subscriptionId: string, scope?: TenantScope): Promise<ChannelConfig[]> {
    return this.channelConfigs.list(subscriptionId, scope)
  }

  /**
   * Updates some of a channel's settings for one subscription. Enabling a channel the plan lacks throws
   * `channel_not_in_plan` naming the plan that unlocks it.
   */
  updateChannelConfig(
    subscriptionId: string,
    channel: Channel,
    input: ChannelConfigPatch,
    scope?: TenantScope,
  ): Promise<ChannelConfig> {
    return this.channelConfigs.update(subscriptionId, channel, input, scope)
  }

  /** Closes the rate limiter and, when the meter opened it, the database. */
  async close(): Promise<void> {
    await this.ledger.drain()
    await Promise.all([...this.refreshes, this.assigner.settled()])
    await this.limiter.close()
    await this.sessions?.stop()
    if (this.ownsDatabase) await this.database.close()
  }

  private inScope<T>(scope: TenantScope | undefined, fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
    return withScope(this.database, scope, fn)
  }
}

/**
 * Most entities one background sweep query reads (see `Meter.sweepContexts`): fewer on a database with one
 * connection (the embedded one), where turns wait for the sweep's query, so that they wait for a short one.
 */
const SWEEP_CHUNK = { shared: 1000, oneConnection: 25 }

/** A shared window of a turn, with whose it is and the percent its priority may fill. */
interface SharedWindow extends SharedWindowRequest {
  scope: CapacityScope
  percent: number
}

/**
 * The shared windows a turn must fit, at the thresholds of its priority: the subscription's capacity, then
 * the deployment's. Keys: `subscription:<id>` and `operator`.
 */
function sharedWindows(
  subscription: Subscription,
  operator: OperatorCapacity | undefined,
  priority: number,
): SharedWindow[] {
  const windows: SharedWindow[] = []
  const add = (
    scope: CapacityScope,
    key: string,
    capacity: Capacity,
    curve: readonly number[] | null | undefined,
  ) => {
    if (capacity.requestsPerMinute === null && capacity.tokensPerMinute === null) return
    const percent = admitPercent(priority, curve)
    windows.push({
      key,
      scope,
      percent,
      requestsPerMinute:
        capacity.requestsPerMinute === null ? null : admissionThreshold(capacity.requestsPerMinute, percent),
      tokensPerMinute:
        capacity.tokensPerMinute === null ? null : admissionThreshold(capacity.tokensPerMinute, percent),
    })
  }
  add("subscription", `subscription:${subscription.id}`, subscription, subscription.priorityCurve)
  if (operator) add("operator", "operator", operator, operator.priorityCurve)
  return windows
}

function checkedOperatorCapacity(capacity: OperatorCapacity | undefined): OperatorCapacity | undefined {
  if (!capacity) return undefined
  for (const field of ["requestsPerMinute", "tokensPerMinute"] as const) {
    const value = capacity[field]
    if (value !== null && (!Number.isInteger(value) || value < 1))
      throw new ValidationError(`operatorCapacity.${field}`, "must be a positive integer or null")
  }
  const problem = capacity.priorityCurve ? priorityCurveProblem(capacity.priorityCurve) : undefined
  if (problem) throw new ValidationError("operatorCapacity.priorityCurve", problem)
  if (capacity.requestsPerMinute === null && capacity.tokensPerMinute === null) return undefined
  return capacity
}

function deny(channel: Channel, subscriptionId: string | undefined, denial: Denial): DeniedDecision {
  return { allowed: false, channel, ...(subscriptionId ? { subscriptionId } : {}), ...denial }
}

/** One analyser for the process: it holds the AFINN-165 lexicon. */
const afinn = new Sentiment()

/**
 * The score kept for a turn: the caller's own in [-1, 1] (rounded to 4 decimals), else the message's
 * AFINN-165 total normalised to [-1, 1] (core/money.ts `normalizeAfinn`), else none. The text is never kept.
 */
function sentimentOf(input: ConsumeInput): number | null {
  if (input.sentiment !== undefined) return roundTo(input.sentiment, 4)
  if (input.message === undefined || input.message.length === 0) return null
  return normalizeAfinn(afinn.analyze(input.message).score)
}

/**
 * The settled raw tokens: actual_tokens, or the sum of input_tokens and output_tokens when both are given
 * (and then actual_tokens, if sent too, must equal it).
 */
function actualTokensOf(settle: SettleInput): number {
  const { actualTokens, inputTokens, outputTokens } = settle
  if ((inputTokens === undefined) !== (outputTokens === undefined))
    throw new ValidationError(
      inputTokens === undefined ? "input_tokens" : "output_tokens",
      "input_tokens and output_tokens are given together or not at all",
    )
  if (inputTokens !== undefined && outputTokens !== undefined) {
    const sum = inputTokens + outputTokens
    if (actualTokens !== undefined && actualTokens !== sum)
      throw new ValidationError(
        "actual_tokens",
        `is ${actualTokens}, but input_tokens + output_tokens = ${sum}; send them so that they agree, or leave actual_tokens out`,
      )
    if (sum > MAX_TOKENS_PER_TURN)
      throw new ValidationError(
        "actual_tokens",
        `input_tokens + output_tokens must be at most ${MAX_TOKENS_PER_TURN}`,
      )
    return sum
  }
  if (actualTokens === undefined)
    throw new ValidationError("actual_tokens", "is required without input_tokens and output_tokens")
  return actualTokens
}
