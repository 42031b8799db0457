// One call per LLM turn: consume, call the model only if allowed, settle with the usage the model reports.
// Run by the test suite. No network and no SDK dependency: the two models below are stand-ins with the exact
// shapes of the OpenAI SDK's chat completion and of the Vercel AI SDK's language model (MockLanguageModelV2).
import { createMeter, estimateTokens } from "../src/index.js" // in your project: from "omnimeter"

const meter = await createMeter({ dataDir: process.env.OMNIMETER_DATA_DIR ?? ":memory:" })
const subscription = await meter.createSubscription({
  entityId: "acme",
  entityType: "organization",
  plan: "professional",
})
const usedTokens = async () => (await meter.getQuota(subscription.id)).usedTokens

// 1. The OpenAI SDK: `openai.chat.completions.create` answers `usage.prompt_tokens` / `completion_tokens`.
const openai = {
  chat: {
    completions: {
      create: async (request: { model: string; messages: Array<{ role: string; content: string }> }) => ({
        id: "chatcmpl-1",
        object: "chat.completion" as const,
        model: request.model,
        choices: [
          { index: 0, message: { role: "assistant", content: "It ships today." }, finish_reason: "stop" },
        ],
        usage: { prompt_tokens: 120, completion_tokens: 80, total_tokens: 200 },
      }),
    },
  },
}

const message = "Where is my order?"
const turn = {
  entityId: "acme",
  entityType: "organization",
  channel: "whatsapp" as const,
  message,
  // The message's tokens, counted offline, plus room for the answer: no more guessing.
  estimatedTokens: estimateTokens(message) + 400,
}

const answered = await meter.meteredTurn(turn, () =>
  openai.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: message }],
    // decision.priority, decision.remainingTokens ... are there to shape the call
  }),
)
if (answered.allowed) {
  console.log(
    `openai: "${answered.result.choices[0]?.message.content}" used ${answered.actualTokens} tokens, billed ${answered.settlement.billedTokens} (estimate was ${answered.decision.billedTokens})`,
  )
}

// 2. The Vercel AI SDK: a language model's doGenerate answers `usage.inputTokens` / `outputTokens`, and so
// does `generateText({ model, prompt })`, which calls it. The model here has MockLanguageModelV2's shape.
const model = {
  specificationVersion: "v2" as const,
  provider: "mock",
  modelId: "mock-model",
  supportedUrls: {},
  doGenerate: async (_options: { prompt: unknown[] }) => ({
    content: [{ type: "text" as const, text: "Hello from the mock model." }],
    finishReason: "stop" as const,
    usage: { inputTokens: 30, outputTokens: 12, totalTokens: 42 },
    warnings: [],
  }),
}
const generated = await meter.meteredTurn({ ...turn, channel: "website" }, () =>
  // With the `ai` package: generateText({ model, prompt: message })
  model.doGenerate({ prompt: [{ role: "user", content: [{ type: "text", text: message }] }] }),
)
if (generated.allowed) console.log(`ai sdk: used ${generated.actualTokens} tokens`)

// 3. A failed model call is settled as an error: its estimate is refunded, and the error goes on to you.
const before = await usedTokens()
try {
  await meter.meteredTurn(turn, async () => {
    throw new Error("upstream 503")
  })
} catch (error) {
  console.log(`failed: ${(error as Error).message}; refunded: ${(await usedTokens()) === before}`)
}
await meter.close()
