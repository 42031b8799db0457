/**
 * The period an analytics request asks about, resolved from its query parameters: pure, so that every
 * endpoint reads `from`, `to`, `tz` and `channels` the same way and rejects bad input naming the parameter.
 */
import { CHANNELS, type Channel, isChannel } from "./channels.js"
import { ValidationError } from "./errors.js"
import { EARLIEST_DAY, LATEST_DAY } from "./formats.js"
import { isValidTimeZone } from "./subscription.js"
import { addDays, daysBetweenInclusive, type LocalDate, parseLocalDate, todayIn } from "./time-zones.js"

/** The longest period one request may cover, in days. */
export const MAX_ANALYTICS_DAYS = 400
/** Days covered when neither `from` nor the period's length is given. */
export const DEFAULT_ANALYTICS_DAYS = 30
/** The longest period the hourly trend granularity serves, in days. */
export const MAX_HOURLY_DAYS = 14

/** The raw query parameters, as strings from the URL. */
export interface AnalyticsRangeQuery {
  from?: string | undefined
  to?: string | undefined
  tz?: string | undefined
  channels?: string | undefined
}

/** A resolved request: local days, the zone they are counted in, the channels, and the period before. */
export interface AnalyticsRange {
  timeZone: string
  from: LocalDate
  to: LocalDate
  days: number
  /** The equally long period immediately before, for growth. */
  previousFrom: LocalDate
  previousTo: LocalDate
  channels: Channel[]
}

function dateParameter(value: string | undefined, name: "from" | "to"): LocalDate | undefined {
  if (value === undefined) return undefined
  const date = parseLocalDate(value)
  if (date === undefined)
    throw new ValidationError(name, `must be a calendar date as YYYY-MM-DD, got "${value}"`)
  if (date < EARLIEST_DAY || date > LATEST_DAY)
    throw new ValidationError(name, `must be from ${EARLIEST_DAY} to ${LATEST_DAY}, got "${value}"`)
  return date
}

/**
 * Resolves the query against the subscription's timezone and the current instant. `to` defaults to today in
 * the timezone, `from` to 29 days before `to` (30 days). Throws a {@link ValidationError} naming `from`, `to`,
 * `tz` or `channels` for a malformed or impossible date, `from` after `to`, a period over 400 days, an
 * unknown timezone or an unknown channel.
 * @example resolveAnalyticsRange({ from: "2026-03-01", to: "2026-03-31" }, "UTC", new Date())
 * // { timeZone: "UTC", from: "2026-03-01", to: "2026-03-31", days: 31, previousFrom: "2026-01-29", previousTo: "2026-02-28", channels: [all six] }
 */
export function resolveAnalyticsRange(
  query: AnalyticsRangeQuery,
  subscriptionTimeZone: string,
  now: Date,
): AnalyticsRange {
  const timeZone = query.tz ?? subscriptionTimeZone
  if (!isValidTimeZone(timeZone)) throw new ValidationError("tz", `unknown IANA timezone "${timeZone}"`)
  const givenFrom = dateParameter(query.from, "from")
  const givenTo = dateParameter(query.to, "to")
  const to = givenTo ?? todayIn(timeZone, now)
  const from = givenFrom ?? addDays(to, -(DEFAULT_ANALYTICS_DAYS - 1))
  if (from > to) throw new ValidationError("from", `must not be after to (${from} > ${to})`)
  const days = daysBetweenInclusive(from, to)
  if (days > MAX_ANALYTICS_DAYS) {
    throw new ValidationError(
      givenFrom === undefined ? "to" : "from",
      `the period covers ${days} days; at most ${MAX_ANALYTICS_DAYS} are allowed`,
    )
  }
  return {
    timeZone,
    from,
    to,
    days,
    previousFrom: addDays(from, -days),
    previousTo: addDays(from, -1),
    channels: parseChannels(query.channels),
  }
}

/**
 * The `channels` parameter: a comma list of known channels, duplicates ignored, in catalog order; all six
 * when absent.
 * @example parseChannels("whatsapp, website") // ["website", "whatsapp"]
 */
export function parseChannels(value: string | undefined): Channel[] {
  if (value === undefined) return [...CHANNELS]
  const named = value.split(",").map((part) => part.trim())
  if (named.length === 0 || named.every((part) => part === "")) {
    throw new ValidationError("channels", "name at least one channel")
  }
  for (const name of named) {
    if (!isChannel(name)) {
      throw new ValidationError("channels", `unknown channel "${name}"; known: ${CHANNELS.join(", ")}`)
    }
  }
  return CHANNELS.filter((channel) => named.includes(channel))
}
