/** The dashboard charts' axis arithmetic (pure, in web/src/charts/scale.ts). */
import { describe, expect, it } from "vitest"
import { labelIndexes, niceMax, ticks } from "../../web/src/charts/scale.js"

describe("chart axes", () => {
  it("rounds a maximum up to a whole number of round steps", () => {
    expect([0, 1, 3, 7, 12, 2400, 230_000, 260_000, 4_100_000].map((v) => niceMax(v))).toEqual([
      1, 1, 3, 8, 15, 3000, 300_000, 300_000, 6_000_000,
    ])
  })

  it("puts every tick on a round number: 1, 2 or 5 times a power of ten apart, never 62.5K", () => {
    expect(ticks(250_000)).toEqual([0, 50_000, 100_000, 150_000, 200_000, 250_000])
    expect(ticks(niceMax(187_500))).toEqual([0, 50_000, 100_000, 150_000, 200_000])
    for (const value of [1, 3, 7, 12, 99, 2400, 62_500, 187_500, 260_000, 4_100_000]) {
      const axis = ticks(niceMax(value))
      expect(axis[0]).toBe(0)
      expect(axis.at(-1)).toBeGreaterThanOrEqual(value)
      const step = (axis[1] ?? 0) - (axis[0] ?? 0)
      const mantissa = step / 10 ** Math.floor(Math.log10(step))
      expect([1, 2, 5], `${value}: ${axis}`).toContain(Math.round(mantissa * 1e9) / 1e9)
      expect(axis.length, `${value}: ${axis}`).toBeLessThanOrEqual(7)
    }
  })

  it("labels every point when they fit, otherwise evenly spaced ones without gaps in the rhythm", () => {
    expect(labelIndexes(5, 8)).toEqual([0, 1, 2, 3, 4])
    // 24 hours at 12 labels: every second hour, 22:00 included.
    expect(labelIndexes(24, 12)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22])
    for (const [length, wanted] of [
      [30, 8],
      [31, 8],
      [336, 8],
      [24, 12],
      [24, 8],
      [14, 3],
    ] as const) {
      const picked = labelIndexes(length, wanted)
      expect(picked[0]).toBe(0)
      const step = Math.ceil(length / wanted)
      const regular = picked.filter((index) => index % step === 0)
      expect(regular.length).toBe(Math.ceil(length / step))
      const gaps = picked.slice(1).map((index, i) => index - (picked[i] ?? 0))
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(Math.ceil(step * 0.75))
    }
  })
})
