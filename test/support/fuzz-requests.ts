/**
 * Requests generated from the OpenAPI document's own schemas, valid and mutated, as fast-check arbitraries.
 *
 * Every operation the document lists gets requests built from its path, query and header parameters and its
 * JSON body schema: valid values (within the schema's bounds, with the fixtures' real ids mixed in so that
 * requests reach the code behind the validation), and mutations — a wrong type, an edge number, U+0000, a
 * lone surrogate, a huge string, an edge date, a missing or an extra field, a bad id, a bad query value, a
 * bad header. Fixture values are symbolic (`@@name@@`) and resolved when the request is sent, so a fixture
 * that a generated request deleted can be replaced without regenerating anything.
 */
import fc from "fast-check"

export interface JsonSchema {
  type?: string | string[]
  enum?: unknown[]
  const?: unknown
  format?: string
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  minLength?: number
  maxLength?: number
  items?: JsonSchema
  minItems?: number
  maxItems?: number
  uniqueItems?: boolean
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
  minProperties?: number
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  $ref?: string
}

interface Parameter {
  in: "path" | "query" | "header"
  name: string
  required?: boolean
  schema: JsonSchema
}

export interface Operation {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  /** The OpenAPI path, e.g. /api/subscriptions/{id}. */
  path: string
  parameters: Parameter[]
  body?: JsonSchema
  /** The media type the operation reads, when it reads a body. */
  consumes?: string
}

export type Caller = "admin" | "subscription" | "none" | "malformed"

export interface GeneratedRequest {
  operation: string
  caller: Caller
  method: Operation["method"]
  /** Path and query, with `@@fixture@@` placeholders. */
  url: string
  headers: Record<string, string>
  /** The raw body text (JSON or NDJSON, possibly broken on purpose), with placeholders. */
  body?: string
  /** Whether anything in the request was mutated on purpose. */
  mutated: boolean
}

type Json = Record<string, unknown>

/** Reads the operations out of an OpenAPI 3.1 document (the one the app serves at /openapi.json). */
export function operationsOf(document: Json): Operation[] {
  const operations: Operation[] = []
  for (const [path, item] of Object.entries((document.paths ?? {}) as Record<string, Json>)) {
    for (const [method, raw] of Object.entries(item)) {
      const op = raw as Json
      const content = ((op.requestBody as Json | undefined)?.content ?? {}) as Record<string, Json>
      const [consumes, media] = Object.entries(content)[0] ?? []
      operations.push({
        method: method.toUpperCase() as Operation["method"],
        path,
        parameters: (op.parameters ?? []) as Parameter[],
        ...(media?.schema ? { body: media.schema as JsonSchema } : {}),
        ...(consumes ? { consumes } : {}),
      })
    }
  }
  return operations
}

/** How many places a request to the operation can carry a value: parameters and top-level body fields. */
export function surfaceOf(operation: Operation): number {
  const fields = Object.keys(operation.body?.properties ?? {}).length
  // The import's lines carry eleven documented fields, though the document has no schema for a stream.
  const importFields = operation.path === "/api/usage/import" ? 11 : 0
  return operation.parameters.length + fields + importFields
}

/** The import reads NDJSON, which its description names; the document has no body schema for a stream. */
function importType(operation: Operation): string | undefined {
  return operation.path === "/api/usage/import" ? "application/x-ndjson" : undefined
}

/** Values for a named field or parameter that reach real rows: `@@name@@` placeholders and literals. */
export type Hints = Readonly<Record<string, readonly string[]>>

