/**
 * Exact local-calendar arithmetic in any IANA time zone, using only the runtime's Intl data.
 *
 * Analytics group usage by the subscriber's local day and hour, so a day must map to the exact UTC interval
 * it covered: 23 or 25 hours around DST changes, 23.5 or 24.5 on Lord Howe Island, offset by 30 or 45 minutes
 * in India or Nepal, and starting at 01:00 where a DST change skips midnight (Chile, Lebanon, Cuba).
 *
 * Design:
 * - A local day starts at the first instant whose local date is that day or later. Where midnight happens
 *   twice (Cuba falls back from 01:00 to 00:00) that is the first midnight; where it never happens, the moment
 *   the clock jumps past it; a day a zone skipped entirely (Samoa, 2011-12-30) has zero length.
 * - The offset at an instant comes from formatting that instant's wall clock with a cached
 *   `Intl.DateTimeFormat` and subtracting; it is exact to the second, so historical offsets such as Kolkata's
 *   +5:53:28 come out right too.
 * - A day start is found from the offsets a day either side of local midnight (two lookups, three for the
 *   check); only when midnight falls in a gap is the jump located by bisection, to the second.
 *
 * Time zones are not validated here beyond what Intl does: an unknown zone throws a RangeError. Validate
 * input at the edge with `isValidTimeZone`.
 */

import { isValidTimeZone } from "./subscription.js"

/** A calendar date with no time zone, as "YYYY-MM-DD" (years 0001 to 9999). Create one with {@link parseLocalDate}. */
export type LocalDate = `${number}-${number}-${number}`

const MINUTE_MS = 60_000
const HOUR_MS = 3_600_000
const DAY_MS = 86_400_000

const LOCAL_DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/

interface CalendarDate {
  year: number
  month: number
  day: number
}

function daysInMonth(year: number, month: number): number {
  return new Date(utcMs(year, month + 1, 0)).getUTCDate()
}

/** Date.UTC without its mapping of years 0-99 to 1900-1999. */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, 0)
  return date.getTime()
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, "0")
}

