import { describe, expect, it } from "vitest"
import {
  completedMinutes,
  DEFAULT_HEALTH_RULE,
  evaluateHealth,
  evaluateSpike,
  healthFigures,
  median,
  normaliseThresholds,
  percentile,
  retryDelayMs,
  spikeBaseline,
  thresholdMark,
  thresholdsCrossed,
} from "./alerts.js"

describe("quota thresholds", () => {
  it("marks a threshold at the ceiling of fraction times limit", () => {
    expect(thresholdMark(0.5, 1000)).toBe(500)
    expect(thresholdMark(0.95, 999)).toBe(950)
    expect(thresholdMark(1, 7)).toBe(7)
  })

  it("reports every threshold a move crosses, ascending, and none for a move down or sideways", () => {
    expect(thresholdsCrossed(400, 820, 1000)).toEqual([0.5, 0.8])
    expect(thresholdsCrossed(0, 1000, 1000)).toEqual([0.5, 0.8, 0.95, 1])
    expect(thresholdsCrossed(820, 400, 1000)).toEqual([])
    expect(thresholdsCrossed(500, 500, 1000)).toEqual([])
  })

  it("counts reaching a mark exactly as crossing it, and starting on it as not", () => {
    expect(thresholdsCrossed(499, 500, 1000)).toEqual([0.5])
    expect(thresholdsCrossed(500, 799, 1000)).toEqual([])
  })

  it("fires nothing for a zero limit", () => {
    expect(thresholdsCrossed(0, 10, 0)).toEqual([])
  })

  it("agrees with a brute-force walk over every token count", () => {
    const thresholds = [0.25, 0.5, 0.9, 1]
    const limit = 97
    for (let before = 0; before <= limit + 3; before += 1) {
      for (let after = before; after <= limit + 3; after += 1) {
        const expected = thresholds.filter((t) => {
          for (let used = before + 1; used <= after; used += 1)
            if (used / limit >= t && (used - 1) / limit < t) return true
          return false
        })
        expect(thresholdsCrossed(before, after, limit, thresholds), `${before}->${after}`).toEqual(expected)
      }
    }
  })

  it("normalises threshold lists and names what is wrong with bad ones", () => {
    expect(normaliseThresholds([0.9, 0.5])).toEqual([0.5, 0.9])
    expect(normaliseThresholds([])).toBe("must hold 1 to 10 fractions")
    expect(normaliseThresholds([0, 0.5])).toBe("each fraction must be above 0 and at most 1")
    expect(normaliseThresholds([1.2])).toBe("each fraction must be above 0 and at most 1")
    expect(normaliseThresholds([0.1234])).toBe("each fraction has at most three decimals")
    expect(normaliseThresholds([0.5, 0.5])).toBe("fractions must not repeat")
  })
})

describe("retry backoff", () => {
  const options = { baseMs: 1000, maxMs: 60_000 }
  it("doubles per attempt with half of each delay left to jitter", () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, options, () => 0))).toEqual([500, 1000, 2000, 4000])
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, options, () => 0.999999))).toEqual([999, 1999, 3999, 7999])
  })
  it("never exceeds the cap, however many attempts", () => {
    expect(retryDelayMs(50, options, () => 0.999999)).toBeLessThan(60_000)
    expect(retryDelayMs(50, options, () => 0)).toBe(30_000)
  })
})

describe("median and percentile", () => {
  it("take the middle and the nearest rank", () => {
    expect(median([])).toBeNull()
    expect(median([5, 1, 3])).toBe(3)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(percentile([], 95)).toBeNull()
    expect(percentile([100, 200, 300, 400], 95)).toBe(400)
    expect(percentile([100, 200, 300, 400], 50)).toBe(200)
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        95,
      ),
    ).toBe(95)
  })
})