const EDGE_DATE_TIMES = [
  "0000-01-01T00:00:00Z",
  "0001-01-01T00:00:00Z",
  "0001-01-01T00:00:00+14:00",
  "1969-12-31T23:59:59Z",
  "1970-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "9999-12-31T23:59:59-14:00",
  "+275760-09-13T00:00:00Z",
  "2026-02-30T00:00:00Z",
  "2026-13-01T00:00:00Z",
  "2026-06-15T25:00:00Z",
  "2026-06-15T12:00:00+14:00",
  "2026-06-15T12:00:00-12:00",
  "2026-06-15T12:00:00.123456789Z",
  "2026-06-15",
  "2026-06-15T12:00:00",
  "not a date",
  "",
]
const EDGE_DATES = [
  "0000-01-01",
  "0001-01-01",
  "0001-01-05",
  "1970-01-01",
  "9999-12-31",
  "9999-12-30",
  "2026-02-29",
  "2024-02-29",
  "2026-00-10",
  "26-06-15",
  "2026-6-5",
  "2026-06-15T00:00:00Z",
  "",
]
const EDGE_NUMBERS: unknown[] = [
  0,
  -1,
  1,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e308,
  -1e308,
  5e-324,
  1.5,
  0.001,
  -0.5,
  "0x10",
  "1e308",
  "NaN",
  "Infinity",
  "-0",
  "1.5",
  " 5",
  "9223372036854775808",
]
const NASTY_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\udc00\ud800",
  "😀",
  "\u202e\u0000\uffff",
  "\uFEFF",
  "A".repeat(256),
  "é".repeat(300),
  "../../etc/passwd",
  "'; drop table subscriptions; --",
  "%00",
  "\\u0000",
  "\n\r\t",
  "null",
]
const WRONG_TYPES: unknown[] = [null, true, false, [], [1, "a"], {}, { $ne: 1 }, 0, "x", -1, 1.5]

const huge = fc.constantFrom(70_000, 300_000).map((n) => "A".repeat(n))

const BAD_UUIDS = [
  "not-a-uuid",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "00000000-0000-4000-8000-00000000000g",
  "{00000000-0000-4000-8000-000000000000}",
  "00000000000040008000000000000000",
  " 00000000-0000-4000-8000-000000000000",
  "00000000-0000-4000-8000-000000000000\u0000",
]

function typeOf(schema?: JsonSchema): string | undefined {
  return Array.isArray(schema?.type) ? schema?.type[0] : schema?.type
}

/**
 * A hostile value aimed at the field's type: for a string U+0000, lone surrogates, one character past its
 * length, a huge string, an edge date; for a number the edges (0, -1, 2^53, 1e308, NaN and hex strings);
 * sometimes a value of another type altogether.
 */
export function hostileValue(schema?: JsonSchema): fc.Arbitrary<unknown> {
  const type = typeOf(schema)
  const anything = fc.oneof(
    fc.constantFrom(...NASTY_STRINGS),
    fc.constantFrom(...EDGE_NUMBERS),
    fc.constantFrom(...WRONG_TYPES),
    fc.string({ unit: "binary", maxLength: 40 }),
  )
  const targeted: fc.Arbitrary<unknown>[] = []
  if (type === "string" || schema?.enum) {
    targeted.push(fc.constantFrom("\u0000", "a\u0000b", "\ud800", "x\udfffy", "\udc00", "😀\u0000", "\uffff"))
    targeted.push(fc.constantFrom(...NASTY_STRINGS))
    if (schema?.maxLength !== undefined) {
      const n = schema.maxLength
      targeted.push(fc.constantFrom("x".repeat(n + 1), "x".repeat(n), "😀".repeat(Math.min(n, 5000))))
    }
    if (schema?.format === "date-time") targeted.push(fc.constantFrom(...EDGE_DATE_TIMES))
    if (schema?.format === "uuid") targeted.push(fc.constantFrom(...BAD_UUIDS))
    const first = schema?.enum?.[0]
    if (first !== undefined) {
      const text = String(first)
      targeted.push(fc.constantFrom(text.toUpperCase(), ` ${text}`, `${text}\u0000`, `${text}x`, ""))
    }
  }
  if (type === "integer" || type === "number") {
    targeted.push(fc.constantFrom(...EDGE_NUMBERS))
    const bounds: number[] = []
    if (schema?.minimum !== undefined) bounds.push(schema.minimum - 1, schema.minimum)
    if (schema?.maximum !== undefined) bounds.push(schema.maximum + 1, schema.maximum)
    if (bounds.length > 0) targeted.push(fc.constantFrom(...bounds))
  }
  if (type === "array") {
    targeted.push(
      fc.constantFrom<unknown>(
        [],
        [null],
        ["\u0000"],
        [1e308],
        Array.from({ length: 1000 }, () => 0.5),
      ),
    )
  }
  if (type === "boolean") targeted.push(fc.constantFrom<unknown>("true", 1, 0, null, "false"))
  return fc.oneof(
    { weight: 6, arbitrary: targeted.length > 0 ? fc.oneof(...targeted) : anything },
    { weight: 2, arbitrary: anything },
    { weight: 1, arbitrary: huge },
  )
}

