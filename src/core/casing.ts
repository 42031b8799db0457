/**
 * The one mapping between the library's camelCase and the HTTP API's snake_case. The five input shapes are
 * defined once, in camelCase (src/meter/inputs.ts); the HTTP schemas are derived from them with
 * {@link snakeCaseProperties}, and request bodies come back with {@link camelCaseKeys}. Names are mapped
 * letter by letter, so a field cannot be renamed on one side only.
 */

/** `entityId` to `entity_id`, at the type level. */
export type SnakeCase<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${SnakeCase<Tail>}`
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
 */
export function snakeCase<S extends string>(name: S): SnakeCase<S> {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`) as SnakeCase<S>
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
  return Object.fromEntries(
    Object.entries(body)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [camelCase(k), v]),
  ) as CamelCaseKeys<T>
}
