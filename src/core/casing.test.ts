import { describe, expect, it } from "vitest"
import { camelCase, camelCaseKeys, snakeCase, snakeCaseProperties, wireForm } from "./casing.js"

describe("casing", () => {
  it("maps a camelCase name to snake_case and back to the same name", () => {
    for (const name of ["entityId", "maxMessageLength", "channel", "latencyMs", "tokensPerMinute"]) {
      expect(camelCase(snakeCase(name))).toBe(name)
    }
    expect(snakeCase("maxMessageLength")).toBe("max_message_length")
    expect(snakeCase("messagesPer1kTokens")).toBe("messages_per_1k_tokens")
    expect(camelCase("messages_per_1k_tokens")).toBe("messagesPer1kTokens")
    expect(snakeCase("quota_exceeded")).toBe("quota_exceeded")
  })

  it("renames a property map without touching the property schemas", () => {
    const schema = { minimum: 0 }
    expect(snakeCaseProperties({ actualTokens: schema })).toEqual({ actual_tokens: schema })
    expect(snakeCaseProperties({ actualTokens: schema }).actual_tokens).toBe(schema)
  })

  it("writes a domain answer in the API's form at every depth, instants as RFC 3339", () => {
    const answer = {
      generatedAt: new Date(0),
      channels: [{ peakUsageHour: null, deniedByReason: { quota_exceeded: 2 } }],
    }
    expect(wireForm(answer)).toEqual({
      generated_at: "1970-01-01T00:00:00.000Z",
      channels: [{ peak_usage_hour: null, denied_by_reason: { quota_exceeded: 2 } }],
    })
  })

  it("drops undefined fields when a body becomes a library input", () => {
    expect(camelCaseKeys({ entity_id: "e1", chatbot_id: undefined, message_length: 0 })).toEqual({
      entityId: "e1",
      messageLength: 0,
    })
  })
})
