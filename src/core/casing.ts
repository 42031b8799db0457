/**
 * The one mapping between the library's camelCase and the HTTP API's snake_case. The five input shapes are
 * defined once, in camelCase (src/meter/inputs.ts); the HTTP schemas are derived from them with
 * {@link snakeCaseProperties}, and request bodies come back with {@link camelCaseKeys}. Names are mapped
 * letter by letter, so a field cannot be renamed on one side only.
 */

type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9"

/** `entityId` to `entity_id` and `messagesPer1kTokens` to `messages_per_1k_tokens`, at the type level. */
export type SnakeCase<S extends string, Previous extends string = ""> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Digit
      ? Previous extends Digit | ""
        ? Head
        : `_${Head}`
      : Head extends Lowercase<Head>
        ? Head
        : `_${Lowercase<Head>}`}${SnakeCase<Tail, Head>}`
  : S

/** `entity_id` to `entityId`, at the type level. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S

/** An object's keys in snake_case; optional fields stay optional. */
export type SnakeCaseKeys<T> = { [K in keyof T as K extends string ? SnakeCase<K> : K]: T[K] }
/** An object's keys in camelCase; optional fields stay optional. */
export type CamelCaseKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] }

/**
 * @example snakeCase("maxMessageLength") // "max_message_length"
 * @example snakeCase("messagesPer1kTokens") // "messages_per_1k_tokens"
 */
export function snakeCase<S extends string>(name: S): SnakeCase<S> {
  return name
    .replace(/(?<=[^0-9_])([0-9]+)/g, "_$1")
    .replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`) as SnakeCase<S>
}

/**
 * @example camelCase("max_message_length") // "maxMessageLength"
 */
export function camelCase<S extends string>(name: S): CamelCase<S> {
  return name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase()) as CamelCase<S>
}

/**
 * A schema's property map with snake_case names, each property schema unchanged (bounds, descriptions,
 * optionality): `Type.Object(snakeCaseProperties(Library.properties), options)` is the HTTP shape.
 */
export function snakeCaseProperties<P extends Record<string, unknown>>(properties: P): SnakeCaseKeys<P> {
  return Object.fromEntries(Object.entries(properties).map(([k, v]) => [snakeCase(k), v])) as SnakeCaseKeys<P>
}

/**
 * A request body with camelCase keys, leaving out fields that are undefined (the library's inputs are
 * exact: an absent field is absent, never `undefined`).
 * @example camelCaseKeys({ entity_id: "e1", chatbot_id: undefined }) // { entityId: "e1" }
 */
export function camelCaseKeys<T extends object>(body: T): CamelCaseKeys<T> {
  const result: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(body)) if (value !== undefined) result[camelKey(key)] = value
  return result as CamelCaseKeys<T>
}

/**
 * Key names repeat on every request of the hot path, and the schemas admit only their own: remembered
 * (a bounded map, in case a caller's body ever brings names of its own).
 */
const CAMEL_KEYS = new Map<string, string>()
function camelKey(key: string): string {
  let camel = CAMEL_KEYS.get(key)
  if (camel === undefined) {
    camel = camelCase(key)
    if (CAMEL_KEYS.size < 1024) CAMEL_KEYS.set(key, camel)
  }
  return camel
}

/**
 * A domain value as the API writes it: keys in snake_case at every depth, instants as RFC 3339 strings.
 * Record keys that are already snake_case (channels, denial reasons) are unchanged.
 */
export type WireForm<T> = T extends Date
  ? string
  : T extends readonly (infer Item)[]
    ? WireForm<Item>[]
    : T extends object
      ? { [K in keyof T as K extends string ? SnakeCase<K> : K]: WireForm<T[K]> }
      : T

/**
 * {@link WireForm} at run time: for answers that are plain data (objects, arrays, Dates, primitives).
 * @example wireForm({ generatedAt: new Date(0), peakUsageHour: null }) // { generated_at: "1970-01-01T00:00:00.000Z", peak_usage_hour: null }
 */
export function wireForm<T>(value: T): WireForm<T> {
  return toWire(value) as WireForm<T>
}

function toWire(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(toWire)
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [snakeCase(k), toWire(v)]))
  }
  return value
}
