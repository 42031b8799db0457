/**
 * An independent recomputation of the analytics metrics from generated turns with known timestamps: plain
 * JavaScript over the turns the test wrote, with local dates and hours from Intl directly and its own
 * integer rounding. It shares no code with src/analytics or src/core, so a bug there cannot hide here.
 */

export interface OracleTurn {
  at: Date
  channel: string
  user: string | undefined
  /** Undefined for an allowed turn. */
  denialReason: string | undefined
  rawTokens: number
  billedTokens: number
}

const formatters = new Map<string, Intl.DateTimeFormat>()

/** Local "YYYY-MM-DD" and hour of `at` in `zone`, straight from Intl. */
export function local(at: Date, zone: string): { date: string; hour: number } {
  let format = formatters.get(zone)
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      hourCycle: "h23",
    })
    formatters.set(zone, format)
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]))
  return { date: `${parts.year}-${parts.month}-${parts.day}`, hour: Number(parts.hour) }
}

/** Calendar arithmetic on "YYYY-MM-DD" through UTC noon, independent of any zone. */
export function shiftDate(date: string, days: number): string {
  const t = Date.parse(`${date}T12:00:00Z`) + days * 86_400_000
  return new Date(t).toISOString().slice(0, 10)
}

export function datesFrom(from: string, to: string): string[] {
  const dates: string[] = []
  for (let d = from; d <= to; d = shiftDate(d, 1)) dates.push(d)
  return dates
}

/** numerator / denominator rounded half-up to `decimals`, in BigInt (inputs are non-negative integers). */
function ratio(numerator: bigint, denominator: bigint, decimals: number): number {
  const scale = 10n ** BigInt(decimals)
  const units = (2n * numerator * scale + denominator) / (2n * denominator)
  return Number(units) / Number(scale)
}

function signedRatio(numerator: bigint, denominator: bigint, decimals: number): number {
  const value = ratio(numerator < 0n ? -numerator : numerator, denominator, decimals)
  return numerator < 0n && value !== 0 ? -value : value
}

export interface OracleStats {
  tokens_used: number
  raw_tokens: number
  message_count: number
  denied_count: number
  denied_by_reason: Record<string, number>
  unique_users: number
  /** No identifier is linked in the oracle's suites: a person per channel and identifier. */
  unique_people: number
  avg_tokens_per_message: number
  peak_usage_hour: number | null
  hourly_distribution: Array<{ hour: number; tokens_used: number; message_count: number }>
  daily_trends: Array<{ date: string; tokens_used: number; message_count: number }>
  trend_direction: "increasing" | "decreasing" | "stable"
  growth: { tokens_used: number | null; message_count: number | null; unique_users: number | null }
  previous: { tokens_used: number; message_count: number; unique_users: number }
}

function inPeriod(
  turns: readonly OracleTurn[],
  zone: string,
  from: string,
  to: string,
  channels: Set<string>,
) {
  return turns.filter((turn) => {
    const { date } = local(turn.at, zone)
    return date >= from && date <= to && channels.has(turn.channel)
  })
}

function counts(turns: readonly OracleTurn[]) {
  const allowed = turns.filter((t) => t.denialReason === undefined)
  return {
    allowed,
    tokens: allowed.reduce((s, t) => s + t.billedTokens, 0),
    raw: allowed.reduce((s, t) => s + t.rawTokens, 0),
    messages: allowed.length,
    users: new Set(allowed.map((t) => t.user).filter((u): u is string => u !== undefined && u !== "")).size,
    people: new Set(
      allowed.filter((t) => t.user !== undefined && t.user !== "").map((t) => `${t.channel}|${t.user}`),
    ).size,
  }
}

function growth(current: number, previous: number): number | null {
  return previous === 0 ? null : signedRatio(BigInt(current - previous) * 100n, BigInt(previous), 2)
}

function trend(daily: number[]): "increasing" | "decreasing" | "stable" {
  const n = daily.length
  const mean = daily.reduce((s, y) => s + y, 0) / n
  if (n < 3 || mean === 0) return "stable"
  const xMean = (n - 1) / 2
  let sxy = 0
  let sxx = 0
  daily.forEach((y, x) => {
    sxy += (x - xMean) * (y - mean)
    sxx += (x - xMean) ** 2
  })
  const relative = ((sxy / sxx) * (n - 1)) / mean
  if (relative > 0.1) return "increasing"
  if (relative < -0.1) return "decreasing"
  return "stable"
}

