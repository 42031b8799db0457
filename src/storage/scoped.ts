/**
 * The one way a service runs database work in a caller's scope. With a {@link TenantScope} (a subscription
 * key calls) the work runs in a transaction narrowed to that tenant, so row level security applies;
 * without one, as the trusted service.
 */
import type { Kysely } from "kysely"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { isUuid } from "../core/ids.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import type { Database } from "./database.js"
import type { DB } from "./schema.js"
import { findSubscriptionById } from "./subscriptions.js"

/**
 * Runs `fn` in `scope`. Unscoped work runs on the service's view, in one transaction only when
 * `transaction` is set: the hot path's reads need none, and on the embedded database (one connection) a
 * transaction would hold up every other statement.
 * @example
 * await withScope(database, { subscriptionId }, (db) => findSubscriptionById(db, subscriptionId))
 */
export function withScope<T>(
  database: Database,
  scope: TenantScope | undefined,
  fn: (db: Kysely<DB>) => Promise<T>,
  options: { transaction?: boolean } = {},
): Promise<T> {
  if (scope) {
    // The tenant is set as a setting in the transaction; only a subscription id may be one.
    if (!isUuid(scope.subscriptionId)) throw new ValidationError("subscription_id", "must be a UUID")
    return database.withTenant(scope.subscriptionId, fn)
  }
  return options.transaction ? database.db.transaction().execute(fn) : fn(database.db)
}

/**
 * Runs `fn` in one transaction with the subscription, scoped to `scope` when given, and only after the
 * subscription is found there. A subscription that does not exist and one outside the caller's scope are
 * the same `subscription_not_found`: no existence leak.
 * @example
 * await withVisibleSubscription(database, { subscriptionId }, subscriptionId, (db, subscription) =>
 *   listAlerts(db, subscription.id),
 * )
 */
export function withVisibleSubscription<T>(
  database: Database,
  scope: TenantScope | undefined,
  subscriptionId: string,
  fn: (db: Kysely<DB>, subscription: Subscription) => Promise<T>,
): Promise<T> {
  return withScope(
    database,
    scope,
    async (db) => {
      const subscription = await findSubscriptionById(db, subscriptionId)
      if (!subscription)
        throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
      return fn(db, subscription)
    },
    { transaction: true },
  )
}
