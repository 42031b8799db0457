import { describe, expect, it } from "vitest"
import { assignVariant, hash53, personKey, withVariantOverrides } from "./experiments.js"
import { chiSquarePValue } from "./statistics.js"

describe("experiment assignment", () => {
  it("splits 100,000 simulated people by the weights, within the chi-square bound", () => {
    for (const weights of [
      [1, 1],
      [20, 30, 50],
      [0.1, 0.9],
    ]) {
      const counts = weights.map(() => 0)
      for (let i = 0; i < 100_000; i++) {
        const index = assignVariant("0190a0b0-0000-7000-8000-000000000001", `i:whatsapp:+1555${i}`, weights)
        counts[index] = (counts[index] ?? 0) + 1
      }
      const total = weights.reduce((a, b) => a + b, 0)
      const chiSquare = counts.reduce((sum, count, i) => {
        const expected = (100_000 * (weights[i] ?? 0)) / total
        return sum + (count - expected) ** 2 / expected
      }, 0)
      // A fair split fails this one time in a thousand.
      expect(chiSquarePValue(chiSquare, weights.length - 1), `weights ${weights}`).toBeGreaterThan(0.001)
    }
  })

  it("is a function of the experiment and the person only: the same answer every time", () => {
    const weights = [1, 1, 1]
    const first = Array.from({ length: 1000 }, (_, i) => assignVariant("exp-a", `p:${i}`, weights))
    const again = Array.from({ length: 1000 }, (_, i) => assignVariant("exp-a", `p:${i}`, weights))
    expect(again).toEqual(first)
    // Another experiment splits the same people independently.
    const other = Array.from({ length: 1000 }, (_, i) => assignVariant("exp-b", `p:${i}`, weights))
    const same = other.filter((variant, i) => variant === first[i]).length
    expect(same).toBeGreaterThan(250)
    expect(same).toBeLessThan(420)
  })

  it("never assigns a variant of weight 0", () => {
    for (let i = 0; i < 5000; i++) expect(assignVariant("e", `p:${i}`, [0, 3, 0])).toBe(1)
  })

  it("is bryc's cyrb53: the reference values of the published algorithm", () => {
    // github.com/bryc/code, jshash/experimental/cyrb53.js, the README's examples.
    expect(hash53("a")).toBe(7929297801672961)
    expect(hash53("b")).toBe(8684336938537663)
    expect(hash53("revenge")).toBe(4051478007546757)
    expect(hash53("revenue")).toBe(8309097637345594)
  })

  it("keeps these people in these variants: an edit that reassigns anyone fails here", () => {
    // Golden values: a changed hash, separator, key or bucket rule would move running experiments' people.
    const golden: [string, string, number, number, number][] = [
      // experiment, person, hash53(experiment NUL person), variant at [1, 1], variant at [20, 30, 50]
      ["0190a0b0-0000-7000-8000-000000000001", "p:crm-42", 987870586194286, 0, 0],
      ["0190a0b0-0000-7000-8000-000000000001", "i:whatsapp:+15550100", 3750149004506997, 0, 1],
      ["0190a0b0-0000-7000-8000-000000000001", "i:website:cookie-9f", 5794971710064096, 1, 2],
      ["0190a0b0-0000-7000-8000-000000000002", "p:crm-42", 6399154776676847, 1, 2],
      ["0190a0b0-0000-7000-8000-000000000002", "i:website:cookie-9f", 1288222961521858, 0, 0],
    ]
    for (const [experiment, person, hash, even, thirds] of golden) {
      expect(hash53(`${experiment}\u0000${person}`), person).toBe(hash)
      expect(assignVariant(experiment, person, [1, 1]), person).toBe(even)
      expect(assignVariant(experiment, person, [20, 30, 50]), person).toBe(thirds)
    }
  })

  it("hashes to integers below 2^53", () => {
    for (const text of ["", "a", "é😀", "x".repeat(10_000)]) {
      const value = hash53(text)
      expect(Number.isSafeInteger(value) && value >= 0).toBe(true)
    }
  })

  it("keys a linked person by the person, an unlinked identifier by its channel and itself", () => {
    expect(personKey("crm-1", "whatsapp", "+1")).toBe("p:crm-1")
    expect(personKey(null, "whatsapp", "+1")).toBe("i:whatsapp:+1")
    expect(personKey(null, "website", "+1")).not.toBe(personKey(null, "whatsapp", "+1"))
  })

  it("puts a variant's overrides on top of the channel's, leaving the rest", () => {
    expect(withVariantOverrides({ enabled: false, priority: 3 }, { multiplierHundredths: 200 })).toEqual({
      enabled: false,
      priority: 3,
      multiplierHundredths: 200,
    })
  })
})
