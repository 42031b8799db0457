import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase } from "../../test/support/database.js"
import type { Database } from "../storage/database.js"
import { createMeter, type Meter } from "./meter.js"

let database: Database
let meter: Meter
let counter = 0

beforeAll(async () => {
  database = await openTestDatabase()
  meter = await createMeter({ database })
})
afterAll(async () => {
  await meter.close()
  await database.close()
})

async function subscription() {
  counter += 1
  const entityId = `metered-${process.pid}-${counter}`
  const created = await meter.createSubscription({
    entityId,
    entityType: "organization",
    plan: "professional",
    tokenLimit: 100_000,
  })
  const input = { entityId, entityType: "organization", estimatedTokens: 500, channel: "whatsapp" as const }
  const used = async () => (await meter.getQuota(created.id)).usedTokens
  return { input, used }
}

class ModelDown extends Error {}

describe("meteredTurn in the library", () => {
  it("charges an OpenAI completion its actual usage, times the channel's multiplier", async () => {
    const { input, used } = await subscription()
    const completion = {
      choices: [{ message: { content: "Hi" } }],
      usage: { prompt_tokens: 120, completion_tokens: 80 },
    }
    const turn = await meter.meteredTurn(input, async (decision) => {
      expect(decision.billedTokens).toBe(600)
      return completion
    })
    expect(turn.allowed).toBe(true)
    if (!turn.allowed) return
    expect(turn.result).toBe(completion)
    expect(turn.actualTokens).toBe(200)
    expect(turn.settlement.billedTokens).toBe(240)
    expect(await used()).toBe(240)
  })

  it("reads Anthropic's input and output tokens, cache tokens included", async () => {
    const { input, used } = await subscription()
    const message = { usage: { input_tokens: 40, output_tokens: 10, cache_read_input_tokens: 50 } }
    const turn = await meter.meteredTurn({ ...input, channel: "website" }, async () => message)
    expect(turn.allowed && turn.actualTokens).toBe(100)
    expect(await used()).toBe(100)
  })

  it("reads the Vercel AI SDK's usage, preferring a multi-step call's totalUsage", async () => {
    const { input } = await subscription()
    const result = {
      text: "Hi",
      usage: { inputTokens: 5, outputTokens: 5, totalTokens: 10 },
      totalUsage: { inputTokens: 30, outputTokens: 12, totalTokens: 42 },
    }
    const turn = await meter.meteredTurn({ ...input, channel: "api" }, async () => result)
    expect(turn.allowed && turn.actualTokens).toBe(42)
  })

  it("refunds the estimate and rethrows when the model call fails", async () => {
    const { input, used } = await subscription()
    const failure = new ModelDown("upstream 500")
    await expect(
      meter.meteredTurn(input, async () => {
        expect(await used()).toBe(600)
        throw failure
      }),
    ).rejects.toBe(failure)
    expect(await used()).toBe(0)
  })

  it("never runs a denied turn, and answers the denial as a value", async () => {
    const { input, used } = await subscription()
    let ran = false
    const turn = await meter.meteredTurn({ ...input, channel: "instagram" }, async () => {
      ran = true
    })
    expect(ran).toBe(false)
    expect(turn.allowed).toBe(false)
    if (!turn.allowed) expect(turn.decision.reason).toBe("channel_not_in_plan")
    expect(await used()).toBe(0)
  })

  it("takes the caller's mapping for a result of unknown shape, and refuses to guess without one", async () => {
    const { input, used } = await subscription()
    const mapped = await meter.meteredTurn({ ...input, channel: "api" }, async () => "plain text", {
      usage: (text) => text.length,
    })
    if (!mapped.allowed) throw new Error("the mapped turn was denied")
    expect(mapped.actualTokens).toBe(10)
    const multiplier = mapped.decision.multiplier
    expect(mapped.settlement.billedTokens).toBe(Math.ceil(10 * multiplier))
    await expect(meter.meteredTurn({ ...input, channel: "api" }, async () => "plain text")).rejects.toThrow(
      /could not read token usage/,
    )
    // The unreadable turn keeps its estimate, as an unsettled turn would.
    expect(await used()).toBe(Math.ceil(10 * multiplier) + Math.ceil(500 * multiplier))
  })
})
