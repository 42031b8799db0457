/**
 * Forecasting daily token usage, pure.
 *
 * The model is additive Holt-Winters with a damped trend and a weekly season (period 7 on daily totals),
 * its smoothing parameters chosen by grid search on the one-step-ahead squared error. It needs two full
 * weeks; on shorter history it falls back to the mean of the days there are (flat: with under two weeks a
 * weekly pattern or a trend cannot be told from noise), and with not one full day, to the run rate so far —
 * but never from under an hour of observation: seconds of usage say nothing about a day (321 tokens in 10 s
 * would extrapolate to 2.8 million a day), so under an hour the forecast is "none".
 *
 * The prediction interval of the horizon's total is 95% (±1.96 standard deviations), from the one-step
 * errors accumulated over the horizon as the additive state-space form implies — an innovation at day k
 * moves every later day through the level (alpha) and the trend (alpha·beta) — ignoring the seasonal term's
 * smaller share and assuming normal errors. For the flat mean it is the daily spread over the horizon plus
 * the uncertainty of the mean itself. Forecasts and bounds are never negative.
 */

export const SEASON_DAYS = 7
export const DAY_MS = 86_400_000

export type ForecastMethod = "holt_winters" | "daily_mean" | "run_rate" | "none"

export interface HoltWintersParameters {
  alpha: number
  beta: number
  gamma: number
  /** Trend damping; 1 is an undamped linear trend. */
  phi: number
}

export interface HoltWintersFit extends HoltWintersParameters {
  level: number
  trend: number
  /** Seasonal terms, indexed by position in the season of the day after the last observation onwards. */
  season: number[]
  /** One-step-ahead errors from the first fitted day on. */
  residuals: number[]
  sse: number
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1)

/**
 * Fits additive Holt-Winters with the given parameters to `series` (at least two seasons). The first two
 * seasons initialise level, trend and season; the residuals are the one-step errors from day `m` on.
 */
export function fitHoltWinters(
  series: readonly number[],
  parameters: HoltWintersParameters,
  m: number = SEASON_DAYS,
): HoltWintersFit {
  if (series.length < 2 * m) throw new RangeError(`Holt-Winters needs at least ${2 * m} observations`)
  const { alpha, beta, gamma, phi } = parameters
  const first = series.slice(0, m)
  let level = mean(first)
  let trend = (mean(series.slice(m, 2 * m)) - level) / m
  const season = first.map((y) => y - level)
  const residuals: number[] = []
  let sse = 0
  for (let t = m; t < series.length; t += 1) {
    const y = series[t] ?? 0
    const s = season[t % m] ?? 0
    const error = y - (level + phi * trend + s)
    residuals.push(error)
    sse += error * error
    const nextLevel = alpha * (y - s) + (1 - alpha) * (level + phi * trend)
    trend = beta * (nextLevel - level) + (1 - beta) * phi * trend
    season[t % m] = gamma * (y - nextLevel) + (1 - gamma) * s
    level = nextLevel
  }
  const n = series.length
  const ordered = Array.from({ length: m }, (_, h) => season[(n + h) % m] ?? 0)
  return { alpha, beta, gamma, phi, level, trend, season: ordered, residuals, sse }
}

const GRID = {
  alpha: [0.05, 0.1, 0.2, 0.3, 0.5, 0.7],
  beta: [0, 0.05, 0.1, 0.2],
  gamma: [0.05, 0.1, 0.2, 0.4],
  phi: [0.9, 0.98, 1],
} as const

/** The parameters with the smallest one-step squared error on `series`. */
export function fitBestHoltWinters(series: readonly number[], m: number = SEASON_DAYS): HoltWintersFit {
  let best: HoltWintersFit | undefined
  for (const alpha of GRID.alpha)
    for (const beta of GRID.beta)
      for (const gamma of GRID.gamma)
        for (const phi of GRID.phi) {
          const fit = fitHoltWinters(series, { alpha, beta, gamma, phi }, m)
          if (best === undefined || fit.sse < best.sse) best = fit
        }
  if (!best) throw new RangeError("empty parameter grid")
  return best
}

/** Point forecasts for days 1..h after the series, from a fit. */
export function holtWintersForecast(fit: HoltWintersFit, h: number): number[] {
  const out: number[] = []
  let damped = 0
  for (let step = 1; step <= h; step += 1) {
    damped += fit.phi ** step
    out.push(fit.level + damped * fit.trend + (fit.season[(step - 1) % fit.season.length] ?? 0))
  }
  return out
}

export interface DailyForecast {
  method: ForecastMethod
  /** Forecast per day ahead; the last is scaled to the horizon's final fraction of a day. */
  daily: number[]
  /** Sum of `daily`. */
  total: number
  /** 95% prediction interval of `total`. */
  lower: number
  upper: number
}

const Z95 = 1.959964

/** The least observation a run rate is extrapolated from: one hour, the finest grain analytics reports. */
export const RUN_RATE_MIN_ELAPSED_DAYS = 1 / 24

