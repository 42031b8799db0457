import { describe, expect, it } from "vitest"
import {
  billedTokens,
  hundredthsToDecimalString,
  hundredthsToMultiplier,
  multiplierToHundredths,
} from "./billing.js"

/** An independent oracle: exact rational arithmetic with BigInt. */
function oracle(raw: number, hundredths: number): number {
  const product = BigInt(raw) * BigInt(hundredths)
  const q = product / 100n
  return Number(product % 100n === 0n ? q : q + 1n)
}

describe("billed tokens", () => {
  it("bills 3 tokens at 1.10 as 4, not 5 as floating point would", () => {
    expect(3 * 1.1).toBeGreaterThan(3.3)
    expect(billedTokens(3, 110)).toBe(4)
  })

  it("rounds a fractional bill up and leaves a whole one alone", () => {
    expect(billedTokens(10, 115)).toBe(12)
    expect(billedTokens(100, 120)).toBe(120)
    expect(billedTokens(1, 90)).toBe(1)
    expect(billedTokens(0, 120)).toBe(0)
  })

  it("agrees with exact rational arithmetic on every multiplier from 0.01 to 10.00", () => {
    const raws = [1, 2, 3, 7, 10, 33, 99, 101, 997, 12_345, 9_999_999]
    for (let h = 1; h <= 1000; h += 1)
      for (const raw of raws) expect(billedTokens(raw, h)).toBe(oracle(raw, h))
  })

  it("refuses negative or fractional token counts", () => {
    expect(() => billedTokens(-1, 100)).toThrow(RangeError)
    expect(() => billedTokens(1.5, 100)).toThrow(RangeError)
  })
})

describe("multipliers", () => {
  it("parses at most two decimals into hundredths", () => {
    expect(multiplierToHundredths(1.2)).toBe(120)
    expect(multiplierToHundredths("0.9")).toBe(90)
    expect(multiplierToHundredths(1.15)).toBe(115)
    expect(multiplierToHundredths("10.00")).toBe(1000)
    expect(multiplierToHundredths(2)).toBe(200)
  })

  it("rejects more precision than two decimals, negatives and non-numbers", () => {
    expect(multiplierToHundredths(1.234)).toBeUndefined()
    expect(multiplierToHundredths(-1)).toBeUndefined()
    expect(multiplierToHundredths("abc")).toBeUndefined()
    expect(multiplierToHundredths(Number.NaN)).toBeUndefined()
  })

  it("round-trips hundredths to the API number and the database decimal", () => {
    for (let h = 1; h <= 1000; h += 1) {
      expect(multiplierToHundredths(hundredthsToMultiplier(h))).toBe(h)
      expect(multiplierToHundredths(hundredthsToDecimalString(h))).toBe(h)
    }
    expect(hundredthsToDecimalString(105)).toBe("1.05")
  })
})
