/**
 * The alerting maths, pure: which quota thresholds a counter move crosses, retry backoff for webhook
 * deliveries, usage spikes against a documented baseline, and channel health from settled turns. The
 * detectors in src/alerts feed these functions rows they read; nothing here does I/O.
 */

export const ALERT_TYPES = [
  "quota.threshold_reached",
  "rate_limit.exceeded",
  "usage.spike_detected",
  "usage.spike_resolved",
  "channel.health_degraded",
  "channel.health_recovered",
  "capacity.shed",
] as const
export type AlertType = (typeof ALERT_TYPES)[number]

/** What a webhook endpoint may subscribe to: the alert types; test events go to the endpoint asked. */
export const WEBHOOK_TEST_TYPE = "webhook.test"

/** Fractions of the period's token limit that fire quota.threshold_reached, when a subscription sets none. */
export const DEFAULT_QUOTA_THRESHOLDS: readonly number[] = Object.freeze([0.5, 0.8, 0.95, 1])

/**
 * The token count at which a threshold is reached: `ceil(fraction * limit)`, the same rounding the
 * database trigger uses.
 * @example thresholdMark(0.8, 1000) // 800
 */
export function thresholdMark(fraction: number, tokenLimit: number): number {
  return Math.ceil(fraction * tokenLimit)
}

/**
 * The thresholds a counter move from `before` to `after` used tokens crosses (reaches from below), in
 * ascending order. A move down crosses nothing.
 * @example thresholdsCrossed(400, 820, 1000, [0.5, 0.8, 0.95, 1]) // [0.5, 0.8]
 */
export function thresholdsCrossed(
  before: number,
  after: number,
  tokenLimit: number,
  thresholds: readonly number[] = DEFAULT_QUOTA_THRESHOLDS,
): number[] {
  if (tokenLimit <= 0 || after <= before) return []
  return [...thresholds]
    .sort((a, b) => a - b)
    .filter((t) => before < thresholdMark(t, tokenLimit) && after >= thresholdMark(t, tokenLimit))
}

/**
 * Normalises a subscription's threshold list: each in (0, 1], at most three decimals, no duplicates,
 * 1 to 10 of them, sorted. Returns the problem as a string when the list is unusable.
 * @example normaliseThresholds([0.9, 0.5]) // [0.5, 0.9]
 */
export function normaliseThresholds(values: readonly number[]): number[] | string {
  if (values.length < 1 || values.length > 10) return "must hold 1 to 10 fractions"
  for (const value of values) {
    if (!(value > 0 && value <= 1)) return "each fraction must be above 0 and at most 1"
    if (Math.round(value * 1000) !== value * 1000) return "each fraction has at most three decimals"
  }
  const sorted = [...new Set(values)].sort((a, b) => a - b)
  return sorted.length === values.length ? sorted : "fractions must not repeat"
}

export interface BackoffOptions {
  /** Delay before the second attempt, before jitter. */
  baseMs: number
  /** No delay grows past this. */
  maxMs: number
}

/**
 * How long to wait after failed attempt number `attempt` (1-based): exponential (`base * 2^(attempt-1)`,
 * capped at `max`) with "equal jitter" — half fixed, half random — so retries of many endpoints that
 * failed together spread out, yet never come back sooner than half the nominal delay.
 * @example retryDelayMs(3, { baseMs: 1000, maxMs: 60000 }, () => 0) // 2000
 * @example retryDelayMs(3, { baseMs: 1000, maxMs: 60000 }, () => 0.999) // 3996
 */
export function retryDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30))
  const nominal = Math.min(options.maxMs, options.baseMs * 2 ** exponent)
  return Math.floor(nominal / 2 + random() * (nominal / 2))
}

/**
 * The median of `values` (mean of the middle two for an even count); null for none.
 * @example median([5, 1, 3]) // 3
 */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? 0
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? 0) + upper) / 2
}

/**
 * The nearest-rank percentile `p` (0-100] of `values`: the smallest value with at least p% of the values at
 * or below it. Null for none.
 * @example percentile([100, 200, 300, 400], 95) // 400
 * @example percentile([100, 200, 300, 400], 50) // 200
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] ?? null
}

/** One channel's activity in a one-hour window. */
export interface HourVolume {
  messages: number
  tokens: number
}

export interface SpikeRule {
  /** A spike is at least this many times the baseline, in messages or in tokens. */
  factor: number
  /** An open spike resolves once both messages and tokens are below this many times the baseline. */
  resolveFactor: number
  /** The minimum-volume guard: fewer messages than this in the hour is never a spike. */
  minMessages: number
}

export const DEFAULT_SPIKE_RULE: Readonly<SpikeRule> = Object.freeze({
  factor: 3,
  resolveFactor: 1.5,
  minMessages: 20,
})

export type BaselineMethod = "same_hour_of_week_median" | "trailing_24h_median"

export interface Baseline extends HourVolume {
  method: BaselineMethod
}

/**
 * A channel's usual level for the hour just ended, documented in the README:
 * - the median of the same hour of the week over the previous four weeks, when at least two of those weeks
 *   fall after the channel's first turn (weekly seasonality: Monday 9:00 is compared with Mondays 9:00);
 * - otherwise the median of the 24 hourly windows before it, when the channel is at least a day old;
 * - otherwise none: too little history to call anything a spike.
 * `sameHourOfWeek` holds the eligible weeks' windows (most recent first); `trailing` the previous 24 hours'.
 */
export function spikeBaseline(
  sameHourOfWeek: readonly HourVolume[],
  trailing: readonly HourVolume[],
): Baseline | null {
  const pick = (rows: readonly HourVolume[], method: BaselineMethod): Baseline => ({
    messages: median(rows.map((r) => r.messages)) ?? 0,
    tokens: median(rows.map((r) => r.tokens)) ?? 0,
    method,
  })
  if (sameHourOfWeek.length >= 2) return pick(sameHourOfWeek, "same_hour_of_week_median")
  if (trailing.length >= 24) return pick(trailing, "trailing_24h_median")
  return null
}

