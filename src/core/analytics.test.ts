import { describe, expect, it } from "vitest"
import {
  avgTokensPerMessage,
  bestAndWorst,
  efficiencyScores,
  growthPercent,
  messagesPerThousandTokens,
  peakHour,
  performanceRating,
  round1,
  round2,
  trendDirection,
  usageShares,
} from "./analytics.js"

/**
 * The oracle for every rounded ratio: schoolbook long division of whole numbers, `numerator / denominator`
 * to `decimals` places, rounding a remainder of half or more away from zero. Integer operations only.
 */
function longDivision(numerator: number, denominator: number, decimals: number): number {
  const scale = 10 ** decimals
  const negative = numerator < 0 !== denominator < 0
  const top = Math.abs(numerator) * scale
  const bottom = Math.abs(denominator)
  const remainder = top % bottom
  const units = (top - remainder) / bottom + (2 * remainder >= bottom ? 1 : 0)
  const magnitude = units / scale
  return negative && magnitude !== 0 ? -magnitude : magnitude
}

/** A small deterministic generator, so random cases are the same on every run. */
function generator(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648
    return state / 2_147_483_648
  }
}

describe("rounding", () => {
  it("rounds halves up the way the decimal reads, not the way binary stores it", () => {
    expect(round2(1.005)).toBe(1.01)
    expect(round2(2.675)).toBe(2.68)
    expect(round2(1.255)).toBe(1.26)
    expect(round2(8.345)).toBe(8.35)
    expect(round2(0.125)).toBe(0.13)
    expect(round2(123_456_789.125)).toBe(123_456_789.13)
    expect(round1(0.35)).toBe(0.4)
    expect(round1(0.25)).toBe(0.3)
    expect(round1(1.45)).toBe(1.5)
  })

  it("rounds negative halves away from zero and never returns negative zero", () => {
    expect(round2(-1.005)).toBe(-1.01)
    expect(round1(-0.25)).toBe(-0.3)
    expect(Object.is(round2(-0.004), 0)).toBe(true)
    expect(Object.is(round1(-0.04), 0)).toBe(true)
  })

  it("absorbs floating-point noise and copes with numbers printed in exponent form", () => {
    expect(round2(0.1 + 0.2)).toBe(0.3)
    expect(round2(1.1 * 1.1)).toBe(1.21)
    expect(round2(0.1 * 3)).toBe(0.3)
    expect(round2(1e-7)).toBe(0)
    expect(round2(5e-3)).toBe(0.01)
    expect(round2(1.45e21)).toBe(1.45e21)
    expect(round2(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
  })

  it("matches integer rounding for every three-decimal value up to 100", () => {
    for (let thousandths = 0; thousandths <= 100_000; thousandths += 1) {
      expect(round2(thousandths / 1000)).toBe(Math.floor((thousandths + 5) / 10) / 100)
    }
    for (let hundredths = 0; hundredths <= 10_000; hundredths += 1) {
      expect(round1(hundredths / 100)).toBe(Math.floor((hundredths + 5) / 10) / 10)
    }
  })
})

describe("average tokens per message", () => {
  it("divides tokens by messages to two decimals", () => {
    expect(avgTokensPerMessage(1000, 4)).toBe(250)
    expect(avgTokensPerMessage(1000, 3)).toBe(333.33)
    expect(avgTokensPerMessage(2000, 3)).toBe(666.67)
  })

  it("rounds an exact half up where the floating-point quotient falls just below it", () => {
    // 41 / 40 is 1.025 exactly; as a double it is 1.02499999...
    expect(avgTokensPerMessage(41, 40)).toBe(1.03)
    expect(avgTokensPerMessage(1, 200)).toBe(0.01)
  })

  it("is 0 when there are no messages", () => {
    expect(avgTokensPerMessage(0, 0)).toBe(0)
    expect(avgTokensPerMessage(500, 0)).toBe(0)
    expect(avgTokensPerMessage(0, 7)).toBe(0)
  })

  it("agrees with long division for every small count", () => {
    for (let messages = 1; messages <= 80; messages += 1) {
      for (let tokens = 0; tokens <= 400; tokens += 1) {
        expect(avgTokensPerMessage(tokens, messages)).toBe(longDivision(tokens, messages, 2))
      }
    }
  })

  it("refuses negative or non-finite counts", () => {
    expect(() => avgTokensPerMessage(-1, 3)).toThrow(RangeError)
    expect(() => avgTokensPerMessage(10, Number.NaN)).toThrow(RangeError)
  })
})

describe("usage shares", () => {
  it("gives each channel its percentage of all tokens", () => {
    expect(usageShares({ website: 1, whatsapp: 2 })).toEqual({ website: 33.33, whatsapp: 66.67 })
    expect(usageShares({ website: 250, api: 750, telegram: 0 })).toEqual({
      website: 25,
      api: 75,
      telegram: 0,
    })
    expect(usageShares({ api: 42 })).toEqual({ api: 100 })
  })

  it("rounds an exact half up where the floating-point percentage falls just below it", () => {
    // 23 / 160 is 14.375% exactly.
    expect(usageShares({ website: 23, whatsapp: 137 })).toEqual({ website: 14.38, whatsapp: 85.63 })
  })

  it("is 0 for every channel when nothing was used, and empty for no channels", () => {
    expect(usageShares({ website: 0, whatsapp: 0 })).toEqual({ website: 0, whatsapp: 0 })
    expect(usageShares({})).toEqual({})
  })

  it("agrees with long division and sums to 100 within rounding, on random mixes", () => {
    const random = generator(7)
    for (let round = 0; round < 500; round += 1) {
      const tokens: Record<string, number> = {}
      const channels = ["website", "whatsapp", "messenger", "instagram", "telegram", "api"]
      for (const channel of channels) tokens[channel] = Math.floor(random() * 1_000_000)
      const total = Object.values(tokens).reduce((sum, value) => sum + value, 0)
      const shares = usageShares(tokens)
      let sum = 0
      for (const channel of channels) {
        const share = shares[channel] ?? Number.NaN
        expect(share).toBe(longDivision(100 * (tokens[channel] ?? 0), total, 2))
        sum += share
      }
      expect(Math.abs(sum - 100)).toBeLessThanOrEqual(channels.length * 0.005 + 1e-9)
    }
  })
})

describe("growth", () => {
  it("is the percent change from the previous period", () => {
    expect(growthPercent(150, 120)).toBe(25)
    expect(growthPercent(90, 120)).toBe(-25)
    expect(growthPercent(0, 50)).toBe(-100)
    expect(growthPercent(300, 100)).toBe(200)
    expect(growthPercent(100, 100)).toBe(0)
    expect(growthPercent(1, 3)).toBe(-66.67)
  })

  it("rounds exact halves away from zero in both directions", () => {
    expect(growthPercent(20_001, 20_000)).toBe(0.01)
    expect(growthPercent(19_999, 20_000)).toBe(-0.01)
    expect(growthPercent(2_001, 2_000)).toBe(0.05)
  })

  it("is null when there was nothing before to compare with", () => {
    expect(growthPercent(10, 0)).toBeNull()
    expect(growthPercent(0, 0)).toBeNull()
  })

  it("agrees with long division for every small pair", () => {
    for (let previous = 1; previous <= 60; previous += 1) {
      for (let current = 0; current <= 200; current += 1) {
        expect(growthPercent(current, previous)).toBe(longDivision(100 * (current - previous), previous, 2))
      }
    }
  })
})

describe("peak hour", () => {
  const hours = (entries: Record<number, number>) =>
    Array.from({ length: 24 }, (_, hour) => entries[hour] ?? 0)

  it("is the hour with the most tokens", () => {
    expect(peakHour(hours({ 3: 10, 14: 90, 22: 40 }))).toBe(14)
    expect(peakHour(hours({ 23: 1 }))).toBe(23)
    expect(peakHour(hours({ 0: 5 }))).toBe(0)
  })

  it("gives a tie to the earliest hour", () => {
    expect(peakHour(hours({ 9: 50, 17: 50, 20: 10 }))).toBe(9)
    expect(peakHour(Array(24).fill(7))).toBe(0)
  })

  it("is null when no hour has any tokens", () => {
    expect(peakHour(hours({}))).toBeNull()
  })

  it("refuses a day that is not 24 hours of non-negative counts", () => {
    expect(() => peakHour(Array(23).fill(1))).toThrow(RangeError)
    expect(() => peakHour(Array(25).fill(1))).toThrow(RangeError)
    expect(() => peakHour(hours({ 4: -1 }))).toThrow(RangeError)
  })
})

describe("trend", () => {
  /** Slope by the textbook two-pass method: centre both series, then covariance over variance. */
  function oracleTrend(daily: number[]): { slope: number; relativeChange: number } {
    const n = daily.length
    const meanX = (n - 1) / 2
    const meanY = daily.reduce((sum, y) => sum + y, 0) / n
    let covariance = 0
    let variance = 0
    daily.forEach((y, x) => {
      covariance += (x - meanX) * (y - meanY)
      variance += (x - meanX) ** 2
    })
    const slope = covariance / variance
    return { slope, relativeChange: (slope * (n - 1)) / meanY }
  }

  it("finds rising, falling and flat series", () => {
    expect(trendDirection([100, 120, 140])).toEqual({
      direction: "increasing",
      slope: 20,
      relativeChange: 1 / 3,
    })
    expect(trendDirection([140, 120, 100])).toEqual({
      direction: "decreasing",
      slope: -20,
      relativeChange: -1 / 3,
    })
    expect(trendDirection([100, 100, 100, 100])).toEqual({ direction: "stable", slope: 0, relativeChange: 0 })
  })

  it("fits two points exactly: the slope is their difference", () => {
    expect(trendDirection([40, 100]).slope).toBe(60)
    expect(trendDirection([100, 40]).slope).toBe(-60)
  })

  it("calls fewer than 3 days stable whatever the slope", () => {
    expect(trendDirection([]).direction).toBe("stable")
    expect(trendDirection([500]).direction).toBe("stable")
    expect(trendDirection([0, 1000]).direction).toBe("stable")
    expect(trendDirection([1000, 0]).direction).toBe("stable")
  })

  it("calls a period without usage stable", () => {
    expect(trendDirection([0, 0, 0, 0, 0])).toEqual({ direction: "stable", slope: 0, relativeChange: 0 })
  })

  it("counts zero-filled days: usage only on the last day is increasing, only on the first decreasing", () => {
    expect(trendDirection([0, 0, 0, 0, 100]).direction).toBe("increasing")
    expect(trendDirection([100, 0, 0, 0, 0]).direction).toBe("decreasing")
  })

  it("calls a change of exactly ten percent stable, even where floating point overshoots it", () => {
    // [1, 10, 12, 1]: 2·Sxy = 2 and relativeChange = 6·2 / (5·24) = 1/10; two-pass floats give 0.10000000000000002.
    expect(oracleTrend([1, 10, 12, 1]).relativeChange).toBeGreaterThan(0.1)
    expect(trendDirection([1, 10, 12, 1]).direction).toBe("stable")
    expect(trendDirection([1, 12, 10, 1]).direction).toBe("stable")
    // Three days: relativeChange = 3·(last - first) / sum, so [9, 11, 10] is +1/10 and [9, 10, 10] is +3/29.
    expect(trendDirection([9, 11, 10]).direction).toBe("stable")
    expect(trendDirection([10, 11, 9]).direction).toBe("stable")
    expect(trendDirection([9, 10, 10]).direction).toBe("increasing")
    expect(trendDirection([10, 10, 9]).direction).toBe("decreasing")
  })

  it("agrees with the covariance-over-variance slope on random series", () => {
    const random = generator(42)
    for (let round = 0; round < 1000; round += 1) {
      const days = 3 + Math.floor(random() * 60)
      const base = Math.floor(random() * 10_000)
      const drift = (random() - 0.5) * 400
      const daily = Array.from({ length: days }, (_, x) =>
        random() < 0.1 ? 0 : Math.max(0, Math.round(base + drift * x + (random() - 0.5) * 3000)),
      )
      const expected = oracleTrend(daily)
      const trend = trendDirection(daily)
      if (daily.every((tokens) => tokens === 0)) continue
      expect(trend.slope).toBeCloseTo(expected.slope, 6)
      expect(trend.relativeChange).toBeCloseTo(expected.relativeChange, 9)
      const change = expected.relativeChange
      if (Math.abs(Math.abs(change) - 0.1) < 1e-9) continue
      expect(trend.direction).toBe(change > 0.1 ? "increasing" : change < -0.1 ? "decreasing" : "stable")
    }
  })

  it("refuses negative days", () => {
    expect(() => trendDirection([1, -1, 2])).toThrow(RangeError)
  })
})

describe("efficiency", () => {
  it("scores the channel that serves the most messages per 1,000 tokens 100, the rest in proportion", () => {
    expect(
      efficiencyScores({
        website: { messageCount: 10, tokensUsed: 1000 },
        api: { messageCount: 5, tokensUsed: 1000 },
        telegram: { messageCount: 20, tokensUsed: 6000 },
      }),
    ).toEqual({ website: 100, api: 50, telegram: 33.3 })
  })

  it("rounds an exact half up where the floating-point score falls just below it", () => {
    // 15 / 16 of the best is 93.75 exactly; through floats it is 93.74999999999999.
    expect(
      efficiencyScores({
        website: { messageCount: 16, tokensUsed: 700 },
        whatsapp: { messageCount: 15, tokensUsed: 700 },
      }),
    ).toEqual({ website: 100, whatsapp: 93.8 })
  })

  it("scores channels without tokens null, and tied best channels 100 each", () => {
    expect(
      efficiencyScores({
        website: { messageCount: 4, tokensUsed: 200 },
        whatsapp: { messageCount: 0, tokensUsed: 0 },
        api: { messageCount: 8, tokensUsed: 400 },
        telegram: { messageCount: 0, tokensUsed: 50 },
      }),
    ).toEqual({ website: 100, whatsapp: null, api: 100, telegram: 0 })
  })

  it("scores every channel 0 when channels used tokens but none served a message, and null with no tokens", () => {
    expect(efficiencyScores({ website: { messageCount: 0, tokensUsed: 10 } })).toEqual({ website: 0 })
    expect(efficiencyScores({ website: { messageCount: 3, tokensUsed: 0 } })).toEqual({ website: null })
    expect(efficiencyScores({})).toEqual({})
  })

  it("agrees with scores computed from messages per 1,000 tokens on random channels", () => {
    const random = generator(2026)
    for (let round = 0; round < 500; round += 1) {
      const channels: Record<string, { messageCount: number; tokensUsed: number }> = {}
      for (const channel of ["website", "whatsapp", "messenger", "instagram", "telegram", "api"]) {
        const messageCount = Math.floor(random() * 5000)
        channels[channel] = { messageCount, tokensUsed: messageCount * Math.floor(50 + random() * 2000) }
      }
      const efficiency = Object.fromEntries(
        Object.entries(channels).map(([channel, usage]) => [
          channel,
          usage.tokensUsed === 0 ? null : (usage.messageCount * 1000) / usage.tokensUsed,
        ]),
      )
      const best = Math.max(...Object.values(efficiency).filter((value) => value !== null))
      const scores = efficiencyScores(channels)
      for (const [channel, value] of Object.entries(efficiency)) {
        if (value === null) expect(scores[channel]).toBeNull()
        else
          expect(Math.abs((scores[channel] ?? Number.NaN) - (100 * value) / best)).toBeLessThanOrEqual(
            0.05 + 1e-9,
          )
      }
    }
  })

  it("reports messages per 1,000 tokens to two decimals, null without tokens", () => {
    expect(messagesPerThousandTokens(3, 1200)).toBe(2.5)
    expect(messagesPerThousandTokens(1, 3000)).toBe(0.33)
    expect(messagesPerThousandTokens(5, 0)).toBeNull()
  })
})

describe("performance rating", () => {
  it("names each band from its lower bound", () => {
    expect(performanceRating(100)).toBe("Excellent")
    expect(performanceRating(85)).toBe("Excellent")
    expect(performanceRating(84.9)).toBe("Good")
    expect(performanceRating(65)).toBe("Good")
    expect(performanceRating(64.9)).toBe("Average")
    expect(performanceRating(40)).toBe("Average")
    expect(performanceRating(39.9)).toBe("Poor")
    expect(performanceRating(0)).toBe("Poor")
  })

  it("has no rating for no score", () => {
    expect(performanceRating(null)).toBeNull()
  })
})

describe("best and worst channel", () => {
  it("picks the highest as best and the lowest as worst, ignoring channels without a value", () => {
    expect(bestAndWorst({ website: 3, whatsapp: 7, api: null, telegram: 5 })).toEqual({
      best: "whatsapp",
      worst: "website",
    })
  })

  it("reverses when lower is better", () => {
    expect(bestAndWorst({ website: 3, whatsapp: 7, telegram: 5 }, false)).toEqual({
      best: "website",
      worst: "whatsapp",
    })
  })

  it("breaks ties in favour of the channel listed first", () => {
    expect(bestAndWorst({ telegram: 9, website: 9, api: 1, whatsapp: 1 })).toEqual({
      best: "telegram",
      worst: "api",
    })
    expect(bestAndWorst({ telegram: 9, website: 9, api: 1, whatsapp: 1 }, false)).toEqual({
      best: "api",
      worst: "telegram",
    })
  })

  it("names a lone channel both best and worst, and nobody when there are no values", () => {
    expect(bestAndWorst({ website: null, api: 0 })).toEqual({ best: "api", worst: "api" })
    expect(bestAndWorst({ website: null, api: null })).toBeNull()
    expect(bestAndWorst({})).toBeNull()
  })
})
