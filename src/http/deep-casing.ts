/**
 * snake_case at every depth, for input shapes with nested objects (an experiment's variants and their
 * overrides): `snakeCaseProperties` renames one level, which is all the older inputs need.
 */
import { type TSchema, Type } from "typebox"
import { camelCase, snakeCase } from "../core/casing.js"

interface SchemaShape {
  type?: unknown
  properties?: Record<string, TSchema>
  required?: string[]
  items?: TSchema
  additionalProperties?: unknown
  description?: string
  minItems?: number
  maxItems?: number
  uniqueItems?: boolean
}

/**
 * The schema with every object property renamed to snake_case, bounds and optionality kept.
 * @example snakeCaseSchema(CreateExperimentSchema) // variants[].overrides.token_multiplier, ...
 */
export function snakeCaseSchema(schema: TSchema): TSchema {
  const shape = schema as SchemaShape
  if (shape.type === "object" && shape.properties) {
    const required = new Set(shape.required ?? [])
    const properties = Object.fromEntries(
      Object.entries(shape.properties).map(([name, property]) => {
        const renamed = snakeCaseSchema(property)
        return [snakeCase(name), required.has(name) ? renamed : Type.Optional(renamed)]
      }),
    )
    return Type.Object(properties, {
      ...(shape.additionalProperties === false ? { additionalProperties: false } : {}),
      ...(shape.description ? { description: shape.description } : {}),
    })
  }
  if (shape.type === "array" && shape.items) {
    const { items, type: _type, ...options } = shape
    return Type.Array(snakeCaseSchema(items), options)
  }
  return schema
}

/** A validated body with camelCase keys at every depth (values of arrays included). */
export function camelCaseDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelCaseDeep)
  if (value !== null && typeof value === "object") {
    const result: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value))
      if (item !== undefined) result[camelCase(key)] = camelCaseDeep(item)
    return result
  }
  return value
}
