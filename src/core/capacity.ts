/**
 * Priority-aware admission: what share of a shared capacity, and of a period's quota, a channel's priority
 * may use. Pure arithmetic, no I/O; the limiters (src/limits) and the charging function
 * (storage/functions/consume_batch.sql) apply it atomically.
 *
 * Design note. Goals, in order: (1) monotone: a higher priority is never shed where a lower one is admitted,
 * at any utilisation; (2) exact: the shared capacity is never exceeded in any rolling 60 s window, and billed
 * tokens never exceed the quota; (3) one rule, written once, that an operator can read and change.
 *
 * - **The priority curve** gives each priority 1..10 the percent of a shared capacity (requests or tokens
 *   per minute) that turns of that priority may fill. A turn is admitted while the window's use plus the
 *   turn stays within `floor(capacity * percent / 100)` for its priority: low priorities stop early, and
 *   the top of the window is kept for high ones. The default curve is linear from 50% at priority 1 to 100%
 *   at priority 10, rounded to whole percents: 50, 56, 61, 67, 72, 78, 83, 89, 94, 100. A curve must be
 *   non-decreasing, which is exactly what makes admission monotone in priority.
 * - **The quota reserve** keeps the last `quotaReservePercent` (0-50) of a period's token limit for turns
 *   of priority `quotaReserveMinPriority` or more: lower priorities are charged only while the period's
 *   billed tokens stay within `limit - floor(limit * percent / 100)`.
 */

/** Lowest and highest channel priority. */
export const PRIORITY_MIN = 1
export const PRIORITY_MAX = 10

/** Percent of a shared capacity each priority (index 0 = priority 1) may fill, by default. */
export const DEFAULT_PRIORITY_CURVE: readonly number[] = Object.freeze(
  Array.from({ length: PRIORITY_MAX }, (_, i) => Math.round(50 + (50 * i) / (PRIORITY_MAX - 1))),
)

/** Bounds of a subscription's quota reserve, in percent of its token limit. */
export const QUOTA_RESERVE_PERCENT_MAX = 50
/** Priority a turn needs to use the quota reserve when the subscription does not say. */
export const DEFAULT_QUOTA_RESERVE_MIN_PRIORITY = 8

/** A shared per-minute capacity: either figure may be absent (no limit of that kind). */
export interface Capacity {
  requestsPerMinute: number | null
  tokensPerMinute: number | null
}

/**
 * Why a priority curve is not acceptable, or undefined when it is: ten whole percents from 0 to 100,
 * non-decreasing from priority 1 to priority 10.
 * @example priorityCurveProblem([50, 40, 60, 70, 80, 90, 95, 96, 97, 100]) // "priority 2 (40%) is below priority 1 (50%) ..."
 */
export function priorityCurveProblem(curve: readonly number[]): string | undefined {
  if (curve.length !== PRIORITY_MAX) return `must list ${PRIORITY_MAX} percents, one per priority 1 to 10`
  for (const [i, percent] of curve.entries()) {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      return `priority ${i + 1}: ${percent} is not a whole percent from 0 to 100`
    const previous = curve[i - 1]
    if (previous !== undefined && percent < previous)
      return `priority ${i + 1} (${percent}%) is below priority ${i} (${previous}%); a higher priority may never be given less capacity than a lower one`
  }
  return undefined
}

/** The percent of a shared capacity a turn of `priority` may fill under `curve` (the default when null). */
export function admitPercent(priority: number, curve?: readonly number[] | null): number {
  const p = Math.min(PRIORITY_MAX, Math.max(PRIORITY_MIN, Math.round(priority)))
  return (curve ?? DEFAULT_PRIORITY_CURVE)[p - 1] ?? 100
}

/**
 * How much of `capacity` a turn admitted at `percent` may bring the window's use up to, rounded down so that
 * the top priority's threshold is the capacity itself.
 * @example admissionThreshold(1000, 56) // 560
 */
export function admissionThreshold(capacity: number, percent: number): number {
  return Math.floor((capacity * percent) / 100)
}

export interface AdmissionInput {
  /** The shared capacity (requests or tokens per minute). */
  capacity: number
  /** What the current window already holds. */
  used: number
  /** What this turn adds (1 request, or its estimated tokens). */
  amount: number
  priority: number
  curve?: readonly number[] | null
}

/**
 * The admission rule the limiters apply in their atomic step: admitted while the window's use plus this
 * turn stays within the threshold of the turn's priority. Monotone in priority for any non-decreasing curve.
 * @example admits({ capacity: 1000, used: 600, amount: 50, priority: 2 }) // false: priority 2 may fill 56%
 */
export function admits(input: AdmissionInput): boolean {
  return (
    input.used + input.amount <= admissionThreshold(input.capacity, admitPercent(input.priority, input.curve))
  )
}

/**
 * The highest priority that `admits` would shed at this utilisation (0 when none is), for messages and
 * metrics: every priority at or below it is being shed.
 */
export function shedUpToPriority(input: Omit<AdmissionInput, "priority">): number {
  let shed = 0
  for (let priority = PRIORITY_MIN; priority <= PRIORITY_MAX; priority += 1)
    if (!admits({ ...input, priority })) shed = priority
  return shed
}

/** A subscription's quota reserve. */
export interface QuotaReserve {
  /** Percent of the token limit kept back, 0 (none) to 50. */
  percent: number
  /** Turns of at least this priority may use the reserve. */
  minPriority: number
}

/**
 * The part of a period's token limit that a turn of `priority` may fill: the whole limit at or above the
 * reserve's priority, else the limit less the reserve (`floor(limit * percent / 100)`).
 * @example quotaLimitFor(10_000, { percent: 10, minPriority: 8 }, 5) // 9000
 */
export function quotaLimitFor(tokenLimit: number, reserve: QuotaReserve, priority: number): number {
  if (reserve.percent <= 0 || priority >= reserve.minPriority) return tokenLimit
  return tokenLimit - Math.floor((tokenLimit * reserve.percent) / 100)
}
