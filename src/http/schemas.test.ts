import { describe, expect, it } from "vitest"
import { MAX_TOKENS_PER_TURN } from "../core/billing.js"
import { snakeCase } from "../core/casing.js"
import { validate } from "../core/validate.js"
import {
  ChannelConfigPatchSchema,
  ConsumeInputSchema,
  CreateSubscriptionSchema,
  SettleInputSchema,
  UpdateSubscriptionSchema,
} from "../meter/inputs.js"
import {
  ChannelConfigPatchBody,
  ConsumeBody,
  CreateSubscriptionBody,
  SettleBody,
  UpdateSubscriptionBody,
} from "./schemas.js"

const pairs = [
  ["consume", ConsumeInputSchema, ConsumeBody],
  ["settle", SettleInputSchema, SettleBody],
  ["create subscription", CreateSubscriptionSchema, CreateSubscriptionBody],
  ["update subscription", UpdateSubscriptionSchema, UpdateSubscriptionBody],
  ["channel patch", ChannelConfigPatchSchema, ChannelConfigPatchBody],
] as const

describe("the HTTP input bodies", () => {
  it.each(pairs)(
    "%s: holds every library field, snake_cased, with the very same schema",
    (_, library, body) => {
      const properties = body.properties as Record<string, unknown>
      for (const [name, schema] of Object.entries(library.properties)) {
        expect(properties[snakeCase(name)]).toBe(schema)
      }
    },
  )

  it("bounds token counts by MAX_TOKENS_PER_TURN on both sides", () => {
    expect(ConsumeBody.properties.estimated_tokens).toMatchObject({ maximum: MAX_TOKENS_PER_TURN })
    expect(SettleBody.properties.actual_tokens).toMatchObject({ maximum: MAX_TOKENS_PER_TURN })
  })

  it("refuses a channel setting outside its bounds in the library as over HTTP, naming the field", () => {
    expect(() => validate(ChannelConfigPatchSchema, { requestsPerMinute: -1 })).toThrow(/requestsPerMinute/)
    expect(() => validate(ChannelConfigPatchBody, { requests_per_minute: -1 })).toThrow(/requests_per_minute/)
    expect(() => validate(ChannelConfigPatchSchema, { priority: 11 })).toThrow(/priority/)
  })
})