/** The metrics of one set of channels (one channel, or all of them for the totals). */
export function oracleStats(
  turns: readonly OracleTurn[],
  zone: string,
  from: string,
  to: string,
  channels: readonly string[],
  denialReasons: readonly string[],
): OracleStats {
  const set = new Set(channels)
  const days = datesFrom(from, to).length
  const current = inPeriod(turns, zone, from, to, set)
  const previous = inPeriod(turns, zone, shiftDate(from, -days), shiftDate(from, -1), set)
  const c = counts(current)
  const p = counts(previous)
  const hourly = Array.from({ length: 24 }, (_, hour) => ({ hour, tokens_used: 0, message_count: 0 }))
  const daily = new Map(datesFrom(from, to).map((date) => [date, { date, tokens_used: 0, message_count: 0 }]))
  for (const turn of c.allowed) {
    const { date, hour } = local(turn.at, zone)
    const h = hourly[hour]
    const d = daily.get(date)
    if (!h || !d) throw new Error("oracle bucket missing")
    h.tokens_used += turn.billedTokens
    h.message_count += 1
    d.tokens_used += turn.billedTokens
    d.message_count += 1
  }
  let peak: number | null = null
  for (const h of hourly)
    if (h.tokens_used > 0 && (peak === null || h.tokens_used > (hourly[peak]?.tokens_used ?? 0)))
      peak = h.hour
  const denied = current.filter((t) => t.denialReason !== undefined)
  const dailyTrends = [...daily.values()]
  return {
    tokens_used: c.tokens,
    raw_tokens: c.raw,
    message_count: c.messages,
    denied_count: denied.length,
    denied_by_reason: Object.fromEntries(
      denialReasons.map((reason) => [reason, denied.filter((t) => t.denialReason === reason).length]),
    ),
    unique_users: c.users,
    unique_people: c.people,
    avg_tokens_per_message: c.messages === 0 ? 0 : ratio(BigInt(c.tokens), BigInt(c.messages), 2),
    peak_usage_hour: peak,
    hourly_distribution: hourly,
    daily_trends: dailyTrends,
    trend_direction: trend(dailyTrends.map((d) => d.tokens_used)),
    growth: {
      tokens_used: growth(c.tokens, p.tokens),
      message_count: growth(c.messages, p.messages),
      unique_users: growth(c.users, p.users),
    },
    previous: { tokens_used: p.tokens, message_count: p.messages, unique_users: p.users },
  }
}

/** usage share, efficiency score and rating per channel, relative to the channels given. */
export function oracleScores(perChannel: ReadonlyMap<string, { tokens: number; messages: number }>) {
  const total = [...perChannel.values()].reduce((s, c) => s + c.tokens, 0)
  let best: { tokens: number; messages: number } | undefined
  for (const c of perChannel.values()) {
    if (c.tokens === 0) continue
    if (!best || c.messages / c.tokens > best.messages / best.tokens) best = c
  }
  const result = new Map<
    string,
    { usage_share: number; efficiency_score: number | null; performance_rating: string | null }
  >()
  for (const [channel, c] of perChannel) {
    let score: number | null = null
    if (c.tokens > 0 && best) {
      score =
        best.messages === 0
          ? 0
          : ratio(
              BigInt(c.messages) * BigInt(best.tokens) * 100n,
              BigInt(c.tokens) * BigInt(best.messages),
              1,
            )
    }
    const rating =
      score === null
        ? null
        : score >= 85
          ? "Excellent"
          : score >= 65
            ? "Good"
            : score >= 40
              ? "Average"
              : "Poor"
    result.set(channel, {
      usage_share: total === 0 ? 0 : ratio(BigInt(c.tokens) * 100n, BigInt(total), 2),
      efficiency_score: score,
      performance_rating: rating,
    })
  }
  return result
}

/** A small deterministic generator (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
