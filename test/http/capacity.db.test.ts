/**
 * Shared capacity, priority shedding and the quota reserve over HTTP: set through the subscription
 * endpoints, visible in decisions, analytics and /metrics; bad settings answer 400 naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
const clock = new ManualClock(Date.parse("2026-03-15T12:00:00Z"))
beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

async function prioritised(body: Record<string, unknown>) {
  const sub = await t.subscription({ period_start: "2026-03-01T00:00:00Z", ...body })
  for (const [channel, priority] of [
    ["api", 2],
    ["whatsapp", 9],
  ] as const) {
    const res = await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/${channel}/config`,
      payload: { priority, token_multiplier: 1 },
    })
    expect(res.statusCode).toBe(200)
  }
  return sub
}

function consume(entityId: string, channel: string, estimated: number, key?: string) {
  return t.request({
    method: "POST",
    url: "/api/tokens/consume",
    payload: { entity_id: entityId, entity_type: "organization", channel, estimated_tokens: estimated },
    ...(key ? { key } : {}),
  })
}

describe("a subscription's shared capacity over HTTP", () => {
  it("is null by default, set and cleared by PATCH, and shown with the curve in effect", async () => {
    const sub = await t.subscription()
    const read = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}` })
    expect(read.json()).toMatchObject({
      requests_per_minute: null,
      tokens_per_minute: null,
      priority_curve: null,
      effective_priority_curve: [50, 56, 61, 67, 72, 78, 83, 89, 94, 100],
      quota_reserve_percent: 0,
      quota_reserve_min_priority: 8,
    })
    expectDocumented(t.app, "GET", "/api/subscriptions/:id", read)
    const set = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}`,
      payload: {
        tokens_per_minute: 90_000,
        requests_per_minute: 600,
        priority_curve: [20, 30, 40, 50, 60, 70, 80, 90, 100, 100],
        quota_reserve_percent: 10,
        quota_reserve_min_priority: 7,
      },
    })
    expect(set.statusCode).toBe(200)
    expect(set.json()).toMatchObject({
      tokens_per_minute: 90_000,
      requests_per_minute: 600,
      priority_curve: [20, 30, 40, 50, 60, 70, 80, 90, 100, 100],
      effective_priority_curve: [20, 30, 40, 50, 60, 70, 80, 90, 100, 100],
      quota_reserve_percent: 10,
      quota_reserve_min_priority: 7,
    })
    expectDocumented(t.app, "PATCH", "/api/subscriptions/:id", set)
    const cleared = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}`,
      payload: { tokens_per_minute: null, priority_curve: null },
    })
    expect(cleared.json()).toMatchObject({
      tokens_per_minute: null,
      requests_per_minute: 600,
      priority_curve: null,
    })
  })

  it("sheds the low-priority channel with 429 capacity_shed, retry_after_ms and the priority shed", async () => {
    const sub = await prioritised({ tokens_per_minute: 1000 })
    for (let i = 0; i < 5; i += 1) expect((await consume(sub.entityId, "api", 100)).statusCode).toBe(200)
    const shed = await consume(sub.entityId, "api", 100)
    expect(shed.statusCode).toBe(429)
    expect(shed.headers["retry-after"]).toBe("60")
    expect(shed.json()).toMatchObject({
      allowed: false,
      reason: "capacity_shed",
      capacity: "subscription",
      limit: "tokens_per_minute",
      shed_priority: 2,
      priority: 2,
      admit_percent: 56,
      retry_after_ms: 60_000,
      error: { code: "capacity_shed" },
    })
    expectDocumented(t.app, "POST", "/api/tokens/consume", shed)
    expect((await consume(sub.entityId, "whatsapp", 100)).statusCode).toBe(200)

    const analytics = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${sub.id}?from=2026-03-15&to=2026-03-15`,
    })
    expect(analytics.statusCode).toBe(200)
    expect(analytics.json().totals.denied_by_reason).toMatchObject({ capacity_shed: 1, quota_reserved: 0 })
    const metrics = await t.request({ method: "GET", url: "/metrics", key: null })
    expect(metrics.body).toContain(
      'omnimeter_priority_denials_total{channel="api",priority="2",reason="capacity_shed",capacity="subscription"}',
    )
    clock.advance(60_000)
  })

  it("refuses a reserved turn with 402 quota_exceeded and reserved: true, counted as quota_reserved", async () => {
    const sub = await prioritised({
      token_limit: 1000,
      quota_reserve_percent: 20,
      quota_reserve_min_priority: 8,
    })
    expect((await consume(sub.entityId, "api", 800)).statusCode).toBe(200)
    const refused = await consume(sub.entityId, "api", 1)
    expect(refused.statusCode).toBe(402)
    expect(refused.json()).toMatchObject({
      reason: "quota_exceeded",
      reserved: true,
      priority: 2,
      remaining_tokens: 0,
    })
    expectDocumented(t.app, "POST", "/api/tokens/consume", refused)
    expect((await consume(sub.entityId, "whatsapp", 200)).statusCode).toBe(200)
    const analytics = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${sub.id}?from=2026-03-15&to=2026-03-15`,
    })
    expect(analytics.json().totals.denied_by_reason).toMatchObject({ quota_reserved: 1, quota_exceeded: 0 })
    const metrics = await t.request({ method: "GET", url: "/metrics", key: null })
    expect(metrics.body).toContain(
      'omnimeter_priority_denials_total{channel="api",priority="2",reason="quota_reserved",capacity="none"}',
    )
  })
})

describe("bad admission settings", () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["a reserve above 50%", { quota_reserve_percent: 51 }, "quota_reserve_percent"],
    ["a negative reserve", { quota_reserve_percent: -1 }, "quota_reserve_percent"],
    ["a reserve priority outside 1-10", { quota_reserve_min_priority: 0 }, "quota_reserve_min_priority"],
    ["a negative token capacity", { tokens_per_minute: -1000 }, "tokens_per_minute"],
    ["a negative request capacity", { requests_per_minute: -1 }, "requests_per_minute"],
    [
      "a curve that is not monotone",
      { priority_curve: [50, 40, 60, 70, 80, 90, 95, 96, 97, 100] },
      "priority_curve",
    ],
    ["a curve of the wrong length", { priority_curve: [50, 100] }, "priority_curve"],
    ["a curve above 100%", { priority_curve: [50, 56, 61, 67, 72, 78, 83, 89, 94, 101] }, "priority_curve"],
  ]
  for (const [what, payload, field] of cases) {
    it(`answers 400 naming ${field} for ${what}, and changes nothing`, async () => {
      const sub = await t.subscription()
      const before = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}` })
      const res = await t.request({ method: "PATCH", url: `/api/subscriptions/${sub.id}`, payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe("validation_error")
      expect(res.json().error.field).toContain(field)
      expectDocumented(t.app, "PATCH", "/api/subscriptions/:id", res)
      const after = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}` })
      expect(after.json()).toEqual(before.json())
      const created = await t.request({
        method: "POST",
        url: "/api/subscriptions",
        payload: {
          entity_id: `bad-${Math.random()}`,
          entity_type: "organization",
          plan: "basic",
          ...payload,
        },
      })
      expect(created.statusCode).toBe(400)
      expect(created.json().error.field).toContain(field)
    })
  }
})

describe("who may set admission settings", () => {
  it("answers 401 without a key, 403 to a subscription key, 404 to another tenant's key", async () => {
    const sub = await t.subscription()
    const other = await t.subscription()
    const payload = { tokens_per_minute: 1000 }
    const url = `/api/subscriptions/${sub.id}`
    expect((await t.request({ method: "PATCH", url, payload, key: null })).statusCode).toBe(401)
    expect((await t.request({ method: "PATCH", url, payload, key: sub.key })).statusCode).toBe(403)
    expect((await t.request({ method: "PATCH", url, payload, key: other.key })).statusCode).toBe(404)
    const read = await t.request({ method: "GET", url, key: sub.key })
    expect(read.json().tokens_per_minute).toBeNull()
  })
})
