/**
 * The OpenAPI document is a contract that clients in other languages generate code from: every operation
 * is named and summarised, errors are the envelope alone, and the checked-in document and the TypeScript
 * client's generated types are exactly what the live server documents (regenerate: `npm run openapi`).
 */
import { readFile } from "node:fs/promises"
import { beforeAll, describe, expect, it } from "vitest"
import { ERROR_CODES } from "../../src/core/errors.js"
import {
  generatedClientTypes,
  liveOpenApiDocument,
  type OpenApiDocument,
} from "../support/openapi-document.js"

type Json = Record<string, unknown>

let document: OpenApiDocument
const operations: Array<{ name: string; operation: Json }> = []

beforeAll(async () => {
  document = await liveOpenApiDocument()
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
    for (const [method, operation] of Object.entries(item)) {
      operations.push({ name: `${method.toUpperCase()} ${path}`, operation })
    }
  }
})

const REGENERATE = "the checked-in copy is stale: run `npm run openapi` and commit the result"

describe("the OpenAPI document", () => {
  it("gives every operation a unique camelCase operationId, a one-line summary and a tag", () => {
    expect(operations.length).toBeGreaterThan(30)
    const unnamed = operations.filter(({ operation }) => typeof operation.operationId !== "string")
    expect(
      unnamed.map(({ name }) => name),
      "routes without an operationId (add one: camelCase verb + noun)",
    ).toEqual([])
    const ids = operations.map(({ operation }) => String(operation.operationId))
    expect(new Set(ids).size).toBe(ids.length)
    for (const { name, operation } of operations) {
      expect(String(operation.operationId), name).toMatch(/^[a-z]+[A-Za-z]*$/)
      expect(String(operation.summary ?? ""), name).toMatch(/^[^\n]{8,120}$/)
      expect(operation.tags, name).toBeInstanceOf(Array)
    }
  })

  it("describes every response in words and documents X-Request-Id on each", () => {
    for (const { name, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        expect(response.description, `${name} ${status}`).not.toBe("Default Response")
        expect((response.headers as Json | undefined)?.["X-Request-Id"], `${name} ${status}`).toBeDefined()
        if (status === "429" || status === "503") {
          expect((response.headers as Json)["Retry-After"], `${name} ${status}`).toBeDefined()
        }
      }
    }
  })

  it("answers every error with the envelope alone, its code a closed enum; consume's denials are decisions", () => {
    const envelope = { $ref: "#/components/schemas/ErrorEnvelope" }
    for (const { name, operation } of operations) {
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        if (Number(status) < 400) continue
        const schema = ((response.content as Json)["application/json"] as Json).schema
        if (
          operation.operationId === "consumeTokens" &&
          ["402", "403", "404", "413", "429"].includes(status)
        ) {
          expect(JSON.stringify(schema), `${name} ${status}`).toContain("#/components/schemas/DeniedDecision")
          continue
        }
        // Unready is the readiness report itself, what a load balancer and an operator read.
        if (operation.operationId === "checkReadiness") continue
        expect(schema, `${name} ${status}`).toEqual(envelope)
      }
    }
    const schemas = (document.components as Json).schemas as Record<string, Json>
    const envelopeProperties = (schemas.ErrorEnvelope as Json).properties as Json
    const error = (envelopeProperties.error as Json).properties as Record<string, Json>
    expect(error.code?.enum).toEqual([...ERROR_CODES])
  })

  it("documents 413 and 415 on every operation with a body, and 431 on every operation", () => {
    for (const { name, operation } of operations) {
      const statuses = Object.keys(operation.responses as Json)
      expect(statuses, name).toContain("431")
      if (operation.requestBody) expect(statuses, name).toEqual(expect.arrayContaining(["413", "415"]))
    }
  })

  it("splits a decision on `allowed` and types the channel path parameter as the channel enum", () => {
    const schemas = (document.components as Json).schemas as Record<string, Json>
    const allowed = schemas.AllowedDecision as Json
    expect((allowed.properties as Record<string, Json>).allowed?.enum).toEqual([true])
    expect(allowed.required).toEqual(
      expect.arrayContaining(["usage_id", "billed_tokens", "remaining_tokens"]),
    )
    expect(((schemas.DeniedDecision as Json).properties as Record<string, Json>).allowed?.enum).toEqual([
      false,
    ])
    const channelParameters = operations.flatMap(({ operation }) =>
      ((operation.parameters ?? []) as Json[]).filter((p) => p.in === "path" && p.name === "channel"),
    )
    expect(channelParameters.length).toBeGreaterThan(0)
    for (const parameter of channelParameters) expect((parameter.schema as Json).enum).toContain("whatsapp")
  })

  it("is the checked-in docs/openapi.json", async () => {
    const checkedIn = JSON.parse(await readFile("docs/openapi.json", "utf8"))
    expect(checkedIn, REGENERATE).toEqual(document)
  })

  it("generates the checked-in client types (src/client/schema.ts)", async () => {
    const checkedIn = await readFile("src/client/schema.ts", "utf8")
    expect(checkedIn === (await generatedClientTypes(document)), REGENERATE).toBe(true)
  })
})
