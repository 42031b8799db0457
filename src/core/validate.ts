import type { Static, TSchema } from "typebox"
import { Compile } from "typebox/compile"
import { Value } from "typebox/value"
import { ValidationError } from "./errors.js"
import { formatMessage } from "./formats.js"

function fieldOf(instancePath: string, params: unknown): string {
  const path = instancePath.replace(/^\//, "").replaceAll("/", ".")
  const extra = (params as { additionalProperties?: unknown; requiredProperties?: unknown } | undefined) ?? {}
  const names = (extra.additionalProperties ?? extra.requiredProperties) as string[] | undefined
  if (Array.isArray(names) && names.length > 0) return path ? `${path}.${names[0]}` : String(names[0])
  return path
}

/** Compiled once per schema: the hot path checks every turn, and the compiled check is many times faster. */
const validators = new WeakMap<TSchema, { Check(value: unknown): boolean }>()

function compiled(schema: TSchema): { Check(value: unknown): boolean } {
  let validator = validators.get(schema)
  if (!validator) {
    validator = Compile(schema)
    validators.set(schema, validator)
  }
  return validator
}

/**
 * Checks `value` against `schema` and returns it typed, or throws a {@link ValidationError} naming the
 * first offending field. Used at the library's edge; the HTTP layer validates with the same schemas.
 */
export function validate<S extends TSchema>(schema: S, value: unknown): Static<S> {
  if (compiled(schema).Check(value)) return value as Static<S>
  const errors = [...Value.Errors(schema, value)].filter((e) => e.keyword !== "boolean")
  const first = errors.find((e) => e.keyword !== "anyOf") ?? errors[0]
  if (!first) throw new ValidationError("", "invalid input")
  const field = fieldOf(first.instancePath, first.params)
  const message =
    first.keyword === "additionalProperties"
      ? "is not a known field"
      : first.keyword === "required"
        ? "is required"
        : first.keyword === "format"
          ? (formatMessage((first.params as { format?: unknown }).format) ?? first.message)
          : first.message
  throw new ValidationError(field, message)
}
