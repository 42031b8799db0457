/**
 * Two rules for what arrives in a URL, applied once for every route:
 * - a UUID is one value however it is spelled: path parameters and query values holding a UUID are lower-cased
 *   before anything reads them, so an upper-case id means the same subscription to its own key (compared as
 *   a string) as to the admin (compared by PostgreSQL);
 * - an integer in a query string or path is decimal digits and nothing else. TypeBox's conversion would read
 *   `0x10` as 16, `1.5` as 1 and ` 5` as 5, so a mistyped parameter would quietly mean something else.
 */
import { TypeBoxValidatorCompiler } from "@fastify/type-provider-typebox"
import type { FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from "fastify"
import type { TSchema } from "typebox"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Optional minus, then digits without a leading zero. No sign, spaces, exponent, point or radix prefix. */
const DECIMAL_INTEGER = /^-?(?:0|[1-9][0-9]*)$/

function lowerCaseUuids(values: unknown): void {
  if (!values || typeof values !== "object") return
  const record = values as Record<string, unknown>
  for (const [name, value] of Object.entries(record)) {
    if (typeof value === "string" && UUID.test(value)) record[name] = value.toLowerCase()
  }
}

/** A preValidation hook: UUIDs in the path and the query string in their canonical, lower-case form. */
export async function canonicalUuids(request: FastifyRequest): Promise<void> {
  lowerCaseUuids(request.params)
  lowerCaseUuids(request.query)
}

/** Names of the object schema's properties that are integers (directly, or as the only non-null branch). */
function integerProperties(schema: unknown): string[] {
  if (!schema || typeof schema !== "object") return []
  const properties = (schema as { properties?: unknown }).properties
  if (!properties || typeof properties !== "object") return []
  return Object.entries(properties as Record<string, unknown>)
    .filter(([, property]) => isInteger(property))
    .map(([name]) => name)
}

function isInteger(schema: unknown): boolean {
  if (!schema || typeof schema !== "object") return false
  const { type, anyOf } = schema as { type?: unknown; anyOf?: unknown }
  if (type === "integer") return true
  if (Array.isArray(anyOf)) return anyOf.some(isInteger)
  return false
}

function notAnInteger(name: string): FastifySchemaValidationError[] {
  return [
    {
      keyword: "type",
      instancePath: `/${name}`,
      schemaPath: `#/properties/${name}/type`,
      params: { type: "integer" },
      message: "must be a whole number written in decimal digits, at most 2^53 - 1",
    },
  ]
}

/**
 * TypeBox's validator compiler, with strict integers in the query string, the path and the headers (bodies
 * are JSON, whose numbers are already typed).
 * @example app.setValidatorCompiler(strictValidatorCompiler)
 */
export const strictValidatorCompiler: FastifySchemaCompiler<TSchema> = (route) => {
  const inner = TypeBoxValidatorCompiler(route)
  if (route.httpPart === "body") return inner
  const integers = integerProperties(route.schema)
  if (integers.length === 0) return inner
  return (data: unknown) => {
    const values = data && typeof data === "object" ? (data as Record<string, unknown>) : {}
    for (const name of integers) {
      const raw = values[name]
      if (raw === undefined) continue
      const ok = typeof raw === "string" && DECIMAL_INTEGER.test(raw) && Number.isSafeInteger(Number(raw))
      if (!ok) return { error: notAnInteger(name) }
    }
    return inner(data)
  }
}