/** Generates values valid against an OpenAPI schema (bounded sizes), preferring hinted fixture values. */
export class SchemaArbitraries {
  /**
   * @param hints valid values by field name (fixtures' ids, zones, channels)
   * @param hostileHints hostile values by field name that the schema alone cannot suggest (a date range's
   *   edges for a `from` typed as a plain string, a 64-bit overflow for a `before`)
   */
  constructor(
    private readonly components: Record<string, JsonSchema>,
    private readonly hints: Hints,
    private readonly hostileHints: Hints = {},
  ) {}

  resolve(schema: JsonSchema): JsonSchema {
    if (!schema.$ref) return schema
    const name = schema.$ref.split("/").at(-1) ?? ""
    return this.components[name] ?? {}
  }

  valid(raw: JsonSchema, name?: string): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw)
    const hinted = name ? this.hints[name] : undefined
    const plain = this.plain(schema)
    if (!hinted?.length) return plain
    return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...hinted) }, { weight: 1, arbitrary: plain })
  }

  /** A value for the field: usually valid, sometimes hostile. */
  field(schema: JsonSchema, name: string, hostileWeight: number): fc.Arbitrary<unknown> {
    if (hostileWeight === 0) return this.valid(schema, name)
    return fc.oneof(
      { weight: 10 - hostileWeight, arbitrary: this.valid(schema, name) },
      { weight: hostileWeight, arbitrary: this.hostile(schema, name) },
    )
  }

  /** A hostile value for the field, sometimes its valid value with U+0000 or a lone surrogate inside. */
  hostile(raw: JsonSchema, name?: string): fc.Arbitrary<unknown> {
    const schema = this.resolve(raw)
    const spoiled = fc
      .tuple(this.valid(schema, name), fc.constantFrom("\u0000", "\ud800", "\udfff"))
      .map(([value, bad]) => (typeof value === "string" ? `${value}${bad}` : value))
    const general = fc.oneof(
      { weight: 4, arbitrary: hostileValue(schema) },
      { weight: 1, arbitrary: spoiled },
    )
    const named = name ? this.hostileHints[name] : undefined
    if (!named?.length) return general
    return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...named) }, { weight: 1, arbitrary: general })
  }

  private plain(schema: JsonSchema): fc.Arbitrary<unknown> {
    const branches = schema.anyOf ?? schema.oneOf
    if (branches?.length) return fc.oneof(...branches.map((branch) => this.valid(branch)))
    if (schema.enum?.length) return fc.constantFrom(...schema.enum)
    if (schema.const !== undefined) return fc.constant(schema.const)
    const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
    switch (type) {
      case "string":
        return this.string(schema)
      case "integer": {
        const min = Math.max(schema.minimum ?? -1_000_000, Number.MIN_SAFE_INTEGER)
        const max = Math.min(schema.maximum ?? 1_000_000, Number.MAX_SAFE_INTEGER)
        const small = fc.integer({ min, max: Math.min(max, Math.max(min, 0) + 5000) })
        return fc.oneof({ weight: 3, arbitrary: small }, fc.integer({ min, max }))
      }
      case "number": {
        const min = schema.exclusiveMinimum ?? schema.minimum ?? -1_000_000
        const max = schema.maximum ?? 1_000_000
        const low = Math.ceil(min * 100 + (schema.exclusiveMinimum !== undefined ? 1 : 0))
        // Two decimals, as multipliers and thresholds are given; sometimes more.
        return fc.oneof(
          fc.integer({ min: low, max: Math.floor(max * 100) }).map((n) => n / 100),
          fc.double({ min: Math.max(min, -1e6), max: Math.min(max, 1e6), noNaN: true }),
        )
      }
      case "boolean":
        return fc.boolean()
      case "null":
        return fc.constant(null)
      case "array": {
        const item = schema.items ? this.valid(schema.items) : fc.string()
        // At most 5 items, unless the schema asks for more.
        const minLength = schema.minItems ?? 0
        const constraints = { minLength, maxLength: Math.max(minLength, Math.min(schema.maxItems ?? 5, 5)) }
        return schema.uniqueItems
          ? fc.uniqueArray(item, { ...constraints, selector: (v) => JSON.stringify(v) })
          : fc.array(item, constraints)
      }
      case "object":
        return this.object(schema, 0)
      default:
        return fc.anything({ maxDepth: 1 })
    }
  }

  private string(schema: JsonSchema): fc.Arbitrary<string> {
    if (schema.format === "uuid") return fc.uuid()
    if (schema.format === "date-time") {
      return fc
        .integer({ min: Date.parse("2025-01-01T00:00:00Z"), max: Date.parse("2027-12-31T00:00:00Z") })
        .map((ms) => new Date(ms).toISOString())
    }
    const minLength = schema.minLength ?? 0
    const maxLength = Math.max(minLength, Math.min(schema.maxLength ?? 40, 40))
    return fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .stringMatching(/^[a-z0-9_.:-]+$/)
          .filter((s) => s.length >= minLength && s.length <= maxLength),
      },
      { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength, maxLength }) },
    )
  }

  /** An object with its required fields and some optional ones; `hostileWeight` of 10 mutates fields. */
  object(schema: JsonSchema, hostileWeight: number): fc.Arbitrary<Json> {
    const properties = schema.properties ?? {}
    const required = new Set(schema.required ?? [])
    const entries = Object.entries(properties).map(
      ([name, property]) => [name, this.field(property, name, hostileWeight)] as const,
    )
    return fc
      .record(Object.fromEntries(entries), { requiredKeys: [...required] })
      .map((value) => value as Json)
      .filter((value) => Object.keys(value).length >= (schema.minProperties ?? 0))
  }
}

