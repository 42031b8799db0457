/** The dashboard charts' axis arithmetic (pure, in web/src/charts/scale.ts). */
import { describe, expect, it } from "vitest"
import { labelIndexes, niceMax, ticks } from "../../web/src/charts/scale.js"

describe("chart axes", () => {
  it("rounds a maximum up to 1, 2, 2.5 or 5 times a power of ten", () => {
    expect([0, 1, 3, 7, 12, 2400, 260_000, 4_100_000].map(niceMax)).toEqual([
      1, 1, 5, 10, 20, 2500, 500_000, 5_000_000,
    ])
  })

  it("spreads ticks evenly from zero to the maximum", () => {
    expect(ticks(500_000)).toEqual([0, 125_000, 250_000, 375_000, 500_000])
  })

  it("labels every point when they fit, otherwise evenly spaced ones always ending on the last", () => {
    expect(labelIndexes(5, 8)).toEqual([0, 1, 2, 3, 4])
    for (const [length, wanted] of [
      [30, 8],
      [31, 8],
      [336, 8],
      [24, 12],
      [14, 3],
    ] as const) {
      const picked = labelIndexes(length, wanted)
      expect(picked[0]).toBe(0)
      expect(picked[picked.length - 1]).toBe(length - 1)
      expect(picked.length).toBeLessThanOrEqual(wanted + 1)
      const gaps = picked.slice(1).map((index, i) => index - (picked[i] ?? 0))
      const step = Math.ceil(length / wanted)
      // No two labels closer than three quarters of a step: they would collide on the axis.
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(Math.ceil(step * 0.75))
    }
  })
})