/**
 * Forecasts the next `horizonDays` (may be fractional) from `history`, whole days oldest first.
 * `partialDay` is what the current, unfinished day has so far with its elapsed fraction — used only when
 * there is not one whole day of history (run rate), and only from {@link RUN_RATE_MIN_ELAPSED_DAYS} on.
 * @example forecastDays([100, 100, 100], 2).total // 200 (daily_mean)
 */
export function forecastDays(
  history: readonly number[],
  horizonDays: number,
  partialDay?: { tokens: number; elapsedDays: number },
): DailyForecast {
  const steps = Math.ceil(Math.max(0, horizonDays) - 1e-9)
  const lastFraction = steps === 0 ? 0 : horizonDays - (steps - 1)
  const scale = (values: number[]) =>
    values.map((v, i) => Math.max(0, v) * (i === steps - 1 ? lastFraction : 1))
  if (steps === 0)
    return { method: history.length > 0 ? "daily_mean" : "none", daily: [], total: 0, lower: 0, upper: 0 }

  if (history.length >= 2 * SEASON_DAYS) {
    const fit = fitBestHoltWinters(history)
    const daily = scale(holtWintersForecast(fit, steps))
    const sigma = Math.sqrt(fit.sse / Math.max(1, fit.residuals.length))
    // Innovation on day k reaches every later day h through the level and the (damped) trend.
    let variance = 0
    for (let k = 1; k <= steps; k += 1) {
      let coefficient = k === steps ? lastFraction : 1
      for (let h = k + 1; h <= steps; h += 1) {
        let trendReach = 0
        for (let j = 1; j <= h - k; j += 1) trendReach += fit.phi ** j
        coefficient += (fit.alpha + fit.alpha * fit.beta * trendReach) * (h === steps ? lastFraction : 1)
      }
      variance += coefficient * coefficient
    }
    return interval("holt_winters", daily, sigma * Math.sqrt(variance))
  }
  if (history.length >= 1) {
    const recent = history.slice(-SEASON_DAYS)
    const average = mean(recent)
    const spread =
      recent.length > 1
        ? Math.sqrt(recent.reduce((a, y) => a + (y - average) ** 2, 0) / (recent.length - 1))
        : average
    const daily = scale(Array.from({ length: steps }, () => average))
    const span = horizonDays
    return interval("daily_mean", daily, spread * Math.sqrt(span + (span * span) / recent.length))
  }
  if (partialDay && partialDay.elapsedDays >= RUN_RATE_MIN_ELAPSED_DAYS - 1e-12 && partialDay.tokens > 0) {
    const rate = partialDay.tokens / partialDay.elapsedDays
    const daily = scale(Array.from({ length: steps }, () => rate))
    // One partial day says little: the interval spans half to double the run rate.
    const total = daily.reduce((a, b) => a + b, 0)
    return { method: "run_rate", daily, total, lower: total / 2, upper: total * 2 }
  }
  return {
    method: "none",
    daily: scale(Array.from({ length: steps }, () => 0)),
    total: 0,
    lower: 0,
    upper: 0,
  }
}

function interval(method: ForecastMethod, daily: number[], sd: number): DailyForecast {
  const total = daily.reduce((a, b) => a + b, 0)
  return { method, daily, total, lower: Math.max(0, total - Z95 * sd), upper: total + Z95 * sd }
}

/**
 * When cumulative usage reaches `limit`, walking the daily forecast from `start` (ms) with `used` so far:
 * linear within a day. `start` itself when already at the limit; null when the forecast never reaches it.
 * @example quotaExhaustionAt(900, 1000, [50, 100], 0) // 1.5 days: 129600000
 */
export function quotaExhaustionAt(
  used: number,
  limit: number,
  daily: readonly number[],
  start: number,
): number | null {
  if (used >= limit) return start
  let cumulative = used
  for (let day = 0; day < daily.length; day += 1) {
    const amount = daily[day] ?? 0
    if (amount > 0 && cumulative + amount >= limit) {
      return Math.round(start + (day + (limit - cumulative) / amount) * DAY_MS)
    }
    cumulative += amount
  }
  return null
}

/**
 * Mean absolute percentage error of `forecast` against `actual`, in percent, over the days with a non-zero
 * actual value; null when there are none.
 * @example mape([100, 200], [110, 180]) // 10
 */
export function mape(actual: readonly number[], forecast: readonly number[]): number | null {
  let sum = 0
  let count = 0
  for (let i = 0; i < actual.length; i += 1) {
    const a = actual[i] ?? 0
    if (a === 0) continue
    sum += Math.abs((a - (forecast[i] ?? 0)) / a)
    count += 1
  }
  return count === 0 ? null : (100 * sum) / count
}

/**
 * The naive seasonal baseline: each of the next `h` days equals the same weekday last week.
 * @example seasonalNaive([1, 2, 3, 4, 5, 6, 7, 8], 2) // [2, 3]
 */
export function seasonalNaive(history: readonly number[], h: number, m: number = SEASON_DAYS): number[] {
  return Array.from({ length: h }, (_, i) => history[history.length - m + (i % m)] ?? 0)
}