/** Percent-encodes like encodeURIComponent, but writes a lone surrogate as its (invalid) UTF-8 bytes. */
export function encodeLoosely(value: string): string {
  let out = ""
  for (let i = 0; i < value.length; i += 1) {
    const unit = value.charCodeAt(i)
    const next = value.charCodeAt(i + 1)
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(value.slice(i, i + 2))
      i += 1
    } else if (unit >= 0xd800 && unit <= 0xdfff) {
      const bytes = [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
      out += bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join("")
    } else {
      out += encodeURIComponent(value[i] ?? "")
    }
  }
  return out
}

function stringify(value: unknown): string {
  return typeof value === "string" ? value : (JSON.stringify(value) ?? "")
}

const QUERY_EXTRAS: fc.Arbitrary<string>[] = [
  fc.constant("unknown=1"),
  fc.constant("limit=1&limit=2"),
  fc.constant("%zz=1"),
  fc.constant("before=%00"),
  fc.constant("a[b]=c"),
  fc.constant("from=9999-12-31&to=9999-12-31"),
  fc.constant("from=0001-01-01&to=0001-01-05"),
]

const MALFORMED_AUTH = [
  "Bearer",
  "Bearer ",
  "Basic dXNlcjpwYXNz",
  "bearer om_sk_nope",
  `Bearer ${"x".repeat(5000)}`,
  "Bearer om_sk_\u00ff\u00fe",
  "Bearer a b c",
  "Token om_admin_test_key",
]

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/x-ndjson",
  "text/plain",
  "application/xml",
  "multipart/form-data; boundary=x",
  "application/json; charset=latin1",
  "",
]

/** A broken JSON text, an empty body, or the right body as a different type. */
const BROKEN_BODIES: fc.Arbitrary<string>[] = [
  fc.constantFrom("{", '{"a":}', "[", "null", "true", "12", '"x"', "", " ", '{"__proto__":{"x":1}}'),
  fc.constantFrom(
    '{"constructor":{"prototype":{"x":1}}}',
    "\u0000",
    '{"a":"\\ud800"}',
    "[[[[[[[[[[]]]]]]]]]]",
  ),
  fc.constant(`{"pad":"${"A".repeat(1_100_000)}"}`),
]

export interface RequestModel {
  schemas: SchemaArbitraries
  channels: readonly string[]
}

/** Where one focused mutation lands. */
interface Location {
  kind: "path" | "query" | "header" | "body"
  name: string
  schema: JsonSchema
}

type Mode = "valid" | "mutate" | "chaos"

/**
 * The request for one operation. Most requests are valid, or valid but for exactly one hostile value
 * (the way a single bad field reaches the code behind validation); the rest are chaos: a broken body, a
 * wrong media type, a malformed key, unknown or repeated query parameters, a missing or extra field.
 */
