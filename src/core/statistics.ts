/**
 * The statistics of experiment results: confidence intervals, the two-proportion z-test for rates,
 * Welch's t-test for means, and the chi-square test for a sample ratio mismatch. Pure; formulas in
 * README.md ("Experiments").
 *
 * The distribution functions (normal, Student's t, chi-square) are jStat's, a maintained package; this
 * file only writes the tests' formulas around them. statistics.test.ts checks them against published tables.
 */
import jStat from "jstat"

/** P(Z <= z) for a standard normal Z. */
export function normalCdf(z: number): number {
  return jStat.normal.cdf(z, 0, 1)
}

/** The z that leaves (1 - confidence) / 2 in each tail: 1.96 for 95%. */
export function zCritical(confidence = 0.95): number {
  return jStat.normal.inv(1 - (1 - confidence) / 2, 0, 1)
}

/** P(T <= t) for Student's t with `df` degrees of freedom (df may be fractional, as Welch's is). */
export function studentTCdf(t: number, df: number): number {
  // jStat answers NaN for infinite df, where Student's t is the normal distribution.
  return Number.isFinite(df) ? jStat.studentt.cdf(t, df) : normalCdf(t)
}

/** The t with P(|T| > t) = 1 - confidence. */
export function tCritical(df: number, confidence = 0.95): number {
  const p = 1 - (1 - confidence) / 2
  return Number.isFinite(df) ? jStat.studentt.inv(p, df) : zCritical(confidence)
}

/** P(X >= statistic) for a chi-square X with `df` degrees of freedom. */
export function chiSquarePValue(statistic: number, df: number): number {
  if (statistic <= 0) return 1
  return Math.min(1, Math.max(0, 1 - jStat.chisquare.cdf(statistic, df)))
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
  /** The difference's interval at the confidence asked for (95% unless told). */
  interval: Interval
  statistic: number
  pValue: number
  /** Welch's degrees of freedom; absent for the z-test. */
  degreesOfFreedom?: number
}

/**
 * Two-proportion z-test of x2/n2 against x1/n1: z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)) with the
 * pooled p = (x1 + x2) / (n1 + n2); two-sided p-value; the difference's interval uses the unpooled
 * standard error sqrt(p1(1-p1)/n1 + p2(1-p2)/n2), at `confidence`.
 */
export function twoProportionZTest(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
  confidence = 0.95,
): TestResult | null {
  if (n1 === 0 || n2 === 0) return null
  const p1 = x1 / n1
  const p2 = x2 / n2
  const pooled = (x1 + x2) / (n1 + n2)
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
  const difference = p2 - p1
  const z = se === 0 ? 0 : difference / se
  const unpooled = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2)
  const half = zCritical(confidence) * unpooled
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    statistic: z,
    pValue: se === 0 ? 1 : 2 * (1 - normalCdf(Math.abs(z))),
  }
}

/**
 * Welch's t-test of sample 2 against sample 1: t = (m2 - m1) / sqrt(s1²/n1 + s2²/n2), with the
 * Welch-Satterthwaite degrees of freedom (s1²/n1 + s2²/n2)² / ((s1²/n1)²/(n1-1) + (s2²/n2)²/(n2-1));
 * the difference's interval at `confidence`.
 */
export function welchTTest(
  control: SampleSummary,
  treatment: SampleSummary,
  confidence = 0.95,
): TestResult | null {
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
  const half = tCritical(df, confidence) * se
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

/**
 * Pearson's chi-square goodness of fit of the observed counts to the weights' expected split, over the
 * variants of positive weight (degrees of freedom: their number - 1). A variant of weight 0 is promised
 * nobody: any count there is a mismatch by itself (p = 0), whatever the others' split.
 */
export function sampleRatioMismatch(observed: readonly number[], weights: readonly number[]): RatioCheck {
  const weighted = observed.flatMap((_, i) => ((weights[i] ?? 0) > 0 ? [i] : []))
  const total = weighted.reduce((sum, i) => sum + (observed[i] ?? 0), 0)
  const weightSum = weighted.reduce((sum, i) => sum + (weights[i] ?? 0), 0)
  let chiSquare = 0
  for (const i of weighted) {
    const expected = (total * (weights[i] ?? 0)) / weightSum
    if (expected > 0) chiSquare += ((observed[i] ?? 0) - expected) ** 2 / expected
  }
  const unpromised = observed.some((count, i) => count > 0 && !((weights[i] ?? 0) > 0))
  if (unpromised) return { chiSquare, pValue: 0, mismatch: true }
  if (total === 0 || weighted.length < 2) return { chiSquare: 0, pValue: 1, mismatch: false }
  const pValue = chiSquarePValue(chiSquare, weighted.length - 1)
  return { chiSquare, pValue, mismatch: pValue < 0.001 }
}
