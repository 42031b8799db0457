/**
 * The statistics of experiment results: confidence intervals, the two-proportion z-test for rates,
 * Welch's t-test for means, and the chi-square test for a sample ratio mismatch. Pure; formulas in
 * README.md ("Experiments").
 *
 * Distribution functions come from simple-statistics (the error function, its inverse, the log-gamma
 * function). It has no Student t or chi-square CDF, so those two are built here from its log-gamma with
 * the standard continued fraction and series of the regularized incomplete beta and gamma functions
 * (Numerical Recipes, 3rd ed., 6.2 and 6.4), checked in statistics.test.ts against published tables.
 */
import { errorFunction, gammaln, probit } from "simple-statistics"

/** P(Z <= z) for a standard normal Z. */
export function normalCdf(z: number): number {
  return 0.5 * (1 + errorFunction(z / Math.SQRT2))
}

/** The z that leaves (1 - confidence) / 2 in each tail: 1.96 for 95%. */
export function zCritical(confidence = 0.95): number {
  return probit(1 - (1 - confidence) / 2)
}

const EPSILON = 1e-14
const TINY = 1e-300

/** The regularized incomplete beta function I_x(a, b), by Lentz's continued fraction. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(gammaln(a + b) - gammaln(a) - gammaln(b) + a * Math.log(x) + b * Math.log(1 - x))
  // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a)
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < TINY) d = TINY
  d = 1 / d
  let h = d
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m
    let term = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + term * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + term / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    h *= d * c
    term = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + term * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + term / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < EPSILON) break
  }
  return (front * h) / a
}

/** P(T <= t) for Student's t with `df` degrees of freedom (df may be fractional, as Welch's is). */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isFinite(df)) return normalCdf(t)
  const tail = 0.5 * regularizedBeta(df / (df + t * t), df / 2, 0.5)
  return t >= 0 ? 1 - tail : tail
}

/** The t with P(|T| > t) = 1 - confidence, by bisection on the CDF. */
export function tCritical(df: number, confidence = 0.95): number {
  const target = 1 - (1 - confidence) / 2
  let low = 0
  let high = 1e3
  for (let i = 0; i < 200 && high - low > 1e-12; i++) {
    const middle = (low + high) / 2
    if (studentTCdf(middle, df) < target) low = middle
    else high = middle
  }
  return (low + high) / 2
}

/** The regularized lower incomplete gamma function P(s, x): a series below s + 1, a fraction above. */
export function regularizedGammaP(s: number, x: number): number {
  if (x <= 0) return 0
  const logFront = s * Math.log(x) - x - gammaln(s)
  if (x < s + 1) {
    let term = 1 / s
    let sum = term
    for (let n = 1; n < 1000; n++) {
      term *= x / (s + n)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * EPSILON) break
    }
    return sum * Math.exp(logFront)
  }
  let b = x + 1 - s
  let c = 1 / TINY
  let d = 1 / b
  let h = d
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - s)
    b += 2
    d = an * d + b
    if (Math.abs(d) < TINY) d = TINY
    c = b + an / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < EPSILON) break
  }
  return 1 - Math.exp(logFront) * h
}

/** P(X >= statistic) for a chi-square X with `df` degrees of freedom. */
export function chiSquarePValue(statistic: number, df: number): number {
  return Math.max(0, 1 - regularizedGammaP(df / 2, statistic / 2))
}

export interface Interval {
  low: number
  high: number
}

/** A rate's 95% interval: Wilson's score interval (stays inside 0-1 and is honest at small n). */
export function proportionInterval(successes: number, trials: number, confidence = 0.95): Interval | null {
  if (trials === 0) return null
  const z = zCritical(confidence)
  const p = successes / trials
  const denominator = 1 + (z * z) / trials
  const centre = (p + (z * z) / (2 * trials)) / denominator
  const half = (z * Math.sqrt((p * (1 - p)) / trials + (z * z) / (4 * trials * trials))) / denominator
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) }
}

/** Mean, sample variance and size of a sample: what the t-based interval and Welch's test need. */
export interface SampleSummary {
  n: number
  mean: number
  /** The sample variance (n - 1 in the denominator); 0 when n < 2. */
  variance: number
}

