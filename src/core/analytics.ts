/**
 * The analytics formulas, each defined once, exactly, so that every endpoint and the dashboard agree.
 *
 * Rounding is half away from zero ("half-up" for the non-negative quantities analytics mostly shows). Ratios
 * of whole counts are rounded from the exact fraction, in integer arithmetic, so 1 token over 200 messages is
 * 0.01 and never 0.00 because 1/200 has no exact binary form. Other numbers are rounded from their shortest
 * decimal form, the one JavaScript prints.
 *
 * Counts (tokens, messages) must be finite and non-negative; a negative count is a bug upstream and throws a
 * RangeError rather than producing a plausible-looking figure.
 */

/** Per-channel values, keyed by channel name, in the caller's order. */
type Keyed<T> = Record<string, T>

/** Moves the decimal point of `value` by `places` without binary rounding, via its shortest decimal form. */
function shiftDecimal(value: number, places: number): number {
  const [mantissa, exponent = "0"] = String(value).split("e")
  return Number(`${mantissa}e${Number(exponent) + places}`)
}

function roundTo(value: number, decimals: number): number {
  if (!Number.isFinite(value)) return value
  const magnitude = shiftDecimal(Math.round(shiftDecimal(Math.abs(value), decimals)), -decimals)
  return value < 0 && magnitude !== 0 ? -magnitude : magnitude
}

/**
 * Rounds to 2 decimals, half away from zero, deciding from the number's shortest decimal form so that values
 * like 1.005 (stored as 1.00499999999999989...) round the way they read. Never returns -0.
 * @example round2(1.005) // 1.01
 * @example round2(0.1 + 0.2) // 0.3
 */
export function round2(value: number): number {
  return roundTo(value, 2)
}

/**
 * Rounds to 1 decimal, half away from zero, like {@link round2}.
 * @example round1(0.25) // 0.3
 */
export function round1(value: number): number {
  return roundTo(value, 1)
}

/**
 * `product(numerator) / product(denominator)` rounded to `decimals`, half away from zero. Exact, in BigInt
 * arithmetic, when every factor is a safe integer; otherwise rounded from the floating-point quotient.
 */
function roundQuotient(
  numerator: readonly number[],
  denominator: readonly number[],
  decimals: number,
): number {
  if ([...numerator, ...denominator].every(Number.isSafeInteger)) {
    const scale = 10n ** BigInt(decimals)
    const top = numerator.reduce((product, factor) => product * BigInt(factor), scale)
    const bottom = denominator.reduce((product, factor) => product * BigInt(factor), 1n)
    if (bottom === 0n) throw new RangeError("division by zero")
    const negative = top < 0n !== bottom < 0n
    const a = top < 0n ? -top : top
    const b = bottom < 0n ? -bottom : bottom
    const units = (2n * a + b) / (2n * b)
    const magnitude = Number(units) / Number(scale)
    return negative && magnitude !== 0 ? -magnitude : magnitude
  }
  const product = (factors: readonly number[]) => factors.reduce((total, factor) => total * factor, 1)
  return roundTo(product(numerator) / product(denominator), decimals)
}

