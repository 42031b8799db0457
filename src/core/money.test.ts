import { describe, expect, it } from "vitest"
import {
  divideRounded,
  formatScaled,
  isCurrencyCode,
  nearestRank,
  normalizeAfinn,
  parseNumeric,
  ratio,
  sentimentBucket,
  toScaled,
} from "./money.js"

describe("exact money", () => {
  it("reads decimals with at most the scale's decimals, exactly, and refuses the rest", () => {
    expect(toScaled("2.5", 6)).toBe(2_500_000n)
    expect(toScaled(0.15, 6)).toBe(150_000n)
    expect(toScaled("0.000001", 6)).toBe(1n)
    expect(toScaled("0.0000001", 6)).toBeUndefined()
    expect(toScaled("-1", 6)).toBeUndefined()
    expect(toScaled(-1, 6)).toBeUndefined()
    expect(toScaled(1e21, 6)).toBeUndefined()
    expect(toScaled("1e3", 6)).toBeUndefined()
    expect(toScaled(" 1", 6)).toBeUndefined()
  })

  it("rounds half away from zero", () => {
    expect(divideRounded(5n, 2n)).toBe(3n)
    expect(divideRounded(-5n, 2n)).toBe(-3n)
    expect(divideRounded(4n, 3n)).toBe(1n)
    expect(parseNumeric("1.0000005", 6)).toBe(1_000_001n)
    expect(parseNumeric("-0.5", 0)).toBe(-1n)
    expect(ratio(1n, 3n, 4)).toBe(0.3333)
    expect(ratio(1n, 0n, 4)).toBeNull()
  })

  it("writes amounts without trailing zeros", () => {
    expect(formatScaled(2_500_000n, 6)).toBe("2.5")
    expect(formatScaled(0n, 12)).toBe("0")
    expect(formatScaled(1_050_000n, 12)).toBe("0.00000105")
    expect(formatScaled(-15n, 1)).toBe("-1.5")
  })

  it("knows ISO 4217 codes", () => {
    expect(isCurrencyCode("EUR")).toBe(true)
    expect(isCurrencyCode("eur")).toBe(false)
    expect(isCurrencyCode("EUX")).toBe(false)
  })
})

describe("sentiment and percentiles", () => {
  it("maps an AFINN total into [-1, 1] and buckets scores at their documented edges", () => {
    expect(normalizeAfinn(0)).toBe(0)
    expect(normalizeAfinn(6)).toBe(0.8402)
    expect(normalizeAfinn(-3)).toBe(-0.6124)
    expect(Math.abs(normalizeAfinn(1000))).toBeLessThanOrEqual(1)
    expect([-0.61, -0.6, -0.2, 0.2, 0.21, 0.6, 0.61].map(sentimentBucket)).toEqual([
      "very_negative",
      "negative",
      "neutral",
      "neutral",
      "positive",
      "positive",
      "very_positive",
    ])
  })

  it("takes the ceil(p x n)-th smallest value", () => {
    expect(nearestRank([10, 20, 30, 40], 0.5)).toBe(20)
    expect(nearestRank([10, 20, 30, 40], 0.99)).toBe(40)
    expect(nearestRank([7], 0.5)).toBe(7)
    expect(nearestRank([], 0.5)).toBeNull()
  })
})
