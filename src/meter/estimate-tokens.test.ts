import { describe, expect, it } from "vitest"
import { ValidationError } from "../core/errors.js"
import { estimateTokens, TOKEN_ENCODINGS, type TokenEncoding } from "./estimate-tokens.js"

describe("estimateTokens", () => {
  it("counts o200k_base tokens by default and another encoding when asked", () => {
    expect(estimateTokens("")).toBe(0)
    expect(estimateTokens("hello world")).toBe(2)
    // cl100k_base splits these digits three at a time: 12 digits are 4 tokens.
    expect(estimateTokens("123456789012", { encoding: "cl100k_base" })).toBe(4)
    for (const encoding of TOKEN_ENCODINGS)
      expect(estimateTokens("Where is my order?", { encoding })).toBeGreaterThan(3)
  })

  it("counts special-token text in a user's message as plain text instead of refusing it", () => {
    expect(estimateTokens("a <|endoftext|> b")).toBeGreaterThan(3)
  })

  it("names the encoding when it is unknown", () => {
    expect(() => estimateTokens("x", { encoding: "nope" as TokenEncoding })).toThrow(ValidationError)
  })
})
