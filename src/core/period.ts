/**
 * Monthly billing periods anchored at the subscription's start.
 *
 * Period k begins k calendar months after the anchor, at the anchor's UTC wall-clock time. When the anchor's
 * day of month does not exist in a month (the 31st in April), the period starts on that month's last day,
 * and the following period returns to the anchor's day: the Stripe convention, so a January 31 anchor gives
 * Feb 28 (or 29), Mar 31, Apr 30, ...
 */

export interface BillingPeriod {
  /** Inclusive start. */
  start: Date
  /** Exclusive end: the next period's start. */
  end: Date
}

function daysInMonth(year: number, monthIndex: number): number {
  return new Date(Date.UTC(year, monthIndex + 1, 0)).getUTCDate()
}

/** The start of the period `k` months after `anchor` (k may be negative). */
export function periodStartAt(anchor: Date, k: number): Date {
  const monthIndex = anchor.getUTCMonth() + k
  const year = anchor.getUTCFullYear() + Math.floor(monthIndex / 12)
  const month = ((monthIndex % 12) + 12) % 12
  const day = Math.min(anchor.getUTCDate(), daysInMonth(year, month))
  return new Date(
    Date.UTC(
      year,
      month,
      day,
      anchor.getUTCHours(),
      anchor.getUTCMinutes(),
      anchor.getUTCSeconds(),
      anchor.getUTCMilliseconds(),
    ),
  )
}

/**
 * The billing period containing `at`.
 * @example billingPeriodAt(new Date("2026-01-31T00:00:00Z"), new Date("2026-03-01T00:00:00Z"))
 * // { start: 2026-02-28T00:00:00Z, end: 2026-03-31T00:00:00Z }
 */
export function billingPeriodAt(anchor: Date, at: Date): BillingPeriod {
  let k = (at.getUTCFullYear() - anchor.getUTCFullYear()) * 12 + (at.getUTCMonth() - anchor.getUTCMonth())
  while (periodStartAt(anchor, k).getTime() > at.getTime()) k -= 1
  while (periodStartAt(anchor, k + 1).getTime() <= at.getTime()) k += 1
  return { start: periodStartAt(anchor, k), end: periodStartAt(anchor, k + 1) }
}