describe("spike baseline and detection", () => {
  const week = (messages: number, tokens = messages * 100) => ({ messages, tokens })
  it("uses the same hour of the week when two or more weeks are known", () => {
    expect(spikeBaseline([week(10), week(30), week(20)], [])).toEqual({
      messages: 20,
      tokens: 2000,
      method: "same_hour_of_week_median",
    })
  })
  it("falls back to the trailing day, and to nothing on less than a day of history", () => {
    const day = Array.from({ length: 24 }, (_, i) => week(i))
    expect(spikeBaseline([week(10)], day)?.method).toBe("trailing_24h_median")
    expect(spikeBaseline([week(10)], day.slice(1))).toBeNull()
  })
  it("detects three times the usual messages or tokens", () => {
    const base = { messages: 20, tokens: 2000, method: "same_hour_of_week_median" as const }
    expect(evaluateSpike({ messages: 60, tokens: 2000 }, base, false)).toBe("detected")
    expect(evaluateSpike({ messages: 25, tokens: 6000 }, base, false)).toBe("detected")
    expect(evaluateSpike({ messages: 59, tokens: 5999 }, base, false)).toBeNull()
  })
  it("never calls a quiet channel's few messages a spike (minimum-volume guard)", () => {
    const silent = { messages: 0, tokens: 0, method: "same_hour_of_week_median" as const }
    expect(evaluateSpike({ messages: 3, tokens: 900 }, silent, false)).toBeNull()
    expect(evaluateSpike({ messages: 19, tokens: 90_000 }, silent, false)).toBeNull()
    expect(evaluateSpike({ messages: 20, tokens: 900 }, silent, false)).toBe("detected")
  })
  it("resolves an open spike only below half its trigger level, or when volume falls under the guard", () => {
    const base = { messages: 20, tokens: 2000, method: "same_hour_of_week_median" as const }
    expect(evaluateSpike({ messages: 40, tokens: 2000 }, base, true)).toBeNull()
    expect(evaluateSpike({ messages: 29, tokens: 2900 }, base, true)).toBe("resolved")
    expect(evaluateSpike({ messages: 10, tokens: 90_000 }, base, true)).toBe("resolved")
    expect(evaluateSpike({ messages: 100, tokens: 9000 }, base, true)).toBeNull()
  })
})

describe("channel health", () => {
  const latencies = (n: number, ms: number) => Array.from({ length: n }, () => ms)
  it("degrades on an error rate of 10% or a p95 latency of 10 s, with enough turns", () => {
    expect(evaluateHealth({ turns: 40, errors: 4, latenciesMs: [] }, false)).toBe("degraded")
    expect(evaluateHealth({ turns: 40, errors: 3, latenciesMs: latencies(40, 500) }, false)).toBeNull()
    expect(
      evaluateHealth(
        { turns: 40, errors: 0, latenciesMs: [...latencies(37, 500), ...latencies(3, 12_000)] },
        false,
      ),
    ).toBe("degraded")
    expect(
      evaluateHealth(
        { turns: 40, errors: 0, latenciesMs: [...latencies(38, 500), ...latencies(2, 12_000)] },
        false,
      ),
    ).toBeNull()
  })
  it("says nothing on fewer turns than the minimum, degraded or not", () => {
    expect(evaluateHealth({ turns: 19, errors: 19, latenciesMs: [] }, false)).toBeNull()
    expect(evaluateHealth({ turns: 19, errors: 0, latenciesMs: [] }, true)).toBeNull()
  })
  it("recovers only below the lower recovery thresholds", () => {
    expect(evaluateHealth({ turns: 40, errors: 2, latenciesMs: latencies(40, 500) }, true)).toBeNull()
    expect(evaluateHealth({ turns: 40, errors: 1, latenciesMs: latencies(40, 500) }, true)).toBe("recovered")
    expect(evaluateHealth({ turns: 40, errors: 0, latenciesMs: latencies(40, 9000) }, true)).toBeNull()
  })
  it("ignores latency percentiles drawn from too few reports", () => {
    expect(healthFigures({ turns: 40, errors: 0, latenciesMs: [20_000] }, DEFAULT_HEALTH_RULE)).toEqual({
      turns: 40,
      errorRate: 0,
      p50LatencyMs: null,
      p95LatencyMs: null,
    })
  })
})

describe("completed minutes", () => {
  it("lists the whole minutes before now, oldest first", () => {
    expect(
      completedMinutes(Date.parse("2026-01-01T00:03:30Z"), 2).map((m) => new Date(m).toISOString()),
    ).toEqual(["2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"])
  })
})
