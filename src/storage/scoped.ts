/**
 * One transaction on one subscription, as a service method needs it: narrowed to the caller's tenant when a
 * subscription key calls (row level security applies), as the trusted service otherwise, and only after the
 * subscription is found there. A subscription that does not exist and one outside the caller's scope are
 * the same `subscription_not_found`: no existence leak.
 */
import type { Kysely } from "kysely"
import { OmnimeterError } from "../core/errors.js"
import type { Subscription } from "../core/subscription.js"
import type { Database } from "./database.js"
import type { DB } from "./schema.js"
import { findSubscriptionById } from "./subscriptions.js"

/**
 * Runs `fn` in one transaction with the subscription, scoped to `scope` when given.
 * @example
 * await withVisibleSubscription(database, { subscriptionId }, subscriptionId, (db, subscription) =>
 *   listAlerts(db, subscription.id),
 * )
 */
export function withVisibleSubscription<T>(
  database: Database,
  scope: { subscriptionId: string } | undefined,
  subscriptionId: string,
  fn: (db: Kysely<DB>, subscription: Subscription) => Promise<T>,
): Promise<T> {
  const run = async (db: Kysely<DB>) => {
    const subscription = await findSubscriptionById(db, subscriptionId)
    if (!subscription)
      throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
    return fn(db, subscription)
  }
  return scope ? database.withTenant(scope.subscriptionId, run) : database.db.transaction().execute(run)
}
