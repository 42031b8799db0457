/**
 * Checks that a response matches what the OpenAPI document promises for its route, method and status:
 * the document is the contract clients in other languages generate from.
 */
import { Ajv2020 } from "ajv/dist/2020.js"
import addFormats from "ajv-formats"
import type { LightMyRequestResponse } from "fastify"
import { expect } from "vitest"
import type { App } from "../../src/http/types.js"

type Json = Record<string, unknown>

const validators = new WeakMap<App, { document: Json; ajv: InstanceType<typeof Ajv2020> }>()

function contract(app: App) {
  let entry = validators.get(app)
  if (!entry) {
    const document = app.swagger() as unknown as Json
    const ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(ajv)
    const schemas = ((document.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>
    ajv.addSchema({ $id: "openapi", components: { schemas } })
    entry = { document, ajv }
    validators.set(app, entry)
  }
  return entry
}

function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs)
  if (node && typeof node === "object") {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [
        k,
        k === "$ref" && typeof v === "string" ? `openapi${v}` : rewriteRefs(v),
      ]),
    )
  }
  return node
}

/** Asserts `response` matches the documented schema of `route` (the Fastify path, e.g. /api/x/{id}). */
export function expectDocumented(
  app: App,
  method: string,
  route: string,
  response: LightMyRequestResponse,
): void {
  const { document, ajv } = contract(app)
  const path = route.replace(/:(\w+)/g, "{$1}")
  const operation = ((document.paths as Json)[path] as Json | undefined)?.[method.toLowerCase()] as
    | Json
    | undefined
  expect(operation, `${method} ${path} is documented`).toBeDefined()
  const responses = (operation?.responses ?? {}) as Json
  const documented = responses[String(response.statusCode)] as Json | undefined
  expect(documented, `${method} ${path} documents status ${response.statusCode}`).toBeDefined()
  if (String(response.headers["content-type"] ?? "").startsWith("text/csv")) {
    const csv = (documented?.content as Json | undefined)?.["text/csv"]
    expect(csv, `${method} ${path} documents text/csv for status ${response.statusCode}`).toBeDefined()
    return
  }
  const content = (documented?.content as Json | undefined)?.["application/json"] as Json | undefined
  if (!content?.schema) return
  const validate = ajv.compile(rewriteRefs(content.schema) as Json)
  const body = response.body === "" ? null : response.json()
  const ok = validate(body)
  expect(ok, `${method} ${path} ${response.statusCode}: ${JSON.stringify(validate.errors)}`).toBe(true)
}
