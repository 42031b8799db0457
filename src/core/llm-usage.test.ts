import { describe, expect, it } from "vitest"
import { tokensOfUsage, tokensUsedBy } from "./llm-usage.js"

describe("reading an LLM call's token usage", () => {
  it("reads OpenAI chat completions' prompt and completion tokens", async () => {
    expect(
      await tokensUsedBy({ usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } }),
    ).toBe(42)
  })

  it("reads Anthropic's input and output tokens with its cache tokens, and OpenAI Responses' alike", async () => {
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 100,
      cache_read_input_tokens: 7,
    }
    expect(await tokensUsedBy({ usage })).toBe(122)
    expect(await tokensUsedBy({ usage: { input_tokens: 10, output_tokens: 5 } })).toBe(15)
  })

  it("reads the Vercel AI SDK's usage (v5 and v4 names), awaiting a streamed call's promise", async () => {
    expect(await tokensUsedBy({ usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } })).toBe(7)
    expect(await tokensUsedBy({ usage: { promptTokens: 3, completionTokens: 4 } })).toBe(7)
    expect(await tokensUsedBy({ usage: Promise.resolve({ inputTokens: 1, outputTokens: 1 }) })).toBe(2)
    expect(await tokensUsedBy({ usage: { totalTokens: 9 } })).toBe(9)
  })

  it("reads a usage object passed directly, and gives up on anything else", async () => {
    expect(await tokensUsedBy({ prompt_tokens: 1, completion_tokens: 2 })).toBe(3)
    expect(await tokensUsedBy("text")).toBeUndefined()
    expect(await tokensUsedBy({ usage: { prompt_tokens: "12", completion_tokens: 3 } })).toBeUndefined()
    expect(tokensOfUsage({ input_tokens: -1, output_tokens: 3 })).toBeUndefined()
    expect(tokensOfUsage(null)).toBeUndefined()
  })
})