export function requestFor(operation: Operation, model: RequestModel): fc.Arbitrary<GeneratedRequest> {
  const { schemas } = model
  const pathParams = operation.parameters.filter((p) => p.in === "path")
  const queryParams = operation.parameters.filter((p) => p.in === "query")
  const headerParams = operation.parameters.filter((p) => p.in === "header")
  const bodySchema = operation.body ? schemas.resolve(operation.body) : undefined
  const locations: Location[] = [
    ...operation.parameters.map((p) => ({ kind: p.in, name: p.name, schema: p.schema })),
    ...Object.entries(bodySchema?.properties ?? {}).map(([name, schema]) => ({
      kind: "body" as const,
      name,
      schema,
    })),
  ]
  const mutation =
    locations.length === 0
      ? fc.constant(undefined)
      : fc.integer({ min: 0, max: locations.length - 1 }).chain((i) => {
          const location = locations[i] as Location
          const value =
            location.kind === "body"
              ? schemas.hostile(location.schema, location.name)
              : fc.oneof(
                  { weight: 3, arbitrary: schemas.hostile(location.schema, location.name).map(stringify) },
                  { weight: 2, arbitrary: fc.constantFrom(...EDGE_NUMBERS.map(String), ...EDGE_DATES) },
                )
          return value.map((v) => ({ location, value: v }))
        })

  const optionalQuery = (p: Parameter) =>
    fc.option(schemas.valid(p.schema, p.name).map(stringify), { nil: undefined, freq: 2 })
  const body = bodySchema ? schemas.object(bodySchema, 0) : fc.constant<Json | undefined>(undefined)

  return fc
    .record({
      mode: fc.constantFrom<Mode>("valid", "valid", "mutate", "mutate", "mutate", "chaos"),
      caller: fc.constantFrom<Caller>(
        "admin",
        "admin",
        "admin",
        "subscription",
        "subscription",
        "none",
        "malformed",
      ),
      malformed: fc.constantFrom(...MALFORMED_AUTH),
      path: fc.tuple(...pathParams.map((p) => schemas.valid(p.schema, p.name).map(stringify))),
      query: fc.tuple(...queryParams.map(optionalQuery)),
      headers: fc.tuple(
        // Optional headers are mostly absent: a header that must agree with a body field (Idempotency-Key)
        // would otherwise turn most valid requests into a conflict.
        ...headerParams.map((p) =>
          fc.oneof(
            { weight: 4, arbitrary: fc.constant(undefined) },
            { weight: 1, arbitrary: schemas.valid(p.schema, p.name).map(stringify) },
          ),
        ),
      ),
      body,
      mutation,
      chaos: fc.record({
        queryExtra: fc.option(fc.oneof(...QUERY_EXTRAS), { nil: undefined }),
        contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined }),
        brokenBody: fc.option(
          fc.oneof(
            ...BROKEN_BODIES,
            hostileValue().map((value) => JSON.stringify(value) ?? ""),
          ),
          { nil: undefined },
        ),
        structural: fc.option(fc.tuple(fc.constantFrom("drop", "extra", "null-field", "no-body"), fc.nat()), {
          nil: undefined,
        }),
        requestId: fc.option(
          fc.constantFrom("fuzz-1", "x".repeat(200), "bad id with spaces", "ünïcode", ""),
          { nil: undefined },
        ),
      }),
      importText: operation.path === "/api/usage/import" ? importBody(model) : fc.constant(undefined),
    })
    .map((r) => {
      const pathValues = [...r.path]
      const queryValues: (string | undefined)[] = [...r.query]
      const headerValues: (string | undefined)[] = [...r.headers]
      let bodyValue: unknown = r.body === undefined ? undefined : { ...r.body }
      let bodyText: string | undefined
      if (r.mode === "mutate" && r.mutation) {
        const { location, value } = r.mutation
        const text = stringify(value)
        if (location.kind === "path") pathValues[pathParams.findIndex((p) => p.name === location.name)] = text
        if (location.kind === "query")
          queryValues[queryParams.findIndex((p) => p.name === location.name)] = text
        if (location.kind === "header")
          headerValues[headerParams.findIndex((p) => p.name === location.name)] = text
        if (location.kind === "body" && bodyValue && typeof bodyValue === "object")
          (bodyValue as Json)[location.name] = value
      }
      const chaos = r.mode === "chaos" ? r.chaos : undefined
      if (chaos?.structural && bodySchema && bodyValue && typeof bodyValue === "object") {
        const [how, n] = chaos.structural
        const names = Object.keys(bodySchema.properties ?? {})
        const required = bodySchema.required ?? names
        const copy = bodyValue as Json
        if (how === "drop") delete copy[required[n % Math.max(1, required.length)] ?? "x"]
        if (how === "extra") copy[n % 2 === 0 ? "unexpected_field" : `${names[0] ?? "x"}_`] = "x"
        if (how === "null-field") copy[names[n % Math.max(1, names.length)] ?? "x"] = null
        if (how === "no-body") bodyValue = undefined
      }
      if (bodyValue !== undefined) bodyText = JSON.stringify(bodyValue)
      if (r.importText !== undefined) bodyText = r.importText
      if (chaos?.brokenBody !== undefined && (bodySchema || r.importText !== undefined))
        bodyText = chaos.brokenBody

      let path = operation.path
      pathParams.forEach((p, i) => {
        path = path.replace(`{${p.name}}`, encodeLoosely(pathValues[i] ?? ""))
      })
      const query = queryParams
        .map((p, i) =>
          queryValues[i] === undefined ? undefined : `${p.name}=${encodeLoosely(queryValues[i] ?? "")}`,
        )
        .filter((part): part is string => part !== undefined)
      if (chaos?.queryExtra) query.push(chaos.queryExtra)
      const headers: Record<string, string> = {}
      headerParams.forEach((p, i) => {
        const value = headerValues[i]
        // A header cannot carry control characters or lone surrogates on the wire; a client would have to
        // encode them, so they are sent percent-encoded.
        if (value !== undefined) headers[p.name] = /^[\x20-\x7e]*$/.test(value) ? value : encodeLoosely(value)
      })
      if (chaos?.requestId !== undefined) headers["x-request-id"] = chaos.requestId
      if (bodyText !== undefined)
        headers["content-type"] =
          chaos?.contentType ?? operation.consumes ?? importType(operation) ?? "application/json"
      if (r.caller === "malformed") headers.authorization = r.malformed
      return {
        operation: `${operation.method} ${operation.path}`,
        caller: r.caller,
        method: operation.method,
        url: query.length > 0 ? `${path}?${query.join("&")}` : path,
        headers,
        ...(bodyText !== undefined ? { body: bodyText } : {}),
        mutated: r.mode !== "valid" || r.importText !== undefined,
      }
    })
}