function requireCount(value: number, name: string): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite non-negative number, got ${value}`)
  }
}

/**
 * Average tokens per message: `tokensUsed / messageCount`, rounded to 2 decimals; 0 when there are no
 * messages.
 * @example avgTokensPerMessage(1000, 3) // 333.33
 */
export function avgTokensPerMessage(tokensUsed: number, messageCount: number): number {
  requireCount(tokensUsed, "tokensUsed")
  requireCount(messageCount, "messageCount")
  if (messageCount === 0) return 0
  return roundQuotient([tokensUsed], [messageCount], 2)
}

/**
 * Each channel's share of the total tokens: `100 * tokens / total`, rounded to 2 decimals; every share is 0
 * when the total is 0. Shares are rounded independently, so they may sum to 99.99 or 100.01.
 * @example usageShares({ website: 1, whatsapp: 2 }) // { website: 33.33, whatsapp: 66.67 }
 */
export function usageShares(tokensByChannel: Readonly<Keyed<number>>): Keyed<number> {
  const entries = Object.entries(tokensByChannel)
  let total = 0
  for (const [channel, tokens] of entries) {
    requireCount(tokens, `tokens for ${channel}`)
    total += tokens
  }
  const shares: Keyed<number> = {}
  for (const [channel, tokens] of entries) {
    shares[channel] = total === 0 ? 0 : roundQuotient([tokens, 100], [total], 2)
  }
  return shares
}

/**
 * Percent change from `previous` to `current`: `100 * (current - previous) / previous`, rounded to 2
 * decimals; null when `previous` is 0, where no percentage describes the change. Meant for non-negative
 * quantities such as token totals.
 * @example growthPercent(150, 120) // 25
 * @example growthPercent(10, 0) // null
 */
export function growthPercent(current: number, previous: number): number | null {
  if (!Number.isFinite(current) || !Number.isFinite(previous)) {
    throw new RangeError(`growth needs finite values, got ${current} and ${previous}`)
  }
  if (previous === 0) return null
  return roundQuotient([current - previous, 100], [previous], 2)
}

/**
 * The local hour (0-23) with the most tokens; ties go to the earliest hour; null when no hour has any.
 * @example peakHour([0, 0, 5, 9, 9, ...Array(19).fill(0)]) // 3
 */
export function peakHour(hourlyTokens: readonly number[]): number | null {
  if (hourlyTokens.length !== 24) {
    throw new RangeError(`hourlyTokens must have 24 entries, got ${hourlyTokens.length}`)
  }
  let peak: number | null = null
  let most = 0
  for (const [hour, tokens] of hourlyTokens.entries()) {
    requireCount(tokens, `tokens at hour ${hour}`)
    if (tokens > most) {
      most = tokens
      peak = hour
    }
  }
  return peak
}

/** Which way daily usage is heading. */
export type TrendDirection = "increasing" | "decreasing" | "stable"

/** A trend and the two numbers it was decided from. */
export interface Trend {
  direction: TrendDirection
  /** Least-squares slope of the daily series, in tokens per day; 0 with fewer than 2 days. */
  slope: number
  /**
   * The fitted change over the whole series relative to the average day: `slope * (n - 1) / mean`
   * (0.25 means the fitted line rose by a quarter of an average day). 0 when the mean is 0.
   */
  relativeChange: number
}

// The fitted line must move by more than this fraction of an average day to count as a trend. The exact
// comparison in directionOf encodes the same 1/10; change both together.
const TREND_THRESHOLD = 0.1

/**
 * The trend of a daily token series (one entry per day, oldest first, days without usage included as 0).
 *
 * With x = 0..n-1 and y the daily tokens, `slope` is the least-squares slope `sum((x - x̄)(y - ȳ)) /
 * sum((x - x̄)^2)` and `relativeChange = slope * (n - 1) / ȳ`. The direction is "increasing" when
 * `relativeChange > 0.10`, "decreasing" when it is below -0.10, and "stable" otherwise, and always "stable"
 * with fewer than 3 days or no usage at all. For whole token counts the comparison with 0.10 is exact, so a
 * change of exactly 10% is stable whatever floating point would say.
 * @example trendDirection([100, 120, 140]) // { direction: "increasing", slope: 20, relativeChange: 0.3333333333333333 }
 */
export function trendDirection(dailyTokens: readonly number[]): Trend {
  const n = dailyTokens.length
  let sumY = 0
  let sumXY = 0
  dailyTokens.forEach((tokens, x) => {
    requireCount(tokens, `tokens on day ${x}`)
    sumY += tokens
    sumXY += x * tokens
  })
  if (n < 2 || sumY === 0) return { direction: "stable", slope: 0, relativeChange: 0 }

  // Closed forms with x = 0..n-1: sum((x - x̄)^2) = n(n² - 1)/12 and sum((x - x̄)(y - ȳ)) = sumXY - x̄·sumY,
  // so 2·Sxy = 2·sumXY - (n - 1)·sumY is a whole number for whole counts, and
  // relativeChange = slope·(n - 1)/ȳ = 6·(2·Sxy) / ((n + 1)·sumY).
  const twiceSxy = 2 * sumXY - (n - 1) * sumY
  const slope = (6 * twiceSxy) / (n * (n * n - 1))
  const relativeChange = (6 * twiceSxy) / ((n + 1) * sumY)
  return { direction: n < 3 ? "stable" : directionOf(dailyTokens, relativeChange), slope, relativeChange }
}

function directionOf(dailyTokens: readonly number[], relativeChange: number): TrendDirection {
  if (!dailyTokens.every(Number.isSafeInteger)) {
    if (relativeChange > TREND_THRESHOLD) return "increasing"
    return relativeChange < -TREND_THRESHOLD ? "decreasing" : "stable"
  }
  // relativeChange > 1/10  <=>  60·(2·Sxy) > (n + 1)·sumY, compared without rounding.
  const n = BigInt(dailyTokens.length)
  let sumY = 0n
  let sumXY = 0n
  dailyTokens.forEach((tokens, x) => {
    sumY += BigInt(tokens)
    sumXY += BigInt(x) * BigInt(tokens)
  })
  const scaledChange = 60n * (2n * sumXY - (n - 1n) * sumY)
  const scaledThreshold = (n + 1n) * sumY
  if (scaledChange > scaledThreshold) return "increasing"
  return scaledChange < -scaledThreshold ? "decreasing" : "stable"
}

/** What {@link efficiencyScores} needs per channel. */
export interface ChannelUsage {
  messageCount: number
  tokensUsed: number
}

/**
 * Messages served per 1,000 tokens: `1000 * messageCount / tokensUsed`, rounded to 2 decimals; null when no
 * tokens were used.
 * @example messagesPerThousandTokens(3, 1200) // 2.5
 */
export function messagesPerThousandTokens(messageCount: number, tokensUsed: number): number | null {
  requireCount(messageCount, "messageCount")
  requireCount(tokensUsed, "tokensUsed")
  if (tokensUsed === 0) return null
  return roundQuotient([messageCount, 1000], [tokensUsed], 2)
}

/**
 * Efficiency scores from 0 to 100. A channel's efficiency is its messages per 1,000 tokens; the score is
 * `100 * efficiency / best efficiency`, rounded to 1 decimal, so the most efficient channel scores 100.
 * Channels with no tokens score null; when no channel with tokens has any messages, they all score 0.
 * Scores come from the exact counts, not from rounded efficiencies.
 * @example efficiencyScores({ website: { messageCount: 10, tokensUsed: 1000 }, api: { messageCount: 5, tokensUsed: 1000 } })
 * // { website: 100, api: 50 }
 */
export function efficiencyScores(channels: Readonly<Keyed<ChannelUsage>>): Keyed<number | null> {
  const entries = Object.entries(channels)
  let best: ChannelUsage | undefined
  for (const [channel, usage] of entries) {
    requireCount(usage.messageCount, `messageCount for ${channel}`)
    requireCount(usage.tokensUsed, `tokensUsed for ${channel}`)
    if (usage.tokensUsed === 0) continue
    // a/b > c/d  <=>  a·d > c·b for positive b and d.
    if (best === undefined || usage.messageCount * best.tokensUsed > best.messageCount * usage.tokensUsed) {
      best = usage
    }
  }
  const scores: Keyed<number | null> = {}
  for (const [channel, usage] of entries) {
    if (usage.tokensUsed === 0 || best === undefined) scores[channel] = null
    else if (best.messageCount === 0) scores[channel] = 0
    else {
      scores[channel] = roundQuotient(
        [usage.messageCount, best.tokensUsed, 100],
        [usage.tokensUsed, best.messageCount],
        1,
      )
    }
  }
  return scores
}

/**
 * Value earned per 1,000 billed tokens in the currency's major unit, 6 decimals:
 * `1000 * valueMicros / 10^6 / tokensUsed`; null when no tokens were used.
 * @example valuePerThousandTokens(2_500_000, 500) // 5 (2.50 over 500 tokens)
 */
export function valuePerThousandTokens(valueMicros: number, tokensUsed: number): number | null {
  requireCount(valueMicros, "valueMicros")
  requireCount(tokensUsed, "tokensUsed")
  if (tokensUsed === 0) return null
  return roundQuotient([valueMicros], [tokensUsed, 1000], 6)
}

/**
 * Value-based efficiency scores from 0 to 100: a channel's value per 1,000 billed tokens, scaled so that
 * the channel earning the most per token scores 100 (1 decimal, from the exact micro-units). Null without
 * tokens; 0 for every channel when none earned anything.
 * @example valueEfficiencyScores({ website: { valueMicros: 9_000_000, tokensUsed: 1000 }, api: { valueMicros: 3_000_000, tokensUsed: 2000 } })
 * // { website: 100, api: 16.7 }
 */
export function valueEfficiencyScores(
  channels: Readonly<Keyed<{ valueMicros: number; tokensUsed: number }>>,
): Keyed<number | null> {
  // The same ratio-to-the-best as messages per token, with value in place of messages.
  return efficiencyScores(
    Object.fromEntries(
      Object.entries(channels).map(([channel, c]) => [
        channel,
        { messageCount: c.valueMicros, tokensUsed: c.tokensUsed },
      ]),
    ),
  )
}

/** A word for an efficiency score. */
export type PerformanceRating = "Excellent" | "Good" | "Average" | "Poor"

/**
 * Names a score: "Excellent" from 85, "Good" from 65, "Average" from 40, "Poor" below; null for no score.
 * @example performanceRating(85) // "Excellent"
 * @example performanceRating(64.9) // "Average"
 */
export function performanceRating(score: number | null): PerformanceRating | null {
  if (score === null) return null
  if (score >= 85) return "Excellent"
  if (score >= 65) return "Good"
  if (score >= 40) return "Average"
  return "Poor"
}

/**
 * The best and worst channel for one metric. Null (and NaN) values are ignored; ties go to the channel that
 * comes first in `values`; null when no channel has a value. With one channel it is both best and worst.
 * @example bestAndWorst({ website: 3, whatsapp: 7, api: null }) // { best: "whatsapp", worst: "website" }
 * @example bestAndWorst({ website: 3, whatsapp: 7 }, false) // { best: "website", worst: "whatsapp" }
 */
export function bestAndWorst(
  values: Readonly<Keyed<number | null>>,
  higherIsBetter = true,
): { best: string; worst: string } | null {
  let best: [string, number] | undefined
  let worst: [string, number] | undefined
  for (const [channel, value] of Object.entries(values)) {
    if (value === null || Number.isNaN(value)) continue
    const score = higherIsBetter ? value : -value
    if (best === undefined || score > best[1]) best = [channel, score]
    if (worst === undefined || score < worst[1]) worst = [channel, score]
  }
  return best === undefined || worst === undefined ? null : { best: best[0], worst: worst[0] }
}
