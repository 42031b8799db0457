import { describe, expect, it } from "vitest"
import {
  DAY_MS,
  fitBestHoltWinters,
  fitHoltWinters,
  forecastDays,
  holtWintersForecast,
  mape,
  quotaExhaustionAt,
  seasonalNaive,
} from "./forecast.js"

const weekly = [100, 120, 130, 125, 110, 60, 50]
const seasonal = (days: number, slope = 0) =>
  Array.from({ length: days }, (_, t) => (weekly[t % 7] ?? 0) + slope * t)

describe("Holt-Winters", () => {
  it("forecasts a pure weekly pattern exactly, whatever the parameters", () => {
    for (const alpha of [0.1, 0.7]) {
      const fit = fitHoltWinters(seasonal(28), { alpha, beta: 0.1, gamma: 0.3, phi: 0.98 })
      const next = holtWintersForecast(fit, 10)
      for (const [i, value] of next.entries()) expect(value).toBeCloseTo(weekly[(28 + i) % 7] ?? 0, 9)
      expect(fit.sse).toBeCloseTo(0, 9)
    }
  })

  it("follows a trend under the season within a few percent", () => {
    const series = seasonal(70, 2)
    const history = series.slice(0, 63)
    const actual = series.slice(63)
    const predicted = holtWintersForecast(fitBestHoltWinters(history), 7)
    expect(mape(actual, predicted)).toBeLessThan(3)
    // The naive last-week forecast misses the trend's 14 tokens a week.
    expect(mape(actual, seasonalNaive(history, 7))).toBeGreaterThan(mape(actual, predicted) ?? 0)
  })

  it("refuses fewer than two seasons", () => {
    expect(() => fitHoltWinters(seasonal(13), { alpha: 0.2, beta: 0.1, gamma: 0.1, phi: 1 })).toThrow(
      RangeError,
    )
  })
})

describe("forecastDays", () => {
  it("uses Holt-Winters from two weeks of history, with an interval around the total", () => {
    const noisy = seasonal(42).map((v, i) => v + ((i * 37) % 11) - 5)
    const result = forecastDays(noisy, 7)
    expect(result.method).toBe("holt_winters")
    expect(result.daily).toHaveLength(7)
    expect(result.total).toBeCloseTo(
      result.daily.reduce((a, b) => a + b, 0),
      9,
    )
    expect(result.lower).toBeLessThan(result.total)
    expect(result.upper).toBeGreaterThan(result.total)
    const longer = forecastDays(noisy, 21)
    expect(longer.upper - longer.lower).toBeGreaterThan(result.upper - result.lower)
  })

  it("has a zero-width interval on a series it fits perfectly", () => {
    const result = forecastDays(seasonal(28), 7)
    expect(result.upper - result.lower).toBeCloseTo(0, 6)
    expect(result.total).toBeCloseTo(
      weekly.reduce((a, b) => a + b, 0),
      6,
    )
  })

  it("falls back to the mean of the last week on under two weeks of history", () => {
    const result = forecastDays([10, 10, 10, 40, 40, 40, 40, 40, 40, 40], 3)
    expect(result.method).toBe("daily_mean")
    expect(result.daily).toEqual([40, 40, 40])
    expect(result.lower).toBe(120)
    expect(result.upper).toBe(120)
  })

  it("scales the last, partial day of the horizon", () => {
    const result = forecastDays([100, 100], 2.25)
    expect(result.daily).toEqual([100, 100, 25])
    expect(result.total).toBe(225)
  })

  it("extrapolates the run rate with no whole day, and forecasts nothing with no usage at all", () => {
    expect(forecastDays([], 2, { tokens: 50, elapsedDays: 0.5 })).toEqual({
      method: "run_rate",
      daily: [100, 100],
      total: 200,
      lower: 100,
      upper: 400,
    })
    expect(forecastDays([], 2)).toMatchObject({ method: "none", total: 0 })
    expect(forecastDays([5], 0)).toMatchObject({ total: 0, daily: [] })
  })

  it("extrapolates no run rate from under an hour of observation", () => {
    expect(forecastDays([], 30, { tokens: 321, elapsedDays: 10 / 86_400 })).toMatchObject({
      method: "none",
      total: 0,
    })
    expect(forecastDays([], 1, { tokens: 24, elapsedDays: 1 / 24 })).toMatchObject({
      method: "run_rate",
      total: 576,
    })
  })

  it("never forecasts negative usage for a collapsing channel", () => {
    const falling = Array.from({ length: 28 }, (_, t) => Math.max(0, 500 - 25 * t))
    const result = forecastDays(falling, 20)
    expect(Math.min(...result.daily)).toBeGreaterThanOrEqual(0)
    expect(result.lower).toBeGreaterThanOrEqual(0)
  })
})

describe("quota exhaustion", () => {
  it("interpolates within the day the limit is reached", () => {
    expect(quotaExhaustionAt(900, 1000, [50, 100], 0)).toBe(1.5 * DAY_MS)
    expect(quotaExhaustionAt(0, 1000, [1000], 5)).toBe(5 + DAY_MS)
  })
  it("is now when already exhausted and null when never reached", () => {
    expect(quotaExhaustionAt(1000, 1000, [10], 42)).toBe(42)
    expect(quotaExhaustionAt(0, 1000, [10, 10], 0)).toBeNull()
  })
})

describe("error measures", () => {
  it("computes MAPE over non-zero actuals and the seasonal naive baseline", () => {
    expect(mape([100, 200], [110, 180])).toBeCloseTo(10, 9)
    expect(mape([0, 100], [5, 50])).toBe(50)
    expect(mape([0], [1])).toBeNull()
    expect(seasonalNaive([1, 2, 3, 4, 5, 6, 7, 8], 9)).toEqual([2, 3, 4, 5, 6, 7, 8, 2, 3])
  })
})