/**
 * The import's body: NDJSON lines as its documented fields describe them (the document carries no JSON
 * schema for a stream), valid lines mixed with hostile ones, broken JSON and blank lines.
 */
function importBody(model: RequestModel): fc.Arbitrary<string> {
  const lineSchema: JsonSchema = {
    type: "object",
    required: ["channel", "created_at", "raw_tokens"],
    properties: {
      subscription_id: { type: "string", format: "uuid" },
      entity_id: { type: "string", minLength: 1, maxLength: 255 },
      entity_type: { type: "string", minLength: 1, maxLength: 64 },
      channel: { type: "string", enum: [...model.channels] },
      created_at: { type: "string", format: "date-time" },
      raw_tokens: { type: "integer", minimum: 0, maximum: 10_000_000 },
      chatbot_id: { type: "string", minLength: 1, maxLength: 255 },
      session_id: { type: "string", minLength: 1, maxLength: 255 },
      user_identifier: { type: "string", minLength: 1, maxLength: 255 },
      operation_type: { type: "string", minLength: 1, maxLength: 64 },
      idempotency_key: { type: "string", minLength: 1, maxLength: 255 },
    },
  }
  const oneBad = fc
    .tuple(model.schemas.object(lineSchema, 0), fc.constantFrom(...Object.keys(lineSchema.properties ?? {})))
    .chain(([value, name]) =>
      model.schemas
        .hostile(lineSchema.properties?.[name] ?? {}, name)
        .map((bad) => JSON.stringify({ ...value, [name]: bad })),
    )
  const line = fc.oneof(
    { weight: 6, arbitrary: model.schemas.object(lineSchema, 0).map((v) => JSON.stringify(v)) },
    { weight: 3, arbitrary: oneBad },
    { weight: 1, arbitrary: fc.constantFrom("", "{", "[]", "null", "\u0000", '{"channel":"website"}') },
  )
  return fc.oneof(
    {
      weight: 9,
      arbitrary: fc
        .tuple(fc.array(line, { minLength: 1, maxLength: 12 }), fc.constantFrom("\n", "\r\n"))
        .map(([lines, eol]) => lines.join(eol)),
    },
    { weight: 1, arbitrary: fc.oneof(...BROKEN_BODIES) },
  )
}
