/**
 * Subscription management: create, read, list, update, and the current period's quota. The meter's hot
 * path reads subscriptions through its context cache; every change here invalidates that cache.
 */
import type { Kysely } from "kysely"
import { priorityCurveProblem } from "../core/capacity.js"
import type { Clock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { isUuid } from "../core/ids.js"
import { billingPeriodAt } from "../core/period.js"
import { PLAN_DEFINITIONS } from "../core/plans.js"
import { isValidTimeZone, type Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { validate } from "../core/validate.js"
import type { Database } from "../storage/database.js"
import { usedTokensInPeriod } from "../storage/ledger.js"
import type { DB } from "../storage/schema.js"
import { withScope } from "../storage/scoped.js"
import {
  type AdmissionSettings,
  findSubscriptionById,
  insertSubscription,
  listSubscriptions,
  updateSubscription,
} from "../storage/subscriptions.js"
import type { QuotaStatus } from "./decisions.js"
import {
  type CreateSubscriptionInput,
  CreateSubscriptionSchema,
  type UpdateSubscriptionInput,
  UpdateSubscriptionSchema,
} from "./inputs.js"

/** What the subscription and channel-configuration services share with the meter. */
export interface ManagementDependencies {
  database: Database
  clock: Clock
  /** Called after a change is committed, so that no turn keeps deciding with the old settings. */
  invalidate: (subscriptionId: string) => void
}

export function requireUuid(subscriptionId: string): void {
  if (!isUuid(subscriptionId)) throw new ValidationError("subscription_id", "must be a UUID")
}

export function subscriptionNotFoundError(subscriptionId: string): OmnimeterError {
  return new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`, {
    subscriptionId,
  })
}

/** The subscription, or `subscription_not_found` (also for one that `db`'s tenant may not see). */
export async function requireSubscription(db: Kysely<DB>, subscriptionId: string): Promise<Subscription> {
  requireUuid(subscriptionId)
  const subscription = await findSubscriptionById(db, subscriptionId)
  if (!subscription) throw subscriptionNotFoundError(subscriptionId)
  return subscription
}

/** A priority curve must never give a higher priority less capacity than a lower one. */
function requireMonotoneCurve(curve: readonly number[] | null | undefined): void {
  if (!curve) return
  const problem = priorityCurveProblem(curve)
  if (problem) throw new ValidationError("priority_curve", problem)
}

/** The admission settings given (undefined: unchanged; null: cleared), as the storage layer takes them. */
function admissionSettings(input: CreateSubscriptionInput | UpdateSubscriptionInput): AdmissionSettings {
  return {
    ...(input.requestsPerMinute !== undefined ? { requestsPerMinute: input.requestsPerMinute } : {}),
    ...(input.tokensPerMinute !== undefined ? { tokensPerMinute: input.tokensPerMinute } : {}),
    ...(input.priorityCurve !== undefined ? { priorityCurve: input.priorityCurve } : {}),
    ...(input.quotaReservePercent !== undefined ? { quotaReservePercent: input.quotaReservePercent } : {}),
    ...(input.quotaReserveMinPriority !== undefined
      ? { quotaReserveMinPriority: input.quotaReserveMinPriority }
      : {}),
  }
}

export class SubscriptionService {
  constructor(
    private readonly deps: ManagementDependencies & {
      /** IANA timezone of subscriptions created without one. */
      defaultTimezone: string
    },
  ) {}

  /** Creates a subscription; the token limit defaults to the plan's. */
  async create(input: CreateSubscriptionInput): Promise<Subscription> {
    const create = validate(CreateSubscriptionSchema, input)
    requireMonotoneCurve(create.priorityCurve)
    const timezone = create.timezone ?? this.deps.defaultTimezone
    if (!isValidTimeZone(timezone))
      throw new ValidationError("timezone", `unknown IANA timezone "${timezone}"`)
    return insertSubscription(this.deps.database.db, {
      entityId: create.entityId,
      entityType: create.entityType,
      plan: create.plan,
      tokenLimit: create.tokenLimit ?? PLAN_DEFINITIONS[create.plan].defaultTokenLimit,
      timezone,
      periodAnchor: create.periodStart ? new Date(create.periodStart) : new Date(this.deps.clock.now()),
      status: create.status ?? "active",
      ...admissionSettings(create),
    })
  }

  /** The subscription, or a `subscription_not_found` error (also for one outside `scope`). */
  async get(subscriptionId: string, scope?: TenantScope): Promise<Subscription> {
    return withScope(this.deps.database, scope, (db) => requireSubscription(db, subscriptionId))
  }

  /** Subscriptions in id order, `limit` (1-500) at a time, after the `after` id. */
  async list(limit = 100, after?: string): Promise<Subscription[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 500)
      throw new ValidationError("limit", "must be 1 to 500")
    if (after !== undefined) requireUuid(after)
    return listSubscriptions(this.deps.database.db, limit, after)
  }

  /**
   * Changes plan, limit, status or timezone, effective at once. A downgrade disables the channels the new
   * plan lacks (their overrides stay, and apply again if the plan comes back).
   */
  async update(subscriptionId: string, input: UpdateSubscriptionInput): Promise<Subscription> {
    const patch = validate(UpdateSubscriptionSchema, input)
    requireMonotoneCurve(patch.priorityCurve)
    if (patch.timezone !== undefined && !isValidTimeZone(patch.timezone)) {
      throw new ValidationError("timezone", `unknown IANA timezone "${patch.timezone}"`)
    }
    requireUuid(subscriptionId)
    const updated = await updateSubscription(
      this.deps.database.db,
      subscriptionId,
      { ...patch, ...admissionSettings(patch) },
      new Date(this.deps.clock.now()),
    )
    this.deps.invalidate(subscriptionId)
    if (!updated) throw subscriptionNotFoundError(subscriptionId)
    return updated
  }

  /** Quota used and left in the subscription's current billing period. */
  async quota(subscriptionId: string, scope?: TenantScope): Promise<QuotaStatus> {
    return withScope(this.deps.database, scope, async (db) => {
      const subscription = await requireSubscription(db, subscriptionId)
      const period = billingPeriodAt(subscription.periodAnchor, new Date(this.deps.clock.now()))
      const used = await usedTokensInPeriod(db, subscription.id, period.start)
      return {
        subscriptionId,
        periodStart: period.start,
        periodEnd: period.end,
        tokenLimit: subscription.tokenLimit,
        usedTokens: used,
        remainingTokens: Math.max(0, subscription.tokenLimit - used),
      }
    })
  }
}