export type SpikeTransition = "detected" | "resolved" | null

/**
 * Whether the last hour opens or closes a spike. A baseline of zero counts as one, so a dormant channel
 * waking up with more than `minMessages` messages is a spike, and 3 messages never are.
 * @example evaluateSpike({ messages: 90, tokens: 9000 }, { messages: 20, tokens: 2000, method: "same_hour_of_week_median" }, false) // "detected"
 */
export function evaluateSpike(
  current: HourVolume,
  baseline: Baseline,
  open: boolean,
  rule: SpikeRule = DEFAULT_SPIKE_RULE,
): SpikeTransition {
  const messagesBase = Math.max(1, baseline.messages)
  const tokensBase = Math.max(1, baseline.tokens)
  if (!open) {
    if (current.messages < rule.minMessages) return null
    const spiking =
      current.messages >= rule.factor * messagesBase || current.tokens >= rule.factor * tokensBase
    return spiking ? "detected" : null
  }
  const calm =
    current.messages < rule.minMessages ||
    (current.messages < rule.resolveFactor * messagesBase && current.tokens < rule.resolveFactor * tokensBase)
  return calm ? "resolved" : null
}

/** Settled turns of one channel over the health window. */
export interface HealthSample {
  /** Turns settled with an outcome. */
  turns: number
  errors: number
  /** Reported latencies, in milliseconds. */
  latenciesMs: readonly number[]
}

export interface HealthRule {
  /** Fewer settled turns than this in the window says nothing about health. */
  minTurns: number
  errorRate: number
  p95LatencyMs: number
  /** Recovery needs both below these (hysteresis, so a channel on the edge does not flap). */
  recoverErrorRate: number
  recoverP95LatencyMs: number
}

export const DEFAULT_HEALTH_RULE: Readonly<HealthRule> = Object.freeze({
  minTurns: 20,
  errorRate: 0.1,
  p95LatencyMs: 10_000,
  recoverErrorRate: 0.05,
  recoverP95LatencyMs: 8_000,
})

export interface HealthFigures {
  turns: number
  errorRate: number
  p50LatencyMs: number | null
  p95LatencyMs: number | null
}

/** The figures a health decision rests on. Latency percentiles need `minTurns` latencies, else null. */
export function healthFigures(sample: HealthSample, rule: HealthRule = DEFAULT_HEALTH_RULE): HealthFigures {
  const enoughLatencies = sample.latenciesMs.length >= rule.minTurns
  return {
    turns: sample.turns,
    errorRate: sample.turns === 0 ? 0 : sample.errors / sample.turns,
    p50LatencyMs: enoughLatencies ? percentile(sample.latenciesMs, 50) : null,
    p95LatencyMs: enoughLatencies ? percentile(sample.latenciesMs, 95) : null,
  }
}

export type HealthTransition = "degraded" | "recovered" | null

/**
 * Whether a channel's health changes. Degraded: at least `minTurns` settled turns and an error rate or a
 * p95 latency at or above its threshold. Recovered (only when degraded): at least `minTurns` turns with
 * both below the lower recovery thresholds. Too few turns changes nothing either way.
 * @example evaluateHealth({ turns: 40, errors: 8, latenciesMs: [] }, false) // "degraded"
 */
export function evaluateHealth(
  sample: HealthSample,
  degraded: boolean,
  rule: HealthRule = DEFAULT_HEALTH_RULE,
): HealthTransition {
  if (sample.turns < rule.minTurns) return null
  const figures = healthFigures(sample, rule)
  const p95 = figures.p95LatencyMs
  if (!degraded) {
    const bad = figures.errorRate >= rule.errorRate || (p95 !== null && p95 >= rule.p95LatencyMs)
    return bad ? "degraded" : null
  }
  const good = figures.errorRate < rule.recoverErrorRate && (p95 === null || p95 < rule.recoverP95LatencyMs)
  return good ? "recovered" : null
}

/**
 * The whole minutes that ended at or before `now` within the last `lookbackMinutes`, as start instants
 * (ms), oldest first: the minutes the rate-limit detector may still report.
 * @example completedMinutes(Date.parse("2026-01-01T00:03:30Z"), 2) // [00:01, 00:02]
 */
export function completedMinutes(now: number, lookbackMinutes: number): number[] {
  const current = Math.floor(now / 60_000) * 60_000
  return Array.from({ length: lookbackMinutes }, (_, i) => current - (lookbackMinutes - i) * 60_000)
}

/**
 * When a channel's shedding in one minute is worth an alert: at least `minShedTurns` of its turns were
 * refused to keep shared capacity or the quota reserve for higher priorities (capacity_shed,
 * quota_reserved), and they were at least `minShedRate` of all its turns that minute. A few sheds at the
 * edge of a busy window are the curve working; a rising share of them means the channel's demand has
 * outgrown what its priority may use.
 */
export interface ShedRule {
  minShedTurns: number
  minShedRate: number
}

export const DEFAULT_SHED_RULE: ShedRule = Object.freeze({ minShedTurns: 5, minShedRate: 0.1 })

/**
 * Whether a minute's shedding raises `capacity.shed`.
 * @example shedAlertDue(12, 60) // true: 12 shed, 20% of 60 turns
 */
export function shedAlertDue(shedTurns: number, turns: number, rule: ShedRule = DEFAULT_SHED_RULE): boolean {
  return shedTurns >= rule.minShedTurns && turns > 0 && shedTurns / turns >= rule.minShedRate
}
