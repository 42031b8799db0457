/**
 * The TypeScript client (`omnimeter/client`) against a real server on a socket: the whole flow a chat
 * backend runs, with denials as values, idempotency, retries by Retry-After and request ids.
 */
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createOmnimeterClient,
  type DenialReason,
  OmnimeterApiError,
  type OmnimeterClient,
} from "../../src/client/index.js"
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/http.js"

let t: TestApp
let baseUrl: string
let admin: OmnimeterClient
let client: OmnimeterClient
let subscriptionId: string
const entityId = `ts-client-${process.pid}`
const turn = {
  entity_id: entityId,
  entity_type: "organization",
  estimated_tokens: 300,
  channel: "whatsapp" as const,
}

beforeAll(async () => {
  t = await startTestApp()
  await t.app.listen({ port: 0, host: "127.0.0.1" })
  baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
  admin = createOmnimeterClient({ baseUrl, apiKey: ADMIN_KEY })
  const subscription = await admin.createSubscription({
    entity_id: entityId,
    entity_type: "organization",
    plan: "professional",
    token_limit: 100_000,
  })
  subscriptionId = subscription.id
  expect(subscription.requestId).not.toBe("")
  const issued = await admin.issueKey(subscriptionId, "ts client")
  client = createOmnimeterClient({ baseUrl, apiKey: issued.key })
})
afterAll(async () => {
  await t.close()
})

async function used(): Promise<number> {
  const { data } = await admin.api.GET("/api/subscriptions/{id}", {
    params: { path: { id: subscriptionId } },
  })
  return data?.quota?.used_tokens ?? Number.NaN
}

describe("the TypeScript client against a real server", () => {
  it("consumes and settles a turn, each answer with its request id", async () => {
    const decision = await client.consume({ ...turn, message: "Where is my order?" })
    expect(decision.allowed).toBe(true)
    if (!decision.allowed) return
    // Narrowed: an allowed decision's fields are all present, no casts.
    const billed: number = decision.billed_tokens
    expect(billed).toBe(360)
    expect(decision.requestId).toMatch(/^[\w.:-]+$/)
    const settled = await client.settle(decision.usage_id, { actual_tokens: 250, outcome: "ok" })
    expect(settled.adjustment).toBe(300 - 360)
    expect(settled.requestId).not.toBe(decision.requestId)
  })

  it("answers a denial as a value with its reason narrowed and the envelope's request id", async () => {
    const decision = await client.consume({ ...turn, channel: "instagram" })
    expect(decision.allowed).toBe(false)
    if (decision.allowed) return
    const reason: DenialReason = decision.reason
    expect(reason).toBe("channel_not_in_plan")
    expect(decision.required_plan).toBe("enterprise")
    expect(decision.error.request_id).toBe(decision.requestId)
  })

  it("sends an Idempotency-Key, so a repeated key charges once", async () => {
    const before = await used()
    const first = await client.consume(turn, { idempotencyKey: "wamid.ts-1" })
    const again = await client.consume(turn, { idempotencyKey: "wamid.ts-1" })
    expect(first.allowed && again.allowed && again.replayed && again.usage_id === first.usage_id).toBe(true)
    expect((await used()) - before).toBe(360)
  })

  it("throws other errors as OmnimeterApiError with the closed code, the field and the request id", async () => {
    const settle = client.settle("00000000-0000-4000-8000-000000000000", { actual_tokens: 1 })
    await expect(settle).rejects.toMatchObject({ status: 404, code: "usage_not_found" })
    const bad = await client.consume({ ...turn, estimated_tokens: -1 }).catch((error: unknown) => error)
    expect(bad).toBeInstanceOf(OmnimeterApiError)
    expect(bad).toMatchObject({ code: "validation_error", field: "estimated_tokens" })
    expect((bad as OmnimeterApiError).requestId).not.toBe("")
    await expect(client.createSubscription({ ...turn, plan: "basic" } as never)).rejects.toMatchObject({
      status: 400,
    })
  })

  it("meters a turn end to end with the OpenAI SDK's shape, and refunds a failed one", async () => {
    const before = await used()
    const turned = await client.meteredTurn(turn, async (decision) => {
      expect(decision.allowed).toBe(true)
      return {
        choices: [{ message: { content: "Hi" } }],
        usage: { prompt_tokens: 120, completion_tokens: 80 },
      }
    })
    expect(turned.allowed && turned.actualTokens).toBe(200)
    expect((await used()) - before).toBe(240)
    const failure = new Error("model down")
    await expect(
      client.meteredTurn(turn, async () => {
        throw failure
      }),
    ).rejects.toBe(failure)
    expect((await used()) - before).toBe(240)
  })

  it("imports turns and reads them back in the analytics", async () => {
    const report = await admin.importUsage([
      {
        subscription_id: subscriptionId,
        channel: "telegram",
        created_at: "2026-01-05T10:00:00Z",
        raw_tokens: 500,
        user_identifier: "u-1",
      },
    ])
    expect(report.imported).toBe(1)
    const analytics = await client.analytics(subscriptionId, {
      from: "2026-01-01",
      to: "2026-01-31",
      tz: "UTC",
    })
    const telegram = analytics.channels.find((channel) => channel.channel === "telegram")
    expect(telegram?.message_count).toBe(1)
    expect(telegram?.unique_users).toBe(1)
  })

  it("retries 503 after Retry-After with the same Idempotency-Key when asked, and not otherwise", async () => {
    const keys: Array<string | null> = []
    let unavailable = 2
    const flaky = (request: Request) => {
      keys.push(request.headers.get("idempotency-key"))
      if (unavailable-- > 0) {
        const body = { error: { code: "service_unavailable", message: "away", request_id: "r" } }
        return Promise.resolve(
          Response.json(body, { status: 503, headers: { "Retry-After": "0", "X-Request-Id": "r" } }),
        )
      }
      return fetch(request)
    }
    const plain = createOmnimeterClient({ baseUrl, apiKey: ADMIN_KEY, fetch: flaky })
    await expect(plain.consume(turn)).rejects.toMatchObject({ status: 503, code: "service_unavailable" })
    unavailable = 2
    keys.length = 0
    const retrying = createOmnimeterClient({
      baseUrl,
      apiKey: ADMIN_KEY,
      fetch: flaky,
      retry: { attempts: 3 },
    })
    const decision = await retrying.consume(turn)
    expect(decision.allowed).toBe(true)
    expect(keys).toHaveLength(3)
    expect(new Set(keys).size).toBe(1)
  })
})
