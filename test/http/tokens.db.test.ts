import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
const clock = new ManualClock(Date.parse("2026-05-10T10:00:00Z"))
beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

const CONSUME = "/api/tokens/consume"
const SETTLE = "/api/tokens/settle"

function turn(entityId: string, extra: Record<string, unknown> = {}) {
  return {
    entity_id: entityId,
    entity_type: "organization",
    estimated_tokens: 100,
    operation_type: "chat",
    channel: "whatsapp",
    chatbot_id: "bot",
    session_id: "s1",
    user_identifier: "u1",
    ...extra,
  }
}

describe("POST /api/tokens/consume", () => {
  it("allows a turn, answers the decision in snake_case with rate-limit headers, and matches the OpenAPI document", async () => {
    const sub = await t.subscription({ token_limit: 10_000 })
    const res = await t.request({ method: "POST", url: CONSUME, key: sub.key, payload: turn(sub.entityId) })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      allowed: true,
      channel: "whatsapp",
      multiplier: 1.2,
      raw_tokens: 100,
      billed_tokens: 120,
      remaining_tokens: 9_880,
      subscription_id: sub.id,
      replayed: false,
    })
    expect(res.headers["ratelimit-limit"]).toBe("60")
    expect(res.headers["ratelimit-remaining"]).toBe("59")
    expect(res.headers["ratelimit-reset"]).toBe("60")
    expect(res.headers["x-request-id"]).toBeTruthy()
    expectDocumented(t.app, "POST", CONSUME, res)
  })

  it("answers each denial with its status, the decision fields and the error envelope", async () => {
    const basic = await t.subscription({ plan: "basic", token_limit: 150 })
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ channel: "instagram" }, 403, "channel_not_in_plan"],
      [{ message: "x".repeat(4097) }, 413, "message_too_long"],
      [{ estimated_tokens: 500 }, 402, "quota_exceeded"],
      [{ entity_id: "nobody-at-all" }, 404, "subscription_not_found"],
    ]
    for (const [extra, status, reason] of cases) {
      const res = await t.request({ method: "POST", url: CONSUME, payload: turn(basic.entityId, extra) })
      expect(res.statusCode, reason).toBe(status)
      const body = res.json()
      expect(body).toMatchObject({
        allowed: false,
        reason,
        error: { code: reason, request_id: res.headers["x-request-id"] },
      })
      expect(body.message).toBe(body.error.message)
      expectDocumented(t.app, "POST", CONSUME, res)
    }
    const notInPlan = await t.request({
      method: "POST",
      url: CONSUME,
      payload: turn(basic.entityId, { channel: "messenger" }),
    })
    expect(notInPlan.json()).toMatchObject({ required_plan: "professional" })
  })

  it("answers a disabled channel with 403 and an inactive subscription with 403", async () => {
    const sub = await t.subscription()
    await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/telegram/config`,
      payload: { enabled: false },
    })
    const disabled = await t.request({
      method: "POST",
      url: CONSUME,
      payload: turn(sub.entityId, { channel: "telegram" }),
    })
    expect(disabled.statusCode).toBe(403)
    expect(disabled.json().reason).toBe("channel_disabled")
    await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}`,
      payload: { status: "suspended" },
    })
    const inactive = await t.request({ method: "POST", url: CONSUME, payload: turn(sub.entityId) })
    expect(inactive.statusCode).toBe(403)
    expect(inactive.json()).toMatchObject({ reason: "subscription_inactive", status: "suspended" })
  })

  it("answers 429 with Retry-After once the channel's rate limit is spent", async () => {
    const sub = await t.subscription()
    await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/api/config`,
      payload: { requests_per_minute: 1 },
    })
    expect(
      (await t.request({ method: "POST", url: CONSUME, payload: turn(sub.entityId, { channel: "api" }) }))
        .statusCode,
    ).toBe(200)
    const limited = await t.request({
      method: "POST",
      url: CONSUME,
      payload: turn(sub.entityId, { channel: "api" }),
    })
    expect(limited.statusCode).toBe(429)
    expect(limited.headers["retry-after"]).toBe("60")
    expect(limited.headers["ratelimit-remaining"]).toBe("0")
    expect(limited.json()).toMatchObject({
      reason: "rate_limited",
      retry_after_ms: 60_000,
      limit: "requests_per_minute",
    })
    expectDocumented(t.app, "POST", CONSUME, limited)
  })

  it("answers a turn over the channel's tokens-per-minute limit with 413 turn_too_large and no Retry-After", async () => {
    const sub = await t.subscription()
    await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/whatsapp/config`,
      payload: { tokens_per_minute: 1000 },
    })
    const res = await t.request({
      method: "POST",
      url: CONSUME,
      key: sub.key,
      payload: turn(sub.entityId, { estimated_tokens: 1001 }),
    })
    expect(res.statusCode).toBe(413)
    expect(res.headers["retry-after"]).toBeUndefined()
    const body = res.json()
    expect(body).toMatchObject({
      allowed: false,
      reason: "turn_too_large",
      limit: "tokens_per_minute",
      tokens_per_minute: 1000,
      error: { code: "turn_too_large", request_id: res.headers["x-request-id"] },
    })
    expect(body.retry_after_ms).toBeUndefined()
    expect(body.message).toContain("tokens-per-minute limit of 1000")
    expectDocumented(t.app, "POST", CONSUME, res)
  })

  it("replays the first decision for a repeated Idempotency-Key header and charges once", async () => {
    const sub = await t.subscription({ token_limit: 1000 })
    const send = () =>
      t.request({
        method: "POST",
        url: CONSUME,
        headers: { "idempotency-key": "wamid.42" },
        payload: turn(sub.entityId),
      })
    const [a, b] = await Promise.all([send(), send()])
    expect(a.json().usage_id).toBe(b.json().usage_id)
    expect([a.json().replayed, b.json().replayed].sort()).toEqual([false, true])
    const quota = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}` })
    expect(quota.json().quota.used_tokens).toBe(120)
  })

  it("refuses a body key that contradicts the Idempotency-Key header", async () => {
    const sub = await t.subscription()
    const res = await t.request({
      method: "POST",
      url: CONSUME,
      headers: { "idempotency-key": "a" },
      payload: turn(sub.entityId, { idempotency_key: "b" }),
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: "validation_error", field: "idempotency_key" })
  })

  it("rejects wrong types, unknown channels, absurd counts, unknown fields and long ids with 400 naming the field, and writes nothing", async () => {
    const sub = await t.subscription()
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ estimated_tokens: "100" }, "estimated_tokens"],
      [{ estimated_tokens: -1 }, "estimated_tokens"],
      [{ estimated_tokens: 1e12 }, "estimated_tokens"],
      [{ estimated_tokens: 2.5 }, "estimated_tokens"],
      [{ channel: "sms" }, "channel"],
      [{ chatbot_id: "x".repeat(300) }, "chatbot_id"],
      [{ extra_field: 1 }, "extra_field"],
      [{ entity_id: "" }, "entity_id"],
    ]
    for (const [extra, field] of cases) {
      const res = await t.request({ method: "POST", url: CONSUME, payload: turn(sub.entityId, extra) })
      expect(res.statusCode, JSON.stringify(extra)).toBe(400)
      expect(res.json().error).toMatchObject({ code: "validation_error", field })
      expectDocumented(t.app, "POST", CONSUME, res)
    }
    const missing = await t.request({ method: "POST", url: CONSUME, payload: { entity_id: sub.entityId } })
    expect(missing.statusCode).toBe(400)
    const rows = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select("id")
      .where("subscription_id", "=", sub.id)
      .execute()
    expect(rows).toHaveLength(0)
  })

  it("treats injection-shaped strings as plain data", async () => {
    const sub = await t.subscription()
    const res = await t.request({
      method: "POST",
      url: CONSUME,
      payload: turn(sub.entityId, {
        user_identifier: "'; drop table subscriptions; --",
        session_id: "<script>",
      }),
    })
    expect(res.statusCode).toBe(200)
    const row = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select(["user_identifier", "session_id"])
      .where("subscription_id", "=", sub.id)
      .executeTakeFirst()
    expect(row).toEqual({ user_identifier: "'; drop table subscriptions; --", session_id: "<script>" })
  })
})

describe("POST /api/tokens/settle", () => {
  it("settles a turn, refunding the difference", async () => {
    const sub = await t.subscription({ token_limit: 1000 })
    const consumed = await t.request({
      method: "POST",
      url: CONSUME,
      key: sub.key,
      payload: turn(sub.entityId),
    })
    const res = await t.request({
      method: "POST",
      url: SETTLE,
      key: sub.key,
      payload: { usage_id: consumed.json().usage_id, actual_tokens: 50, outcome: "ok", latency_ms: 700 },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      previous_billed_tokens: 120,
      billed_tokens: 60,
      adjustment: -60,
      remaining_tokens: 940,
    })
    expectDocumented(t.app, "POST", SETTLE, res)
  })

  it("answers 409 to a second settle and 404 to an unknown id, changing nothing", async () => {
    const sub = await t.subscription({ token_limit: 1000 })
    const consumed = await t.request({ method: "POST", url: CONSUME, payload: turn(sub.entityId) })
    const usageId = consumed.json().usage_id
    await t.request({ method: "POST", url: SETTLE, payload: { usage_id: usageId, actual_tokens: 10 } })
    const twice = await t.request({
      method: "POST",
      url: SETTLE,
      payload: { usage_id: usageId, actual_tokens: 999 },
    })
    expect(twice.statusCode).toBe(409)
    expect(twice.json().error.code).toBe("usage_already_settled")
    expectDocumented(t.app, "POST", SETTLE, twice)
    const unknown = await t.request({
      method: "POST",
      url: SETTLE,
      payload: { usage_id: "00000000-0000-4000-8000-000000000000", actual_tokens: 1 },
    })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json().error.code).toBe("usage_not_found")
    const quota = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}` })
    expect(quota.json().quota.used_tokens).toBe(12)
  })

  it("rejects a non-UUID usage id and negative tokens with 400", async () => {
    for (const payload of [
      { usage_id: "1 or 1=1", actual_tokens: 1 },
      { usage_id: "00000000-0000-4000-8000-000000000000", actual_tokens: -1 },
    ]) {
      const res = await t.request({ method: "POST", url: SETTLE, payload })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.code).toBe("validation_error")
    }
  })
})
