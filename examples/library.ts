// The README's library example, run by the test suite so that it keeps working.
import { createMeter } from "../src/index.js" // in your project: from "omnimeter"

const meter = await createMeter({ dataDir: process.env.OMNIMETER_DATA_DIR ?? ":memory:" })

const subscription = await meter.createSubscription({
  entityId: "acme",
  entityType: "organization",
  plan: "professional",
})

// On every chat turn, before calling the LLM:
const decision = await meter.validateAndConsumeTokens({
  entityId: "acme",
  entityType: "organization",
  estimatedTokens: 350,
  operationType: "chat",
  channel: "whatsapp",
  chatbotId: "support-bot",
  sessionId: "session-42",
  userIdentifier: "+15550100",
  message: "Where is my order?",
  idempotencyKey: "wamid.HBgLMTU1NTAxMDA", // the channel's own message id makes retries safe
})

if (decision.allowed) {
  console.log(
    `allowed: billed ${decision.billedTokens} tokens at ${decision.multiplier}x, ${decision.remainingTokens} left`,
  )
  // ... call the LLM, then settle with what it really used:
  const settled = await meter.settle(decision.usageId, { actualTokens: 410, outcome: "ok", latencyMs: 900 })
  console.log(`settled: adjustment ${settled.adjustment}, ${settled.remainingTokens} left`)
} else {
  console.log(`denied: ${decision.reason}: ${decision.message}`)
}

// Instagram is not in the professional plan: a denial is a value, not an exception.
const denied = await meter.validateAndConsumeTokens({
  entityId: "acme",
  entityType: "organization",
  estimatedTokens: 100,
  channel: "instagram",
})
if (!denied.allowed) console.log(`denied: ${denied.reason}: ${denied.message}`)

console.log(await meter.getQuota(subscription.id))
await meter.close()
