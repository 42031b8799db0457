/**
 * CSV export, one mechanism for every list and analytics operation: an operation that declares the `format`
 * query parameter (`FormatParameter`) answers `text/csv` when asked with `?format=csv` or an `Accept`
 * header that prefers `text/csv`, and JSON otherwise. The rows go out as a stream: a list that pages
 * through the database hands over an async iterable and never holds more than one page in memory.
 *
 * Columns are derived from the TypeBox schema of one item of the JSON answer, so the header row names the
 * documented fields: nested objects are flattened with dots (`growth.tokens_used`), a list of scalars is one
 * field with its values joined by spaces (`event_types`, `channels`), lists of objects are left out (each
 * has its own operation or `table`: a channel's trends, a session's turns, a journey's transitions).
 *
 * Errors found before the first row are the usual JSON envelope; a failure after the header was sent can
 * only cut the response short (the status is gone), and is logged.
 */
import { Readable } from "node:stream"
import type { FastifyReply, FastifyRequest } from "fastify"
import { type TSchema, Type } from "typebox"
import { OneOf } from "../meter/inputs.js"

/** The `format` query parameter of an exportable operation. */
export const FormatParameter = {
  format: Type.Optional(
    OneOf(
      ["json", "csv"] as const,
      "csv answers text/csv (as does `Accept: text/csv`): a header row naming the JSON fields, then one row per item, streamed.",
    ),
  ),
}

/** The query of a list operation whose only parameter is `format`. */
export const FormatQuery = Type.Object(FormatParameter, { additionalProperties: false })

/** One CSV column: its header and how to read it from a row. */
export interface CsvColumn {
  name: string
  value: (row: unknown) => unknown
}

/** Whether the request asks for CSV: `?format=csv`, or an `Accept` header preferring `text/csv` to JSON. */
export function wantsCsv(request: FastifyRequest): boolean {
  const format = (request.query as { format?: unknown } | undefined)?.format
  if (format === "csv") return true
  if (format === "json") return false
  const accept = request.headers.accept
  if (typeof accept !== "string") return false
  let csv = 0
  let json = 0
  for (const part of accept.split(",")) {
    const [type = "", ...params] = part.trim().toLowerCase().split(";")
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith("q="))
    const q = qParam === undefined ? 1 : Number(qParam.slice(2))
    if (!Number.isFinite(q)) continue
    if (type.trim() === "text/csv") csv = Math.max(csv, q)
    else if (["application/json", "application/*", "*/*"].includes(type.trim())) json = Math.max(json, q)
  }
  return csv > 0 && csv > json
}

/**
 * The columns of an item schema (a TypeBox object): scalars by name, nested objects flattened with dots,
 * lists of scalars as one field (values joined by a space), lists of objects left out.
 * @example csvColumns(Type.Object({ a: Type.Integer(), b: Type.Object({ c: Type.String() }) })) // a, b.c
 */
export function csvColumns(
  schema: TSchema,
  prefix = "",
  read: (row: unknown) => unknown = (r) => r,
): CsvColumn[] {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties ?? {}
  const columns: CsvColumn[] = []
  for (const [key, property] of Object.entries(properties)) {
    const name = prefix ? `${prefix}.${key}` : key
    const value = (row: unknown) => {
      const parent = read(row)
      return parent !== null && typeof parent === "object"
        ? (parent as Record<string, unknown>)[key]
        : undefined
    }
    const kind = schemaKind(property)
    if (kind === "array") {
      if (scalarItems(property)) columns.push({ name, value: (row) => joined(value(row)) })
      continue
    }
    if (kind === "object") columns.push(...csvColumns(objectBranch(property), name, value))
    else columns.push({ name, value })
  }
  return columns
}

/** The type of a schema, seeing through Nullable (a union with null). */
function schemaKind(schema: TSchema): string | undefined {
  const s = schema as { type?: unknown; anyOf?: TSchema[]; properties?: unknown }
  if (s.anyOf) {
    const branch = s.anyOf.find((b) => (b as { type?: unknown }).type !== "null")
    return branch ? schemaKind(branch) : "null"
  }
  // An object without named properties (a record) is one field: its JSON.
  if (s.type === "object") return s.properties ? "object" : "record"
  return typeof s.type === "string" ? s.type : undefined
}