export function summarize(values: readonly number[]): SampleSummary {
  const n = values.length
  if (n === 0) return { n: 0, mean: 0, variance: 0 }
  let sum = 0
  for (const value of values) sum += value
  const mean = sum / n
  let squares = 0
  for (const value of values) squares += (value - mean) ** 2
  return { n, mean, variance: n > 1 ? squares / (n - 1) : 0 }
}

/** A mean's interval: mean +- t(n-1) * s / sqrt(n). Null below two values. */
export function meanInterval(sample: SampleSummary, confidence = 0.95): Interval | null {
  if (sample.n < 2) return null
  const half = tCritical(sample.n - 1, confidence) * Math.sqrt(sample.variance / sample.n)
  return { low: sample.mean - half, high: sample.mean + half }
}

export interface TestResult {
  /** Treatment minus control. */
  difference: number
  /** The difference's 95% interval. */
  interval: Interval
  statistic: number
  pValue: number
  /** Welch's degrees of freedom; absent for the z-test. */
  degreesOfFreedom?: number
}

/**
 * Two-proportion z-test of x2/n2 against x1/n1: z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)) with the
 * pooled p = (x1 + x2) / (n1 + n2); two-sided p-value; the difference's interval uses the unpooled
 * standard error sqrt(p1(1-p1)/n1 + p2(1-p2)/n2).
 */
export function twoProportionZTest(x1: number, n1: number, x2: number, n2: number): TestResult | null {
  if (n1 === 0 || n2 === 0) return null
  const p1 = x1 / n1
  const p2 = x2 / n2
  const pooled = (x1 + x2) / (n1 + n2)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
  const difference = p2 - p1
  const z = se === 0 ? 0 : difference / se
  const unpooled = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2)
  const half = zCritical() * unpooled
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    statistic: z,
    pValue: se === 0 ? 1 : 2 * (1 - normalCdf(Math.abs(z))),
  }
}

/**
 * Welch's t-test of sample 2 against sample 1: t = (m2 - m1) / sqrt(s1²/n1 + s2²/n2), with the
 * Welch-Satterthwaite degrees of freedom (s1²/n1 + s2²/n2)² / ((s1²/n1)²/(n1-1) + (s2²/n2)²/(n2-1)).
 */
export function welchTTest(control: SampleSummary, treatment: SampleSummary): TestResult | null {
  if (control.n < 2 || treatment.n < 2) return null
  const v1 = control.variance / control.n
  const v2 = treatment.variance / treatment.n
  const se = Math.sqrt(v1 + v2)
  const difference = treatment.mean - control.mean
  if (se === 0) {
    return { difference, interval: { low: difference, high: difference }, statistic: 0, pValue: 1 }
  }
  const df = (v1 + v2) ** 2 / (v1 ** 2 / (control.n - 1) + v2 ** 2 / (treatment.n - 1))
  const t = difference / se
  const half = tCritical(df) * se
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    statistic: t,
    pValue: Math.min(1, 2 * (1 - studentTCdf(Math.abs(t), df))),
    degreesOfFreedom: df,
  }
}

export interface RatioCheck {
  chiSquare: number
  pValue: number
  /** p < 0.001: the split is not what the weights promise; the results should not be trusted. */
  mismatch: boolean
}

/** Pearson's chi-square goodness of fit of the observed counts to the weights' expected split. */
export function sampleRatioMismatch(observed: readonly number[], weights: readonly number[]): RatioCheck {
  const total = observed.reduce((sum, count) => sum + count, 0)
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0)
  if (total === 0 || observed.length < 2) return { chiSquare: 0, pValue: 1, mismatch: false }
  let chiSquare = 0
  observed.forEach((count, i) => {
    const expected = (total * (weights[i] ?? 0)) / weightSum
    if (expected > 0) chiSquare += (count - expected) ** 2 / expected
  })
  const pValue = chiSquarePValue(chiSquare, observed.length - 1)
  return { chiSquare, pValue, mismatch: pValue < 0.001 }
}
