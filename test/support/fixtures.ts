import { randomUUID } from "node:crypto"
import type { ConsumeInput } from "../../src/meter/inputs.js"

/** A unique entity so tests sharing one database never see each other's subscriptions. */
export function entity(prefix = "org"): { entityId: string; entityType: string } {
  return { entityId: `${prefix}-${randomUUID()}`, entityType: "organization" }
}

export function turn(
  who: { entityId: string; entityType: string },
  overrides: Partial<ConsumeInput> = {},
): ConsumeInput {
  return {
    ...who,
    estimatedTokens: 100,
    operationType: "chat",
    channel: "website",
    chatbotId: "support-bot",
    sessionId: "session-1",
    userIdentifier: "user-1",
    ...overrides,
  }
}