/** Whether a (possibly nullable) array schema holds scalars: strings, numbers or booleans. */
function scalarItems(schema: TSchema): boolean {
  const s = schema as { anyOf?: TSchema[]; items?: TSchema }
  const array = s.anyOf ? s.anyOf.find((b) => (b as { type?: unknown }).type === "array") : schema
  const items = (array as { items?: TSchema } | undefined)?.items
  const kind = items ? schemaKind(items) : undefined
  return kind === "string" || kind === "integer" || kind === "number" || kind === "boolean"
}

/** A list of scalars as one field: its values joined by a space; null stays null. */
function joined(value: unknown): unknown {
  return Array.isArray(value) ? value.map((v) => String(v)).join(" ") : value
}

function objectBranch(schema: TSchema): TSchema {
  const s = schema as { anyOf?: TSchema[] }
  return s.anyOf?.find((b) => (b as { type?: unknown }).type === "object") ?? schema
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break; a text starting with
 * `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so a spreadsheet does not run it as a
 * formula (end-user text reaches these files). Null is empty; objects are their JSON.
 * @example csvField('say "hi"') // "\"say \"\"hi\"\"\""
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return ""
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint")
    return String(value)
  let text = typeof value === "string" ? value : JSON.stringify(value)
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** A CSV line of `row` (with CRLF, as RFC 4180 writes it). */
export function csvLine(columns: readonly CsvColumn[], row: unknown): string {
  return `${columns.map((column) => csvField(column.value(row))).join(",")}\r\n`
}

const CHUNK_BYTES = 64 * 1024

async function* lines(
  columns: readonly CsvColumn[],
  rows: Iterable<unknown> | AsyncIterable<unknown>,
): AsyncGenerator<string> {
  let chunk = `${columns.map((column) => csvField(column.name)).join(",")}\r\n`
  for await (const row of rows) {
    chunk += csvLine(columns, row)
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk
      chunk = ""
    }
  }
  if (chunk) yield chunk
}

/**
 * Answers `rows` as a streamed CSV download named `<filename>.csv`. The first page is read before the
 * status is sent, so an error there (a bad cursor, a lost database) is still the JSON envelope.
 * @example
 * if (wantsCsv(request)) return sendCsv(reply, "turns", csvColumns(TurnSchema), service.stream(...))
 */
export async function sendCsv(
  reply: FastifyReply,
  filename: string,
  columns: readonly CsvColumn[],
  rows: Iterable<unknown> | AsyncIterable<unknown>,
): Promise<FastifyReply> {
  const source = lines(columns, rows)
  const first = await source.next()
  async function* rest(): AsyncGenerator<string> {
    if (!first.done) yield first.value
    yield* source
  }
  const stream = Readable.from(rest(), { objectMode: false })
  stream.on("error", (error) => reply.log.error({ err: error }, "CSV export stopped part-way"))
  return reply
    .header("Content-Type", "text/csv; charset=utf-8")
    .header("Content-Disposition", `attachment; filename="${filename.replace(/[^\w.-]/g, "_")}.csv"`)
    .header("Vary", "Accept")
    .send(stream)
}

type OpenApiNode = Record<string, unknown>

/**
 * Adds `text/csv` to the 200 answer of every operation that takes the `format` parameter, in the OpenAPI
 * document (Fastify's response schemas describe the JSON only).
 * @example await app.register(swagger, { openapi: {...}, transformObject: ({ openapiObject }) => documentCsvResponses(openapiObject) })
 */
export function documentCsvResponses<T>(document: T): T {
  const paths = ((document as OpenApiNode).paths ?? {}) as Record<string, Record<string, OpenApiNode>>
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      const parameters = (operation.parameters ?? []) as OpenApiNode[]
      if (!parameters.some((p) => p.in === "query" && p.name === "format")) continue
      const ok = (operation.responses as Record<string, OpenApiNode> | undefined)?.["200"]
      const content = ok?.content as Record<string, unknown> | undefined
      if (!content) continue
      content["text/csv"] = {
        schema: {
          type: "string",
          description:
            "A header row naming the JSON fields (nested ones with dots, arrays left out), then one row per item (RFC 4180, CRLF).",
        },
      }
    }
  }
  return document
}