function formatLocalDate({ year, month, day }: CalendarDate): LocalDate {
  if (year < 1 || year > 9999) throw new RangeError(`year ${year} is outside the supported range 0001-9999`)
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}` as LocalDate
}

function parseParts(value: string): CalendarDate | undefined {
  const match = LOCAL_DATE_PATTERN.exec(value)
  if (!match) return undefined
  const year = Number(match[1])
  const month = Number(match[2])
  const day = Number(match[3])
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined
  return { year, month, day }
}

/**
 * Strictly parses "YYYY-MM-DD": four-digit year from 0001, two-digit month and day, and a day that exists in
 * that month. Returns undefined for anything else.
 * @example parseLocalDate("2028-02-29") // "2028-02-29"
 * @example parseLocalDate("2026-02-30") // undefined
 */
export function parseLocalDate(value: string): LocalDate | undefined {
  const parts = parseParts(value)
  return parts === undefined ? undefined : formatLocalDate(parts)
}

function requireParts(date: string, name: string): CalendarDate {
  const parts = parseParts(date)
  if (parts === undefined) throw new RangeError(`${name} must be a date as YYYY-MM-DD, got "${date}"`)
  return parts
}

/** Days since 1970-01-01 (negative before). */
function dayNumber(date: string, name: string): number {
  const { year, month, day } = requireParts(date, name)
  return utcMs(year, month, day) / DAY_MS
}

function fromDayNumber(days: number): LocalDate {
  const date = new Date(days * DAY_MS)
  return formatLocalDate({
    year: date.getUTCFullYear(),
    month: date.getUTCMonth() + 1,
    day: date.getUTCDate(),
  })
}

/**
 * The date `days` calendar days after `date` (before, when negative).
 * @example addDays("2026-02-28", 1) // "2026-03-01"
 */
export function addDays(date: LocalDate, days: number): LocalDate {
  if (!Number.isSafeInteger(days)) throw new RangeError(`days must be an integer, got ${days}`)
  return fromDayNumber(dayNumber(date, "date") + days)
}

/**
 * How many calendar days `from` to `to` covers, both included; 0 when `to` is before `from`.
 * @example daysBetweenInclusive("2026-03-01", "2026-03-31") // 31
 */
export function daysBetweenInclusive(from: LocalDate, to: LocalDate): number {
  return Math.max(0, dayNumber(to, "to") - dayNumber(from, "from") + 1)
}

/**
 * Every date from `from` to `to`, both included, in order; empty when `to` is before `from`.
 * @example eachDay("2026-02-27", "2026-03-01") // ["2026-02-27", "2026-02-28", "2026-03-01"]
 */
export function eachDay(from: LocalDate, to: LocalDate): LocalDate[] {
  const first = dayNumber(from, "from")
  const last = dayNumber(to, "to")
  const days: LocalDate[] = []
  for (let day = first; day <= last; day += 1) days.push(fromDayNumber(day))
  return days
}

// One formatter per zone: constructing one costs far more than formatting with it. The bound only guards
// against unbounded spellings of valid zones ("asia/kolkata", "ASIA/KOLKATA", ...); real use never reaches it.
const MAX_CACHED_FORMATTERS = 1000
const formatters = new Map<string, Intl.DateTimeFormat>()

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  const cached = formatters.get(timeZone)
  if (cached !== undefined) return cached
  if (!isValidTimeZone(timeZone)) throw new RangeError(`unknown time zone "${timeZone}"`)
  const formatter = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    era: "short",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  })
  if (formatters.size >= MAX_CACHED_FORMATTERS) formatters.clear()
  formatters.set(timeZone, formatter)
  return formatter
}

interface WallClock extends CalendarDate {
  hour: number
  minute: number
  second: number
}

function wallClockAt(ms: number, timeZone: string): WallClock {
  if (!Number.isFinite(ms)) throw new RangeError("instant must be a valid Date")
  const wall: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 }
  let beforeCommonEra = false
  for (const part of formatterFor(timeZone).formatToParts(ms)) {
    switch (part.type) {
      case "era":
        beforeCommonEra = part.value === "BC" || part.value === "B"
        break
      case "year":
      case "month":
      case "day":
      case "hour":
      case "minute":
      case "second":
        wall[part.type] = Number(part.value)
        break
      default:
        break
    }
  }
  if (beforeCommonEra) wall.year = 1 - wall.year
  return wall
}

/** The zone's offset at `ms`, in milliseconds (local wall clock minus UTC); exact to the second. */
function offsetMsAt(ms: number, timeZone: string): number {
  const { year, month, day, hour, minute, second } = wallClockAt(ms, timeZone)
  return utcMs(year, month, day, hour, minute, second) - Math.floor(ms / 1000) * 1000
}

/** The local wall clock at `ms`, expressed as if it were UTC milliseconds. */
function wallMsAt(ms: number, timeZone: string): number {
  return ms + offsetMsAt(ms, timeZone)
}

/**
 * The zone's offset from UTC at `instant`, in minutes, positive east of Greenwich. Historical local mean
 * time offsets are not whole minutes and come back fractional.
 * @example zoneOffsetMinutes(new Date("2026-01-15T00:00:00Z"), "Asia/Kathmandu") // 345
 */
export function zoneOffsetMinutes(instant: Date, timeZone: string): number {
  return offsetMsAt(instant.getTime(), timeZone) / MINUTE_MS
}

/**
 * The calendar date at `instant` on a wall clock in `timeZone`.
 * @example localDateOf(new Date("2026-01-16T04:50:00Z"), "America/New_York") // "2026-01-15"
 */
export function localDateOf(instant: Date, timeZone: string): LocalDate {
  return formatLocalDate(wallClockAt(instant.getTime(), timeZone))
}

/**
 * The hour (0-23) at `instant` on a wall clock in `timeZone`.
 * @example localHourOf(new Date("2026-01-14T18:40:00Z"), "Asia/Kolkata") // 0
 */
export function localHourOf(instant: Date, timeZone: string): number {
  return wallClockAt(instant.getTime(), timeZone).hour
}

/**
 * Today's date in `timeZone` at `now` (pass the clock's time; this module never reads it).
 * @example todayIn("Pacific/Kiritimati", new Date("2026-01-15T12:00:00Z")) // "2026-01-16"
 */
export function todayIn(timeZone: string, now: Date): LocalDate {
  return localDateOf(now, timeZone)
}

/**
 * The instant the local day `date` begins in `timeZone`: the first instant whose local date is `date` or
 * later. Usually local midnight; where a DST change skips midnight, the instant the clock jumps past it;
 * where midnight happens twice, the first one.
 * @example zonedStartOfDay("2026-01-15", "Asia/Kolkata") // 2026-01-14T18:30:00.000Z
 * @example zonedStartOfDay("2024-09-08", "America/Santiago") // 2024-09-08T04:00:00.000Z (01:00 local)
 */
export function zonedStartOfDay(date: LocalDate, timeZone: string): Date {
  const { year, month, day } = requireParts(date, "date")
  return new Date(firstInstantAtOrAfterWall(utcMs(year, month, day), timeZone))
}

/** The first instant whose local wall clock reads `wall` (UTC-style milliseconds) or later. */
function firstInstantAtOrAfterWall(wall: number, timeZone: string): number {
  const offsetBefore = offsetMsAt(wall - DAY_MS, timeZone)
  const offsetAfter = offsetMsAt(wall + DAY_MS, timeZone)
  // Each offset in force around local midnight gives one candidate; where both read midnight (a fall-back
  // repeats it) the earlier one is the day's start.
  const early = wall - Math.max(offsetBefore, offsetAfter)
  const late = wall - Math.min(offsetBefore, offsetAfter)
  if (wallMsAt(early, timeZone) === wall) return early
  if (wallMsAt(late, timeZone) === wall) return late
  // Midnight falls in a gap: the clock reads before midnight at `early` and after it at `late`, and the
  // jump between them is the day's start.
  if (wallMsAt(early, timeZone) < wall && wallMsAt(late, timeZone) > wall) {
    return bisectToSecond(early, late, wall, timeZone)
  }
  return scanForWall(wall, timeZone)
}

/** Narrows `[low, high]` (whole seconds, clock before `wall` at `low` and at or past it at `high`). */
function bisectToSecond(low: number, high: number, wall: number, timeZone: string): number {
  let before = low
  let atOrAfter = high
  while (atOrAfter - before > 1000) {
    const middle = before + Math.floor((atOrAfter - before) / 2000) * 1000
    if (wallMsAt(middle, timeZone) >= wall) atOrAfter = middle
    else before = middle
  }
  return atOrAfter
}

// Safety net for more than one offset change within a day of midnight, which the fast path cannot see.
// Offsets have never exceeded 16 hours either way, so the clock reads before `wall` at the scan's start.
function scanForWall(wall: number, timeZone: string): number {
  const step = 15 * MINUTE_MS
  let previous = wall - 17 * HOUR_MS
  for (let at = previous + step; at <= wall + 2 * DAY_MS; at += step) {
    if (wallMsAt(at, timeZone) >= wall) return bisectToSecond(previous, at, wall, timeZone)
    previous = at
  }
  throw new RangeError(`no instant in ${timeZone} reaches local ${new Date(wall).toISOString()}`)
}

/**
 * The UTC interval covering local days `from` to `to` (both included) in `timeZone`: from the start of
 * `from` (inclusive) to the start of the day after `to` (exclusive).
 * @example localRangeToInstants("2026-03-08", "2026-03-08", "America/New_York")
 * // { start: 2026-03-08T05:00:00Z, end: 2026-03-09T04:00:00Z }: 23 hours
 */
export function localRangeToInstants(
  from: LocalDate,
  to: LocalDate,
  timeZone: string,
): { start: Date; end: Date } {
  if (dayNumber(to, "to") < dayNumber(from, "from")) {
    throw new RangeError(`range ends (${to}) before it starts (${from})`)
  }
  return { start: zonedStartOfDay(from, timeZone), end: zonedStartOfDay(addDays(to, 1), timeZone) }
}

/** One local hour: the instant it starts, and its local date and hour of day. */
export interface LocalHour {
  start: Date
  date: LocalDate
  hour: number
}

const QUARTER_HOUR_MS = 15 * MINUTE_MS

/**
 * Every local hour that starts in `[start, end)` in `timeZone`, in order. At a DST fall-back the repeated
 * hour appears twice (two different instants); at a spring-forward the skipped hour does not appear.
 * Hours are found on the 15-minute UTC grid, which holds every hour start of every zone whose offset is a
 * multiple of 15 minutes (all zones since 1979; not the local mean times of the 19th century).
 * @example localHoursBetween(new Date("2026-01-14T18:30:00Z"), new Date("2026-01-14T20:30:00Z"), "Asia/Kolkata")
 * // [{ start: 2026-01-14T18:30Z, date: "2026-01-15", hour: 0 }, { start: 2026-01-14T19:30Z, date: "2026-01-15", hour: 1 }]
 */
export function localHoursBetween(start: Date, end: Date, timeZone: string): LocalHour[] {
  const hours: LocalHour[] = []
  const first = Math.ceil(start.getTime() / QUARTER_HOUR_MS) * QUARTER_HOUR_MS
  for (let at = first; at < end.getTime(); at += QUARTER_HOUR_MS) {
    const wall = wallClockAt(at, timeZone)
    if (wall.minute === 0 && wall.second === 0) {
      hours.push({ start: new Date(at), date: formatLocalDate(wall), hour: wall.hour })
    }
  }
  return hours
}

/**
 * Whether `timeZone`'s offset from UTC is a whole number of hours throughout `[start, end)`, so that every
 * local hour is a UTC hour. Checked at every day start and at the end: no zone has ever held a
 * non-whole-hour offset for less than a day between whole-hour ones.
 * @example offsetsAreWholeHours(new Date("2026-01-01Z"), new Date("2026-12-31Z"), "America/New_York") // true
 * @example offsetsAreWholeHours(new Date("2026-01-01Z"), new Date("2026-01-02Z"), "Asia/Kolkata") // false
 */
export function offsetsAreWholeHours(start: Date, end: Date, timeZone: string): boolean {
  const whole = (ms: number) => offsetMsAt(ms, timeZone) % HOUR_MS === 0
  for (let at = start.getTime(); at < end.getTime(); at += DAY_MS) {
    if (!whole(at)) return false
  }
  return whole(end.getTime() - 1000)
}
