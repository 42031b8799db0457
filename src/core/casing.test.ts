import { describe, expect, it } from "vitest"
import { camelCase, camelCaseKeys, snakeCase, snakeCaseProperties } from "./casing.js"

describe("casing", () => {
  it("maps a camelCase name to snake_case and back to the same name", () => {
    for (const name of ["entityId", "maxMessageLength", "channel", "latencyMs", "tokensPerMinute"]) {
      expect(camelCase(snakeCase(name))).toBe(name)
    }
    expect(snakeCase("maxMessageLength")).toBe("max_message_length")
  })

  it("renames a property map without touching the property schemas", () => {
    const schema = { minimum: 0 }
    expect(snakeCaseProperties({ actualTokens: schema })).toEqual({ actual_tokens: schema })
    expect(snakeCaseProperties({ actualTokens: schema }).actual_tokens).toBe(schema)
  })

  it("drops undefined fields when a body becomes a library input", () => {
    expect(camelCaseKeys({ entity_id: "e1", chatbot_id: undefined, message_length: 0 })).toEqual({
      entityId: "e1",
      messageLength: 0,
    })
  })
})
