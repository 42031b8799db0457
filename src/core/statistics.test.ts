import { describe, expect, it } from "vitest"
import { referenceChiSquareP, referenceNormalP } from "../../test/support/reference-statistics.js"
import {
  chiSquarePValue,
  meanInterval,
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
  it("matches OpenIntro Statistics' mammogram example (500/44,925 against 505/44,910: z = -0.17, p = 0.87)", () => {
    // OpenIntro Statistics, 3rd ed., section 6.2.3: deaths from breast cancer, 500 of the 44,925 women
    // in the mammogram group against 505 of the 44,910 in the control group. The book rounds the rates to
    // 0.01113 and 0.01124 and the pooled rate to 0.0112 before dividing, giving z = -0.17 and p = 0.87;
    // unrounded, z = -0.164. So: z within 0.01 of the book's, p within 0.005.
    const result = twoProportionZTest(505, 44_910, 500, 44_925)
    expect(Math.abs((result?.statistic ?? 0) - -0.17)).toBeLessThan(0.01)
    expect(Math.abs((result?.pValue ?? 0) - 0.87)).toBeLessThan(0.005)
    // The unrounded z, written out: (p2 - p1) / sqrt(p(1 - p)(1/n1 + 1/n2)).
    const pooled = 1005 / (44_910 + 44_925)
    const z = (500 / 44_925 - 505 / 44_910) / Math.sqrt(pooled * (1 - pooled) * (1 / 44_910 + 1 / 44_925))
    expect(result?.statistic).toBeCloseTo(z, 12)
    expect(result?.statistic).toBeCloseTo(-0.164, 3)
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

describe("the mean's t interval", () => {
  // R's `sleep` data (Cushny and Peebles, 1905, as Student analysed it in 1908): extra hours of sleep.
  const drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
  const drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

  it("gives R's t.test interval for the first drug of the sleep data: 0.75, -0.5297804 to 2.0297804", () => {
    const interval = meanInterval(summarize(drug1))
    expect(interval?.low).toBeCloseTo(-0.5297804, 6)
    expect(interval?.high).toBeCloseTo(2.0297804, 6)
    // At 99%, t(9) = 3.249836 (the table's 3.250): 0.75 +- 3.249836 * s / sqrt(10).
    const s = Math.sqrt(drug1.reduce((sum, x) => sum + (x - 0.75) ** 2, 0) / 9)
    expect(meanInterval(summarize(drug1), 0.99)?.high).toBeCloseTo(0.75 + (3.249836 * s) / Math.sqrt(10), 5)
  })

  it("has no interval below two values", () => {
    expect(meanInterval(summarize([3]))).toBeNull()
    expect(meanInterval(summarize([]))).toBeNull()
  })

  it("Welch's test on the sleep data gives R's t = -1.8608, df = 17.776, p = 0.07939, interval -3.3654832 to 0.2054832", () => {
    // t.test(extra ~ group, data = sleep): group 1 minus group 2, so the control here is the second drug.
    const result = welchTTest(summarize(drug2), summarize(drug1))
    expect(result?.statistic).toBeCloseTo(-1.8608, 4)
    expect(result?.degreesOfFreedom).toBeCloseTo(17.776, 3)
    expect(result?.pValue).toBeCloseTo(0.07939, 5)
    expect(result?.interval.low).toBeCloseTo(-3.3654832, 6)
    expect(result?.interval.high).toBeCloseTo(0.2054832, 6)
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
  it("matches OpenIntro Statistics' jury example: 205, 26, 25, 19 jurors against 72/7/12/9%, X² = 5.89 with 3 df", () => {
    // OpenIntro Statistics, 3rd ed., section 6.3: expected counts 198, 19.25, 33 and 24.75; the book's
    // table puts p between 0.1 and 0.2. The closed form of the chi-square's tail with 3 df gives it exactly.
    const check = sampleRatioMismatch([205, 26, 25, 19], [72, 7, 12, 9])
    expect(check.chiSquare).toBeCloseTo(5.89, 2)
    expect(check.pValue).toBeGreaterThan(0.1)
    expect(check.pValue).toBeLessThan(0.2)
    expect(check.pValue).toBeCloseTo(referenceChiSquareP(check.chiSquare, 3), 9)
    expect(check.mismatch).toBe(false)
  })

  it("matches Mendel's peas: 315, 108, 101, 32 against 9:3:3:1, X² = 0.47 with 3 df, p = 0.925", () => {
    const check = sampleRatioMismatch([315, 108, 101, 32], [9, 3, 3, 1])
    expect(check.chiSquare).toBeCloseTo(0.47, 2)
    expect(check.pValue).toBeCloseTo(0.925, 3)
  })

  it("leaves variants of weight 0 out of the degrees of freedom", () => {
    // 5,174 against 4,826 at 50/50 is X² = 12.11: p = 5.0e-4 with 1 df (a mismatch), 2.3e-3 with 2.
    const check = sampleRatioMismatch([5174, 4826, 0], [1, 1, 0])
    expect(check.chiSquare).toBeCloseTo((2 * 174 ** 2) / 5000, 9)
    expect(check.pValue).toBeCloseTo(referenceNormalP(Math.sqrt(check.chiSquare)), 9)
    expect(check.mismatch).toBe(true)
    expect(sampleRatioMismatch([5000, 5000, 0], [1, 1, 0])).toEqual({
      chiSquare: 0,
      pValue: 1,
      mismatch: false,
    })
  })

  it("flags a variant of weight 0 that has people, however well the others are split", () => {
    const check = sampleRatioMismatch([5000, 5000, 1], [1, 1, 0])
    expect(check.pValue).toBe(0)
    expect(check.mismatch).toBe(true)
    expect(sampleRatioMismatch([0, 3], [1, 0]).mismatch).toBe(true)
  })

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
