/**
 * Numbers and times formatted for people, in the browser's locale: thousands separators, percentages,
 * signed growth, local times with their zone. One place, so every page says a number the same way.
 */
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat(undefined, { minimumFractionDigits: 0, maximumFractionDigits: 2 })
const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 })

/** 1234567 -> "1,234,567" */
export function formatInteger(value: number): string {
  return integer.format(value)
}

/** 73.678 -> "73.68" */
export function formatDecimal(value: number): string {
  return decimal.format(value)
}

/** 1234567 -> "1.2M", for chart axes. */
export function formatCompact(value: number): string {
  return compact.format(value)
}

/** A value already in percent: 12.5 -> "12.5%". */
export function formatPercent(percent: number): string {
  return `${decimal.format(percent)}%`
}

/** Growth in percent with its sign; null (no previous value) -> "new". */
export function formatGrowth(percent: number | null): string {
  if (percent === null) return "new"
  const sign = percent > 0 ? "+" : percent < 0 ? "−" : "±"
  return `${sign}${decimal.format(Math.abs(percent))}%`
}

/** A multiplier: 1.2 -> "1.2×". */
export function formatMultiplier(value: number): string {
  return `${decimal.format(value)}×`
}

/** An hour of day: 14 -> "14:00". */
export function formatHour(hour: number): string {
  return `${String(hour).padStart(2, "0")}:00`
}

/** An instant in the browser's local time, with its zone: "Nov 25, 2026, 4:05 PM GMT+1". */
export function formatLocalTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
    timeZoneName: "short",
  })
}

/** A calendar date "2026-11-03" as "Nov 3" (no timezone shift: it is already the subscription's day). */
export function formatDay(day: string, withYear = false): string {
  const [y, m, d] = day.split("-").map(Number)
  const date = new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, d ?? 1))
  return date.toLocaleDateString(undefined, {
    month: "short",
    day: "numeric",
    timeZone: "UTC",
    ...(withYear ? { year: "numeric" } : {}),
  })
}

/** Milliseconds as seconds for people: 1500 -> "2 s". */
export function formatSeconds(ms: number): string {
  return `${integer.format(Math.ceil(ms / 1000))} s`
}

/**
 * An instant in the subscription's timezone, naming the zone, so that a page that counts days in that zone
 * writes its times in it too: "Nov 25, 2026, 16:05 (Europe/Berlin)".
 */
export function formatTimeIn(iso: string | number, timeZone: string): string {
  const text = new Date(iso).toLocaleString("en-US", {
    timeZone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  })
  return `${text} (${timeZone})`
}

/** The time of day of an instant in `timeZone`: "16:05". */
export function formatClockIn(iso: string | number, timeZone: string): string {
  return new Date(iso).toLocaleTimeString("en-US", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  })
}

/**
 * An exact money string from the API ("0.00074145") in the browser's locale with its currency, for
 * display only: amounts under one minor unit keep up to 6 decimals instead of showing as 0.
 */
export function formatMoney(amount: string, currency: string): string {
  const value = Number(amount)
  const small = value !== 0 && Math.abs(value) < 0.01
  return new Intl.NumberFormat(undefined, {
    style: "currency",
    currency,
    minimumFractionDigits: small ? 2 : undefined,
    maximumFractionDigits: small ? 6 : 2,
  }).format(value)
}
