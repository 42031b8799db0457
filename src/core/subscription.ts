import type { SubscriptionStatus } from "./decision.js"
import type { Plan } from "./plans.js"

/** A subscription as the library and the API see it. */
export interface Subscription {
  id: string
  entityId: string
  entityType: string
  plan: Plan
  /** Billed tokens allowed per billing period. */
  tokenLimit: number
  status: SubscriptionStatus
  /** IANA timezone used by analytics. */
  timezone: string
  /** Billing periods are whole months counted from this instant. */
  periodAnchor: Date
  /** Requests per minute shared by all the subscription's channels; null: no shared limit. */
  requestsPerMinute: number | null
  /** Estimated (raw) tokens per minute shared by all the subscription's channels; null: no shared limit. */
  tokensPerMinute: number | null
  /** Percent of the shared capacity each priority 1..10 may fill; null: the default curve. */
  priorityCurve: number[] | null
  /** The last part of the period's quota kept for high priorities, in percent (0: none). */
  quotaReservePercent: number
  /** The priority a channel needs to use the quota reserve. */
  quotaReserveMinPriority: number
  createdAt: Date
  updatedAt: Date
}

/**
 * Whether `zone` is an IANA timezone this runtime knows.
 * @example isValidTimeZone("Asia/Kathmandu") // true
 */
export function isValidTimeZone(zone: string): boolean {
  if (zone.length === 0 || zone.length > 64) return false
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return true
  } catch {
    return false
  }
}
