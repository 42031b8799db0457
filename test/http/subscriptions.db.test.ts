import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
beforeAll(async () => {
  t = await startTestApp()
})
afterAll(async () => t.close())

describe("subscriptions", () => {
  it("creates a subscription with its id, the plan's default limit and the current quota", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: {
        entity_id: "acme-create",
        entity_type: "organization",
        plan: "professional",
        timezone: "Asia/Kathmandu",
        period_start: "2026-01-31T00:00:00Z",
      },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json()).toMatchObject({
      entity_id: "acme-create",
      plan: "professional",
      token_limit: 1_000_000,
      status: "active",
      timezone: "Asia/Kathmandu",
      period_anchor: "2026-01-31T00:00:00.000Z",
      quota: { used_tokens: 0, remaining_tokens: 1_000_000 },
    })
    expect(res.json().id).toMatch(/^[0-9a-f-]{36}$/)
    expectDocumented(t.app, "POST", "/api/subscriptions", res)
  })

  it("refuses a duplicate entity with 409, an unknown plan or timezone with 400", async () => {
    const body = { entity_id: "acme-dup", entity_type: "organization", plan: "basic" }
    expect((await t.request({ method: "POST", url: "/api/subscriptions", payload: body })).statusCode).toBe(
      201,
    )
    const dup = await t.request({ method: "POST", url: "/api/subscriptions", payload: body })
    expect(dup.statusCode).toBe(409)
    expect(dup.json().error.code).toBe("conflict")
    const plan = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { ...body, entity_id: "x1", plan: "gold" },
    })
    expect(plan.json().error).toMatchObject({ code: "validation_error", field: "plan" })
    const zone = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { ...body, entity_id: "x2", timezone: "Moon/Base" },
    })
    expect(zone.json().error).toMatchObject({ code: "validation_error", field: "timezone" })
    const date = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { ...body, entity_id: "x3", period_start: "yesterday" },
    })
    expect(date.json().error).toMatchObject({ code: "validation_error", field: "period_start" })
  })

  it("lists subscriptions a page at a time", async () => {
    for (let i = 0; i < 3; i += 1) await t.subscription()
    const first = await t.request({ method: "GET", url: "/api/subscriptions?limit=2" })
    expect(first.json().subscriptions).toHaveLength(2)
    expectDocumented(t.app, "GET", "/api/subscriptions", first)
    const next = await t.request({
      method: "GET",
      url: `/api/subscriptions?limit=2&after=${first.json().next_after}`,
    })
    expect(next.json().subscriptions[0].id > first.json().next_after).toBe(true)
    expect((await t.request({ method: "GET", url: "/api/subscriptions?limit=0" })).statusCode).toBe(400)
    expect((await t.request({ method: "GET", url: "/api/subscriptions?after=nope" })).statusCode).toBe(400)
  })

  it("applies a downgrade at once: the channels the new plan lacks are disabled", async () => {
    const sub = await t.subscription({ plan: "professional" })
    const res = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}`,
      payload: { plan: "basic" },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json().plan).toBe("basic")
    expectDocumented(t.app, "PATCH", "/api/subscriptions/:id", res)
    const config = await t.request({
      method: "GET",
      url: `/api/onboarding/subscription/${sub.id}/channels/config`,
    })
    const api = config.json().channels.find((c: { channel: string }) => c.channel === "api")
    expect(api).toMatchObject({ enabled: false, in_plan: false, required_plan: "professional" })
  })

  it("answers 404 for an unknown subscription and 400 for a malformed id", async () => {
    const missing = await t.request({
      method: "GET",
      url: "/api/subscriptions/00000000-0000-4000-8000-000000000000",
    })
    expect(missing.statusCode).toBe(404)
    expect(missing.json().error.code).toBe("subscription_not_found")
    const bad = await t.request({ method: "GET", url: "/api/subscriptions/123" })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.field).toBe("id")
    const patch = await t.request({
      method: "PATCH",
      url: "/api/subscriptions/00000000-0000-4000-8000-000000000000",
      payload: { plan: "basic" },
    })
    expect(patch.statusCode).toBe(404)
  })
})

describe("OMNIMETER_DEFAULT_TIMEZONE", () => {
  it("is the timezone of a subscription created over HTTP without one", async () => {
    const berlin = await startTestApp({ env: { OMNIMETER_DEFAULT_TIMEZONE: "Europe/Berlin" } })
    try {
      const res = await berlin.request({
        method: "POST",
        url: "/api/subscriptions",
        payload: { entity_id: "acme-default-zone", entity_type: "organization", plan: "basic" },
      })
      expect(res.statusCode).toBe(201)
      expect(res.json().timezone).toBe("Europe/Berlin")
    } finally {
      await berlin.close()
    }
  })
})

describe("subscription keys", () => {
  it("shows a key once, lists it without its secret, and stops accepting it once revoked", async () => {
    const sub = await t.subscription()
    const issued = await t.request({
      method: "POST",
      url: `/api/subscriptions/${sub.id}/keys`,
      payload: { label: "backend" },
    })
    expect(issued.statusCode).toBe(201)
    expectDocumented(t.app, "POST", "/api/subscriptions/:id/keys", issued)
    const { key, key_id: keyId } = issued.json()
    expect(key).toMatch(/^om_sk_/)
    const listed = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/keys` })
    expect(JSON.stringify(listed.json())).not.toContain(key)
    expect(listed.json().keys.find((k: { key_id: string }) => k.key_id === keyId)).toMatchObject({
      label: "backend",
      revoked_at: null,
    })
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/keys", listed)
    expect((await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}`, key })).statusCode).toBe(
      200,
    )
    expect(
      (await t.request({ method: "DELETE", url: `/api/subscriptions/${sub.id}/keys/${keyId}` })).statusCode,
    ).toBe(204)
    expect((await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}`, key })).statusCode).toBe(
      401,
    )
    const again = await t.request({ method: "DELETE", url: `/api/subscriptions/${sub.id}/keys/${keyId}` })
    expect(again.statusCode).toBe(404)
  })

  it("stores only a hash of each key", async () => {
    const sub = await t.subscription()
    const rows = await t.container.database.db.selectFrom("api_keys").select(["key_hash", "prefix"]).execute()
    for (const row of rows) {
      expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/)
      expect(row.key_hash).not.toContain(sub.key)
    }
  })

  it("refuses to issue a key for a subscription that does not exist", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions/00000000-0000-4000-8000-000000000000/keys",
      payload: {},
    })
    expect(res.statusCode).toBe(404)
  })
})

