/**
 * Exact billing arithmetic. Multipliers have at most two decimals and are carried as integer hundredths,
 * so `billed = ceil(raw * multiplier)` is integer arithmetic: 3 tokens at 1.10 bill 4, never 5.
 */

/** The largest token count one turn may carry; keeps `raw * hundredths` far inside exact integer range. */
export const MAX_TOKENS_PER_TURN = 10_000_000

/**
 * Billed tokens for `rawTokens` at a multiplier of `multiplierHundredths / 100`, rounded up.
 * @example billedTokens(3, 110) // 4
 */
export function billedTokens(rawTokens: number, multiplierHundredths: number): number {
  if (!Number.isSafeInteger(rawTokens) || rawTokens < 0)
    throw new RangeError(`rawTokens must be a non-negative integer, got ${rawTokens}`)
  if (!Number.isSafeInteger(multiplierHundredths) || multiplierHundredths < 0) {
    throw new RangeError(`multiplierHundredths must be a non-negative integer, got ${multiplierHundredths}`)
  }
  const product = rawTokens * multiplierHundredths
  if (!Number.isSafeInteger(product)) throw new RangeError("token count too large to bill exactly")
  return Math.floor((product + 99) / 100)
}

/**
 * Parses a multiplier given as a number or decimal string with at most two decimals into hundredths.
 * Returns undefined when the value has more precision than that or is not a finite non-negative number.
 * @example multiplierToHundredths(1.1) // 110
 */
export function multiplierToHundredths(value: number | string): number | undefined {
  const text = typeof value === "number" ? (Number.isFinite(value) ? String(value) : "") : value.trim()
  const match = /^(\d{1,6})(?:\.(\d{1,2}))?$/.exec(text)
  if (!match) return undefined
  const whole = Number(match[1])
  const fraction = Number((match[2] ?? "").padEnd(2, "0"))
  return whole * 100 + fraction
}

/**
 * Hundredths back to the number shown in APIs (1.2 for 120). Exact for two decimals.
 * @example hundredthsToMultiplier(115) // 1.15
 */
export function hundredthsToMultiplier(hundredths: number): number {
  return Number((hundredths / 100).toFixed(2))
}

/** Hundredths as the fixed two-decimal string stored in the database (`numeric(6,2)`). */
export function hundredthsToDecimalString(hundredths: number): string {
  return `${Math.trunc(hundredths / 100)}.${String(hundredths % 100).padStart(2, "0")}`
}
