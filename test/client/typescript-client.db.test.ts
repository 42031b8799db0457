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

describe("the TypeScript client on people, experiments, journeys and recommendations", () => {
  const visitors = Array.from({ length: 12 }, (_, i) => `exp-visitor-${i}`)

  it("links a person across channels and reads them back", async () => {
    const linked = await client.linkPerson(subscriptionId, "ada", {
      identifiers: [
        { channel: "website", user_identifier: "ada-web" },
        { channel: "whatsapp", user_identifier: "ada-wa" },
      ],
    })
    expect(linked.requestId).not.toBe("")
    const read = await client.person(subscriptionId, "ada")
    expect(read.identifiers.map((i) => `${i.channel}:${i.user_identifier}`).sort()).toEqual([
      "website:ada-web",
      "whatsapp:ada-wa",
    ])
  })

  it("throws linking an identifier another person holds as a 409 OmnimeterApiError, and links nothing", async () => {
    const taken = await client
      .linkPerson(subscriptionId, "grace", {
        identifiers: [{ channel: "whatsapp", user_identifier: "ada-wa" }],
      })
      .catch((error: unknown) => error)
    expect(taken).toBeInstanceOf(OmnimeterApiError)
    expect(taken).toMatchObject({ status: 409, code: "conflict", field: "identifiers" })
    expect((taken as OmnimeterApiError).message).toContain('"ada"')
    expect((taken as OmnimeterApiError).requestId).not.toBe("")
    await expect(client.person(subscriptionId, "grace")).rejects.toMatchObject({
      status: 404,
      code: "not_found",
    })
  })

  it("creates, lists, starts, reads and stops an experiment, its results counting the turns' variants", async () => {
    const created = await client.createExperiment(subscriptionId, {
      name: "shorter replies",
      channels: ["whatsapp"],
      primary_metric: "tokens_per_turn",
      variants: [
        { name: "control", weight: 1 },
        { name: "short", weight: 1, overrides: { max_message_length: 500 }, label: "short-prompt" },
      ],
    })
    expect(created.status).toBe("draft")
    expect(created.variants[1]?.overrides).toEqual({ max_message_length: 500 })
    expect((await client.experiments(subscriptionId)).experiments.map((e) => e.id)).toContain(created.id)
    const started = await client.updateExperimentStatus(subscriptionId, created.id, "running")
    expect(started.status).toBe("running")
    expect((await client.experiment(subscriptionId, created.id)).started_at).not.toBeNull()

    // What each turn's decision said, counted per variant: the results must count the same people.
    const peoplePerVariant = new Map<string, number>()
    for (const [i, visitor] of visitors.entries()) {
      const decision = await client.consume({
        ...turn,
        estimated_tokens: 100 + 10 * i,
        user_identifier: visitor,
      })
      expect(decision.allowed).toBe(true)
      const variant = decision.allowed ? decision.experiments?.[0]?.variant : undefined
      expect(variant).toBeDefined()
      peoplePerVariant.set(String(variant), (peoplePerVariant.get(String(variant)) ?? 0) + 1)
    }
    const results = await client.experimentResults(subscriptionId, created.id)
    expect(results.experiment_id).toBe(created.id)
    expect(Object.fromEntries(results.variants.map((v) => [v.name, v.people]))).toEqual({
      control: peoplePerVariant.get("control") ?? 0,
      short: peoplePerVariant.get("short") ?? 0,
    })
    expect(results.verdict.text).not.toBe("")

    const stopped = await client.updateExperimentStatus(subscriptionId, created.id, "stopped")
    expect(stopped.status).toBe("stopped")
    await expect(client.updateExperimentStatus(subscriptionId, created.id, "running")).rejects.toMatchObject({
      status: 409,
      code: "conflict",
    })
  })

  it("reads the journeys and the recommendations, with a linked person's preferred channel", async () => {
    await client.consume({ ...turn, channel: "website", user_identifier: "ada-web" })
    await client.consume({ ...turn, user_identifier: "ada-wa" })
    const journeys = await client.journeys(subscriptionId, { fresh: true })
    // Ada is one person on two channels; every visitor is a person of their own on one.
    expect(journeys.people).toBe(visitors.length + 1)
    expect(journeys.cross_channel_share).toBeCloseTo(1 / (visitors.length + 1), 12)
    const recommendations = await client.recommendations(subscriptionId, { person_id: "ada" })
    expect(recommendations.person?.person_id).toBe("ada")
    expect(recommendations.person?.channels.map((c) => c.channel).sort()).toEqual(["website", "whatsapp"])
    expect(recommendations.channels.map((c) => c.channel)).toContain("whatsapp")
  })
})
