/**
 * Exact money and the outcome metrics' formulas: decimals as scaled BigInts (never floating point), the
 * ISO 4217 check, the sentiment scale, nearest-rank percentiles. Pure: no I/O.
 *
 * Units. A price is per million tokens, in the operator's currency, with at most 6 decimals. A turn's cost
 * is `input_tokens x input price + output_tokens x output price`: tokens times a price per million tokens
 * is an amount in micro-units (10^-6 of the currency's major unit), exact with at most 6 fractional digits.
 * Answers give money as decimal strings in the currency's major unit, exact (up to 12 decimals for costs).
 */

/** Decimal places of a price per million tokens, of an outcome's value, and of a cost in micro-units. */
export const MONEY_DECIMALS = 6

/** The currency codes ICU knows as current ISO 4217 codes (Node's Intl data). */
const CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf("currency"))

/**
 * Whether `code` is a current ISO 4217 currency code (upper case, as the standard writes them).
 * @example isCurrencyCode("EUR") // true; isCurrencyCode("EUX") // false
 */
export function isCurrencyCode(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && CURRENCIES.has(code)
}

const DECIMAL = /^(\d{1,12})(?:\.(\d+))?$/

/**
 * A non-negative decimal (string, or a JSON number written in plain notation) as an integer of
 * 10^-scale units, exactly; undefined when it is not such a decimal or has more than `scale` decimals.
 * @example toScaled("2.5", 6) // 2500000n
 */
export function toScaled(value: string | number, scale: number): bigint | undefined {
  const text = typeof value === "number" ? numberText(value) : value
  if (text === undefined) return undefined
  const match = DECIMAL.exec(text)
  if (!match) return undefined
  const fraction = match[2] ?? ""
  if (fraction.length > scale) return undefined
  return BigInt(match[1] ?? "0") * 10n ** BigInt(scale) + BigInt(fraction.padEnd(scale, "0") || "0")
}

/** A JSON number's shortest round-trip text, or undefined for what is not a finite plain decimal. */
function numberText(value: number): string | undefined {
  if (!Number.isFinite(value) || value < 0) return undefined
  const text = String(value)
  return /e/i.test(text) ? undefined : text
}

/**
 * A numeric column's text ("12.340000", "-0.5") as an integer of 10^-scale units, rounding half away from
 * zero when it has more decimals than `scale`.
 * @example parseNumeric("1.0000005", 6) // 1000001n
 */
export function parseNumeric(text: string, scale: number): bigint {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text.trim())
  if (!match) throw new Error(`not a decimal: ${text}`)
  const negative = match[1] === "-"
  const fraction = match[3] ?? ""
  const digits = BigInt((match[2] ?? "0") + fraction || "0")
  const magnitude = divideRounded(digits * 10n ** BigInt(scale), 10n ** BigInt(fraction.length))
  return negative ? -magnitude : magnitude
}

/**
 * `numerator / denominator` rounded half away from zero (the denominator is positive).
 * @example divideRounded(5n, 2n) // 3n; divideRounded(-5n, 2n) // -3n
 */
export function divideRounded(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError("denominator must be positive")
  const negative = numerator < 0n
  const magnitude = negative ? -numerator : numerator
  const quotient = (magnitude * 2n + denominator) / (denominator * 2n)
  return negative ? -quotient : quotient
}

/**
 * An integer of 10^-scale units as a decimal string, trailing zeros dropped ("2.5", "0", "0.00000105").
 * @example formatScaled(2500000n, 6) // "2.5"
 */
export function formatScaled(value: bigint, scale: number): string {
  const negative = value < 0n
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0")
  const whole = digits.slice(0, digits.length - scale)
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "")
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`
}

/**
 * `numerator / denominator` as a number rounded half away from zero to `places` decimals; null when the
 * denominator is 0.
 * @example ratio(1n, 3n, 4) // 0.3333
 */
export function ratio(numerator: bigint, denominator: bigint, places: number): number | null {
  if (denominator === 0n) return null
  const sign = denominator < 0n ? -1n : 1n
  return Number(
    formatScaled(divideRounded(numerator * sign * 10n ** BigInt(places), denominator * sign), places),
  )
}

/** The five sentiment buckets, from [-1, -0.6) to (0.6, 1]. */
export const SENTIMENT_BUCKETS = [
  "very_negative",
  "negative",
  "neutral",
  "positive",
  "very_positive",
] as const
export type SentimentBucket = (typeof SENTIMENT_BUCKETS)[number]

/**
 * The bucket of a score in [-1, 1]: very_negative below -0.6, negative below -0.2, neutral up to 0.2
 * inclusive, positive up to 0.6 inclusive, very_positive above.
 * @example sentimentBucket(0.2) // "neutral"
 */
export function sentimentBucket(score: number): SentimentBucket {
  if (score < -0.6) return "very_negative"
  if (score < -0.2) return "negative"
  if (score <= 0.2) return "neutral"
  if (score <= 0.6) return "positive"
  return "very_positive"
}

/**
 * An AFINN-165 total (the sum of the message's word scores, each -5..5) mapped to [-1, 1] with VADER's
 * normalisation `x / sqrt(x^2 + 15)`, rounded to 4 decimals: one mildly positive word (+2) gives 0.4588,
 * "love" and "great" (+6) 0.8402, no scored word 0.
 * @example normalizeAfinn(-3) // -0.6124
 */
export function normalizeAfinn(total: number): number {
  return roundTo(total / Math.sqrt(total * total + 15), 4)
}

/** Half away from zero to `places` decimals, through the decimal text (no binary drift at .5). */
export function roundTo(value: number, places: number): number {
  const scaled = value * 10 ** places
  const rounded = Math.sign(scaled) * Math.round(Math.abs(scaled) + 1e-9)
  return rounded / 10 ** places + 0
}

/**
 * Nearest-rank percentile: the smallest value v of the sample with at least p of the values <= v, that is
 * the ceil(p x n)-th smallest (PostgreSQL's percentile_disc). Exact (a value that occurred), no interpolation.
 * @example nearestRank([10, 20, 30, 40], 0.5) // 20
 */
export function nearestRank(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return sorted[rank - 1] ?? null
}