describe("channel configuration", () => {
  const url = (id: string, channel = "whatsapp") =>
    `/api/onboarding/subscription/${id}/channels/${channel}/config`

  it("reads every channel with the same field names the update takes", async () => {
    const sub = await t.subscription({ plan: "professional" })
    const res = await t.request({
      method: "GET",
      url: `/api/onboarding/subscription/${sub.id}/channels/config`,
      key: sub.key,
    })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/onboarding/subscription/:subscription_id/channels/config", res)
    expect(res.json().channels).toHaveLength(6)
    expect(res.json().channels[1]).toEqual({
      channel: "whatsapp",
      in_plan: true,
      enabled: true,
      requests_per_minute: 60,
      tokens_per_minute: 60_000,
      max_message_length: 4096,
      token_multiplier: 1.2,
      priority: 8,
      overridden: [],
    })
  })

  it("updates some fields and keeps the rest", async () => {
    const sub = await t.subscription()
    const res = await t.request({
      method: "PUT",
      url: url(sub.id),
      key: sub.key,
      payload: { token_multiplier: 1.35, max_message_length: 500 },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      token_multiplier: 1.35,
      max_message_length: 500,
      requests_per_minute: 60,
      overridden: ["max_message_length", "token_multiplier"],
    })
    expectDocumented(
      t.app,
      "PUT",
      "/api/onboarding/subscription/:subscription_id/channels/:channel/config",
      res,
    )
    const second = await t.request({ method: "PUT", url: url(sub.id), payload: { priority: 2 } })
    expect(second.json()).toMatchObject({ token_multiplier: 1.35, priority: 2 })
  })

  it("names the field of every invalid update and changes nothing", async () => {
    const sub = await t.subscription()
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ requests_per_minute: -1 }, "requests_per_minute"],
      [{ tokens_per_minute: -5 }, "tokens_per_minute"],
      [{ token_multiplier: 0 }, "token_multiplier"],
      [{ token_multiplier: 11 }, "token_multiplier"],
      [{ token_multiplier: 1.234 }, "token_multiplier"],
      [{ max_message_length: 0 }, "max_message_length"],
      [{ priority: 11 }, "priority"],
      [{ colour: "red" }, "colour"],
      [{ enabled: "yes" }, "enabled"],
    ]
    for (const [payload, field] of cases) {
      const res = await t.request({ method: "PUT", url: url(sub.id), payload })
      expect(res.statusCode, JSON.stringify(payload)).toBe(400)
      expect(res.json().error.field, JSON.stringify(payload)).toBe(field)
    }
    const after = await t.request({
      method: "GET",
      url: `/api/onboarding/subscription/${sub.id}/channels/config`,
    })
    expect(after.json().channels[1].overridden).toEqual([])
  })

  it("refuses to enable a channel outside the plan with 403, naming the field and the plan", async () => {
    const sub = await t.subscription({ plan: "basic" })
    const res = await t.request({ method: "PUT", url: url(sub.id, "instagram"), payload: { enabled: true } })
    expect(res.statusCode).toBe(403)
    expect(res.json().error).toMatchObject({ code: "channel_not_in_plan", field: "enabled" })
    expect(res.json().error.message).toContain("Enterprise")
  })

  it("answers 400 for an unknown channel and for an empty update", async () => {
    const sub = await t.subscription()
    const channel = await t.request({ method: "PUT", url: url(sub.id, "sms"), payload: { enabled: true } })
    expect(channel.statusCode).toBe(400)
    expect(channel.json().error.field).toBe("channel")
    expect((await t.request({ method: "PUT", url: url(sub.id), payload: {} })).statusCode).toBe(400)
  })
})
