/**
 * Forecast backtest: the forecaster (core/forecast.ts) against the naive "same day last week" baseline,
 * in the same run, on (1) generated daily series with a known trend, weekly season and noise, and (2) the
 * demo traffic (src/demo/traffic.ts), per channel and in total. Rolling origins; for each, the model sees
 * only the days before the origin. Reports MAPE over 7- and 28-day horizons, and how often the actual
 * horizon total fell inside the 95% prediction interval. Usage: npx tsx bench/forecast-backtest.ts
 */
import { CHANNEL_DEFINITIONS, CHANNELS, type Channel } from "../src/core/channels.js"
import { forecastDays, mape, seasonalNaive } from "../src/core/forecast.js"
import { seededRandom, syntheticTraffic } from "../src/demo/traffic.js"

const DAYS = 84
const DAY = 86_400_000

interface Score {
  model: number[]
  naive: number[]
  covered: number
  origins: number
}

function backtest(series: readonly number[], horizon: number, score: Score): void {
  for (let origin = 28; origin + horizon <= series.length; origin += 7) {
    const history = series.slice(0, origin)
    const actual = series.slice(origin, origin + horizon)
    const forecast = forecastDays(history, horizon)
    const model = mape(actual, forecast.daily)
    const naive = mape(actual, seasonalNaive(history, horizon))
    if (model === null || naive === null) continue
    score.model.push(model)
    score.naive.push(naive)
    const total = actual.reduce((a, b) => a + b, 0)
    if (total >= forecast.lower && total <= forecast.upper) score.covered += 1
    score.origins += 1
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const newScore = (): Score => ({ model: [], naive: [], covered: 0, origins: 0 })
const row = (name: string, horizon: number, s: Score) =>
  `| ${name} | ${horizon} d | ${s.origins} | ${mean(s.model).toFixed(1)}% | ${mean(s.naive).toFixed(1)}% | ${((100 * s.covered) / Math.max(1, s.origins)).toFixed(0)}% |`

/** A daily series: level * (1 + trend)^t * weekday factor * (1 + noise). */
function generated(seed: number): number[] {
  const random = seededRandom(seed)
  const level = 1000 + random() * 9000
  const trend = (random() - 0.4) * 0.02
  const weekly = Array.from({ length: 7 }, () => 0.5 + random())
  const noise = 0.03 + random() * 0.12
  return Array.from({ length: DAYS }, (_, t) => {
    const gaussian = (random() + random() + random() + random() - 2) * Math.sqrt(3)
    return Math.max(0, level * (1 + trend) ** t * (weekly[t % 7] ?? 1) * (1 + noise * gaussian))
  })
}

function demoSeries(): Record<Channel | "total", number[]> {
  const start = new Date("2026-08-03T00:00:00Z")
  const out = Object.fromEntries(
    [...CHANNELS, "total"].map((c) => [c, Array.from({ length: DAYS }, () => 0)]),
  ) as Record<Channel | "total", number[]>
  for (const turn of syntheticTraffic({
    start,
    days: DAYS,
    utcOffsetMinutes: 60,
    channels: CHANNELS,
    seed: 7,
  })) {
    if (turn.denialReason) continue
    const day = Math.floor((turn.createdAt.getTime() - start.getTime()) / DAY)
    const billed = Math.ceil(
      (turn.rawTokens * CHANNEL_DEFINITIONS[turn.channel].defaults.multiplierHundredths) / 100,
    )
    const channelSeries = out[turn.channel]
    channelSeries[day] = (channelSeries[day] ?? 0) + billed
    out.total[day] = (out.total[day] ?? 0) + billed
  }
  return out
}

console.log(
  "| series | horizon | origins | MAPE Holt-Winters | MAPE naive last week | 95% interval covered |",
)
console.log("| --- | --- | --- | --- | --- | --- |")
for (const horizon of [7, 28]) {
  const score = newScore()
  for (let seed = 1; seed <= 50; seed += 1) backtest(generated(seed), horizon, score)
  console.log(row("generated (50 series: trend, weekly season, 3-15% noise)", horizon, score))
}
const demo = demoSeries()
for (const horizon of [7, 28]) {
  for (const name of [...CHANNELS, "total"] as const) {
    const score = newScore()
    backtest(demo[name], horizon, score)
    console.log(row(`demo ${name}`, horizon, score))
  }
}
