import { describe, expect, it } from "vitest"
import {
  chiSquarePValue,
  normalCdf,
  proportionInterval,
  sampleRatioMismatch,
  studentTCdf,
  summarize,
  tCritical,
  twoProportionZTest,
  welchTTest,
} from "./statistics.js"

describe("distribution functions against published tables", () => {
  it("the normal CDF gives the table's values", () => {
    expect(normalCdf(1.96)).toBeCloseTo(0.975, 4)
    expect(normalCdf(-1)).toBeCloseTo(0.1587, 4)
  })

  it("Student's t: 2.228 with 10 degrees of freedom leaves 2.5% in each tail", () => {
    expect(1 - studentTCdf(2.228, 10)).toBeCloseTo(0.025, 4)
    expect(tCritical(10)).toBeCloseTo(2.228, 3)
    expect(tCritical(1)).toBeCloseTo(12.706, 2)
    expect(tCritical(30)).toBeCloseTo(2.042, 3)
  })

  it("chi-square: the 0.001 critical values 10.828 (1 df) and 13.816 (2 df)", () => {
    expect(chiSquarePValue(10.828, 1)).toBeCloseTo(0.001, 5)
    expect(chiSquarePValue(13.816, 2)).toBeCloseTo(0.001, 5)
    expect(chiSquarePValue(3.841, 1)).toBeCloseTo(0.05, 4)
    expect(chiSquarePValue(18.307, 10)).toBeCloseTo(0.05, 4)
  })
})

describe("the two-proportion z-test", () => {
  it("matches OpenIntro Statistics' mammogram example (500/44,425 against 505/44,405: z = -0.17, p = 0.87)", () => {
    // OpenIntro Statistics, 3rd ed., section 6.2.3: deaths from breast cancer, mammogram group vs control.
    const result = twoProportionZTest(505, 44_405, 500, 44_425)
    expect(result?.statistic).toBeCloseTo(-0.17, 2)
    expect(result?.pValue).toBeCloseTo(0.87, 2)
  })

  it("a zero-variance pair answers p = 1, and an empty arm no test", () => {
    expect(twoProportionZTest(0, 10, 0, 10)?.pValue).toBe(1)
    expect(twoProportionZTest(0, 0, 1, 10)).toBeNull()
  })

  it("Wilson's interval of 81 out of 263 is 0.255-0.365", () => {
    // Wilson (1927) as tabulated by Newcombe (1998), Statistics in Medicine 17, example (e): 81/263.
    const interval = proportionInterval(81, 263)
    expect(interval?.low).toBeCloseTo(0.2553, 3)
    expect(interval?.high).toBeCloseTo(0.3662, 3)
  })
})

describe("Welch's t-test", () => {
  // Wikipedia, "Welch's t-test", examples 1 and 2.
  const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
  const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
  const b1 = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
  const b2 = [
    21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8, 20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5,
    23.5, 21.5, 21.8,
  ]

  it("example 1: t = 2.46 with 25.0 degrees of freedom, p = 0.021", () => {
    const result = welchTTest(summarize(a1), summarize(a2))
    expect(result?.statistic).toBeCloseTo(2.46, 2)
    expect(result?.degreesOfFreedom).toBeCloseTo(25.0, 1)
    expect(result?.pValue).toBeCloseTo(0.021, 3)
  })

  it("example 2: t = 1.57 with 9.9 degrees of freedom, p = 0.149", () => {
    const result = welchTTest(summarize(b1), summarize(b2))
    expect(result?.statistic).toBeCloseTo(1.57, 2)
    expect(result?.degreesOfFreedom).toBeCloseTo(9.9, 1)
    expect(result?.pValue).toBeCloseTo(0.149, 3)
  })

  it("the difference's interval excludes 0 exactly when p < 0.05", () => {
    const result = welchTTest(summarize(a1), summarize(a2))
    expect(result && result.interval.low > 0).toBe(true)
    const other = welchTTest(summarize(b1), summarize(b2))
    expect(other && other.interval.low < 0).toBe(true)
  })
})

describe("the sample ratio mismatch check", () => {
  it("flags 5,200 against 4,800 at 50/50 (chi-square 16, p < 0.001) but not 5,050 against 4,950", () => {
    const skewed = sampleRatioMismatch([5200, 4800], [1, 1])
    expect(skewed.chiSquare).toBeCloseTo(16, 6)
    expect(skewed.mismatch).toBe(true)
    expect(sampleRatioMismatch([5050, 4950], [1, 1]).mismatch).toBe(false)
  })

  it("uses the weights: 2,000 / 8,000 is right for 20/80", () => {
    expect(sampleRatioMismatch([2000, 8000], [20, 80]).chiSquare).toBe(0)
  })
})
