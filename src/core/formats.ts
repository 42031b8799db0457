/**
 * The two rules every input string follows, defined once as TypeBox string formats and used by every
 * schema at the edge (HTTP bodies, queries and headers, the library's inputs, import lines):
 *
 * - **Text** (`format: "text"`): well-formed Unicode (no lone surrogate, which a database would store as
 *   U+FFFD so that two different ids collide) and no U+0000 (PostgreSQL text cannot hold it). Each field
 *   adds its own `maxLength`. Nothing is ever replaced silently: a bad string is a 400 naming the field.
 * - **Time** (`format: "date-time"`, replacing TypeBox's check): an RFC 3339 timestamp from
 *   1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z. Outside that range engines disagree (PGlite reads
 *   year 0001 as 2001, year 0000 is an error on one engine and accepted by the other) and JavaScript dates
 *   overflow when a period is extended past it.
 *
 * Registering the formats is a side effect of importing this module; every schema that uses them is
 * built from the factories below, so the registration always happens before a schema is compiled.
 */
import { Type } from "typebox"
import { Format, IsDateTime } from "typebox/format"

/** The earliest instant omnimeter accepts or stores (inclusive). */
export const EARLIEST_INSTANT_MS = Date.UTC(1970, 0, 1)
/** The latest instant omnimeter accepts or stores (inclusive). */
export const LATEST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
/**
 * The same range as calendar days, for parameters given as YYYY-MM-DD. The last day is 9999-12-30: a
 * period ends at the midnight after its last day, which must still be inside the range in every timezone.
 */
export const EARLIEST_DAY = "1970-01-01"
export const LATEST_DAY = "9999-12-30"

/** A high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/**
 * Whether `value` may be stored as text: well-formed UTF-16 and free of U+0000.
 * @example isText("ok \u{1F600}") // true
 * @example isText("a\u0000b") // false
 * @example isText("\ud800") // false
 */
export function isText(value: string): boolean {
  return !value.includes("\u0000") && !LONE_SURROGATE.test(value)
}

/**
 * Whether `value` is an RFC 3339 date-time inside the accepted range.
 * @example isInstantInRange("2026-01-01T00:00:00Z") // true
 * @example isInstantInRange("0001-01-01T00:00:00Z") // false
 */
export function isInstantInRange(value: string): boolean {
  if (!IsDateTime(value)) return false
  const ms = Date.parse(value)
  return Number.isFinite(ms) && ms >= EARLIEST_INSTANT_MS && ms <= LATEST_INSTANT_MS
}

Format.Set("text", isText)
Format.Set("date-time", isInstantInRange)

export const TEXT_RULE = "must be well-formed Unicode text without U+0000"
export const TIME_RULE = "must be an RFC 3339 date-time from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z"

/** The message for a failed `format` check, in words a caller can act on. */
export function formatMessage(format: unknown): string | undefined {
  if (format === "text") return TEXT_RULE
  if (format === "date-time") return TIME_RULE
  return undefined
}

/**
 * A string field holding an identifier or free text: the text rule plus a length limit.
 * @example Text(255, { minLength: 1, description: "Your customer's id." })
 */
export const Text = (maxLength: number, options: { minLength?: number; description?: string } = {}) =>
  Type.String({ format: "text", maxLength, ...options })

/** A non-empty identifier of at most `maxLength` characters, under the text rule. */
export const Id = (maxLength: number, description?: string) =>
  Text(maxLength, { minLength: 1, ...(description ? { description } : {}) })

/** A timestamp under the time rule. */
export const DateTime = (description?: string) =>
  Type.String({ format: "date-time", ...(description ? { description } : {}) })

/** A UUID (the form of every id omnimeter generates), as a path parameter or a body field. */
export const Uuid = (description?: string) =>
  Type.String({ format: "uuid", maxLength: 36, ...(description ? { description } : {}) })

/** `schema` or null: a field that is always present, null when it has no value. */
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(
  schema: T,
  description?: string,
) => Type.Union([schema, Type.Null()], description ? { description } : {})
