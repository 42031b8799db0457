/**
 * The distributions the experiment tests recompute their expectations with, by a route other than the
 * code's (jStat's incomplete beta and gamma functions): numerical integration of the densities and the
 * chi-square's closed forms. Slow and plain on purpose; for tests only.
 */

/** Simpson's rule over [a, b] with `steps` (even) intervals. */
function simpson(f: (x: number) => number, a: number, b: number, steps = 20_000): number {
  const h = (b - a) / steps
  let sum = f(a) + f(b)
  for (let i = 1; i < steps; i++) sum += f(a + i * h) * (i % 2 === 1 ? 4 : 2)
  return (sum * h) / 3
}

/** Φ(z): one half plus the integral of the standard normal density from 0 to z. */
export function referenceNormalCdf(z: number): number {
  const half = simpson((x) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI), 0, Math.abs(z))
  return z >= 0 ? 0.5 + half : 0.5 - half
}

/** The two-sided p-value of a standard normal statistic. */
export function referenceNormalP(z: number): number {
  return 2 * (1 - referenceNormalCdf(Math.abs(z)))
}

/**
 * P(|T| <= t) for Student's t with df >= 1 degrees of freedom, fractional allowed. Substituting
 * x = sqrt(df) tan(θ) turns the density (1 + x²/df)^(-(df+1)/2) into cos(θ)^(df-1), so the probability is
 * the integral of cos^(df-1) from 0 to atan(t / sqrt(df)) over its integral from 0 to π/2.
 */
function studentTCentral(t: number, df: number): number {
  if (!(df >= 1)) throw new Error(`reference t: df ${df} < 1 is not supported`)
  const f = (theta: number) => Math.max(0, Math.cos(theta)) ** (df - 1)
  let whole = wholes.get(df)
  if (whole === undefined) {
    // Below 2 degrees of freedom the integrand has a cusp at π/2: many steps, once per df.
    whole = simpson(f, 0, Math.PI / 2, 400_000)
    wholes.set(df, whole)
  }
  return simpson(f, 0, Math.atan(Math.abs(t) / Math.sqrt(df))) / whole
}
const wholes = new Map<number, number>()

/** The two-sided p-value of Student's t. */
export function referenceStudentTP(t: number, df: number): number {
  return 1 - studentTCentral(t, df)
}

/** The t (or, with df Infinity, the z) with P(|T| <= t) = confidence, by bisection. */
export function referenceCritical(confidence: number, df = Number.POSITIVE_INFINITY): number {
  const central = (x: number) => (Number.isFinite(df) ? studentTCentral(x, df) : 1 - referenceNormalP(x))
  let low = 0
  let high = 1000
  for (let i = 0; i < 60; i++) {
    const mid = (low + high) / 2
    if (central(mid) < confidence) low = mid
    else high = mid
  }
  return (low + high) / 2
}

/**
 * P(X >= x) for a chi-square X with k degrees of freedom, by the closed forms: for even k,
 * e^(-x/2) Σ_{i<k/2} (x/2)^i / i!; for odd k, 2(1 - Φ(√x)) + 2φ(√x) Σ_{i=1}^{(k-1)/2} x^(i-1/2) / (1·3···(2i-1)).
 */
export function referenceChiSquareP(x: number, k: number): number {
  if (k % 2 === 0) {
    let term = 1
    let sum = 1
    for (let i = 1; i < k / 2; i++) {
      term *= x / 2 / i
      sum += term
    }
    return Math.exp(-x / 2) * sum
  }
  const root = Math.sqrt(x)
  const density = Math.exp(-x / 2) / Math.sqrt(2 * Math.PI)
  let sum = 0
  let term = root
  for (let i = 1; i <= (k - 1) / 2; i++) {
    if (i > 1) term *= x / (2 * i - 1)
    sum += term
  }
  return referenceNormalP(root) + 2 * density * sum
}

function mean(values: readonly number[]): number {
  let sum = 0
  for (const value of values) sum += value
  return sum / values.length
}

/** The sample variance by the one-pass textbook form (Σx² - n·mean²) / (n - 1), shifted by the first value. */
function sampleVariance(values: readonly number[]): number {
  const shift = values[0] ?? 0
  let sum = 0
  let squares = 0
  for (const value of values) {
    sum += value - shift
    squares += (value - shift) ** 2
  }
  return (squares - (sum * sum) / values.length) / (values.length - 1)
}

/** A mean with its t interval, mean ± t(n-1) s / √n. */
export function referenceMean(values: readonly number[], confidence = 0.95) {
  const centre = mean(values)
  const half =
    (referenceCritical(confidence, values.length - 1) * Math.sqrt(sampleVariance(values))) /
    Math.sqrt(values.length)
  return { mean: centre, low: centre - half, high: centre + half }
}

/** Welch's test of b against a, written out: t, the Welch-Satterthwaite df, two-sided p, the interval. */
export function referenceWelch(a: readonly number[], b: readonly number[], confidence = 0.95) {
  const [v1, v2] = [sampleVariance(a) / a.length, sampleVariance(b) / b.length]
  const difference = mean(b) - mean(a)
  const se = Math.sqrt(v1 + v2)
  const df = (v1 + v2) ** 2 / (v1 ** 2 / (a.length - 1) + v2 ** 2 / (b.length - 1))
  const t = difference / se
  const half = referenceCritical(confidence, df) * se
  return { difference, t, df, p: referenceStudentTP(t, df), low: difference - half, high: difference + half }
}

/**
 * A ratio of totals R = Σc / Σx with its variance linearised (Cochran, Sampling Techniques, 3rd ed., 6.9):
 * Var(R) = Σ(c - R x)² / (n - 1) / (n mean(x)²), the same quantity as the delta method's
 * (Var(c) - 2R Cov(c, x) + R² Var(x)) / (n mean(x)²), reached another way.
 */
export function referenceRatio(c: readonly number[], x: readonly number[]) {
  const ratio = c.reduce((sum, v) => sum + v, 0) / x.reduce((sum, v) => sum + v, 0)
  const residuals = c.reduce((sum, v, i) => sum + (v - ratio * (x[i] ?? 0)) ** 2, 0) / (c.length - 1)
  return { ratio, variance: residuals / (c.length * mean(x) ** 2) }
}
