/**
 * The security matrix: every protected endpoint, called with no key, a wrong key, a revoked key, another
 * subscription's key, the subscription's own key and the admin key. Another tenant's data answers 404 (no
 * existence leak); admin-only operations answer 403 to a subscription key.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string
let usageId: string

beforeAll(async () => {
  t = await startTestApp()
  owner = await t.subscription({ token_limit: 1_000_000 })
  other = await t.subscription()
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  const revoke = await t.request({
    method: "DELETE",
    url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}`,
  })
  expect(revoke.statusCode).toBe(204)
})
afterAll(async () => t.close())

const consumeBody = () => ({
  entity_id: owner.entityId,
  entity_type: "organization",
  estimated_tokens: 10,
  channel: "website",
})

const endpoints: MatrixEndpoint[] = [
  {
    name: "consume",
    method: "POST",
    route: "/api/tokens/consume",
    url: () => "/api/tokens/consume",
    payload: consumeBody,
    expect: { other: 404, own: 200, admin: 200 },
    checkEnvelope: false,
  },
  {
    name: "settle",
    method: "POST",
    route: "/api/tokens/settle",
    url: () => "/api/tokens/settle",
    payload: () => ({ usage_id: usageId, actual_tokens: 5 }),
    expect: { other: 404 },
    before: async () => {
      const consumed = await t.request({ method: "POST", url: "/api/tokens/consume", payload: consumeBody() })
      usageId = consumed.json().usage_id
    },
  },
  {
    name: "create subscription",
    method: "POST",
    route: "/api/subscriptions",
    url: () => "/api/subscriptions",
    payload: () => ({ entity_id: `sec-${Math.random()}`, entity_type: "organization", plan: "basic" }),
    expect: { other: 403, own: 403, admin: 201 },
  },
  {
    name: "list subscriptions",
    method: "GET",
    route: "/api/subscriptions",
    url: () => "/api/subscriptions",
    expect: { other: 403, own: 403, admin: 200 },
  },
  {
    name: "read subscription",
    method: "GET",
    route: "/api/subscriptions/:id",
    url: () => `/api/subscriptions/${owner.id}`,
    expect: { other: 404, own: 200, admin: 200 },
  },
  {
    name: "update subscription",
    method: "PATCH",
    route: "/api/subscriptions/:id",
    url: () => `/api/subscriptions/${owner.id}`,
    payload: () => ({ token_limit: 1_000_000 }),
    expect: { other: 404, own: 403, admin: 200 },
  },
  {
    name: "issue key",
    method: "POST",
    route: "/api/subscriptions/:id/keys",
    url: () => `/api/subscriptions/${owner.id}/keys`,
    payload: () => ({}),
    expect: { other: 404, own: 403, admin: 201 },
  },
  {
    name: "list keys",
    method: "GET",
    route: "/api/subscriptions/:id/keys",
    url: () => `/api/subscriptions/${owner.id}/keys`,
    expect: { other: 404, own: 403, admin: 200 },
  },
  {
    name: "revoke key",
    method: "DELETE",
    route: "/api/subscriptions/:id/keys/:key_id",
    url: () => `/api/subscriptions/${owner.id}/keys/00000000-0000-4000-8000-000000000000`,
    expect: { other: 404, own: 403, admin: 404 },
  },
  {
    name: "who am I",
    method: "GET",
    route: "/api/me",
    url: () => "/api/me",
    expect: { other: 200, own: 200, admin: 200 },
  },
  {
    name: "read channel config",
    method: "GET",
    route: "/api/onboarding/subscription/:subscription_id/channels/config",
    url: () => `/api/onboarding/subscription/${owner.id}/channels/config`,
    expect: { other: 404, own: 200, admin: 200 },
  },
  {
    name: "update channel config",
    method: "PUT",
    route: "/api/onboarding/subscription/:subscription_id/channels/:channel/config",
    url: () => `/api/onboarding/subscription/${owner.id}/channels/website/config`,
    payload: () => ({ priority: 7 }),
    expect: { other: 404, own: 200, admin: 200 },
  },
]

describeSecurityMatrix(endpoints, {
  app: () => t,
  revokedKey: () => revokedKey,
  otherKey: () => other.key,
  ownKey: () => owner.key,
})

describe("tenant isolation over HTTP", () => {
  it("does not reveal whether another subscription exists", async () => {
    const missing = await t.request({
      method: "GET",
      url: "/api/subscriptions/00000000-0000-4000-8000-000000000000",
      key: owner.key,
    })
    const foreign = await t.request({ method: "GET", url: `/api/subscriptions/${other.id}`, key: owner.key })
    expect(foreign.statusCode).toBe(missing.statusCode)
    expect(foreign.json().error.code).toBe(missing.json().error.code)
    expect(foreign.json().error.message.replace(other.id, "ID")).toBe(
      missing.json().error.message.replace("00000000-0000-4000-8000-000000000000", "ID"),
    )
  })

  it("cannot settle another subscription's turn", async () => {
    const consumed = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      key: other.key,
      payload: { ...consumeBody(), entity_id: other.entityId },
    })
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/settle",
      key: owner.key,
      payload: { usage_id: consumed.json().usage_id, actual_tokens: 1 },
    })
    expect(res.statusCode).toBe(404)
  })

  it("rejects malformed Authorization headers", async () => {
    for (const authorization of ["Basic abc", "Bearer", "Bearer a b", `bearer  ${"x".repeat(500)}`]) {
      const res = await t.app.inject({
        method: "GET",
        url: `/api/subscriptions/${owner.id}`,
        headers: { authorization },
      })
      expect(res.statusCode, authorization).toBe(401)
    }
  })
})

describe("public endpoints", () => {
  it("serve the channel and plan catalogs without a key", async () => {
    const channels = await t.request({ method: "GET", url: "/api/onboarding/channels", key: null })
    expect(channels.statusCode).toBe(200)
    expect(
      channels.json().channels.find((c: { channel: string }) => c.channel === "instagram"),
    ).toMatchObject({
      plans: ["enterprise"],
      cheapest_plan: "enterprise",
      defaults: { max_message_length: 1000, token_multiplier: 1.15 },
    })
    expectDocumented(t.app, "GET", "/api/onboarding/channels", channels)
    const plans = await t.request({ method: "GET", url: "/api/plans", key: null })
    expect(plans.json().plans.map((p: { plan: string }) => p.plan)).toEqual([
      "basic",
      "professional",
      "enterprise",
    ])
    expectDocumented(t.app, "GET", "/api/plans", plans)
  })
})
