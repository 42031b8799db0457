/** The channel settings form's rules (web/src/config-rules.ts) say what the API enforces, in plain words. */
import { describe, expect, it } from "vitest"
import { CHANNEL_SETTING_BOUNDS } from "../../src/core/channels.js"
import { FIELD_RULES, plainFieldError } from "../../web/src/config-rules.js"

describe("the channel settings form's rules", () => {
  it("have the bounds the API enforces", () => {
    const b = CHANNEL_SETTING_BOUNDS
    expect(FIELD_RULES).toEqual({
      requests_per_minute: { ...b.requestsPerMinute, decimals: 0 },
      tokens_per_minute: { ...b.tokensPerMinute, decimals: 0 },
      max_message_length: { ...b.maxMessageLength, decimals: 0 },
      token_multiplier: {
        min: b.multiplierHundredths.min / 100,
        max: b.multiplierHundredths.max / 100,
        decimals: 2,
      },
      priority: { ...b.priority, decimals: 0 },
    })
  })

  it("name the two-decimal rule for a multiplier of 12.345, not only its maximum", () => {
    expect(plainFieldError("token_multiplier", "12.345")).toBe(
      "Token multiplier must be a number from 0.01 to 10 with at most two decimals, like 1.25; 12.345 has 3 decimals (round it to 12.35).",
    )
    expect(plainFieldError("token_multiplier", "12.5")).toContain("12.5 is above 10")
    expect(plainFieldError("token_multiplier", "1.25")).toBeNull()
    expect(plainFieldError("priority", "2.5")).toBe(
      "Priority must be a whole number from 1 to 10; 2.5 has decimals.",
    )
    expect(plainFieldError("requests_per_minute", "lots")).toContain("“lots” is not a number")
    expect(plainFieldError("max_message_length", " ")).toContain("it is empty")
  })
})
