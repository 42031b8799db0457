import SwaggerParser from "@apidevtools/swagger-parser"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"

let t: TestApp
beforeAll(async () => {
  t = await startTestApp({ env: { OMNIMETER_BODY_LIMIT_BYTES: "2048" } })
})
afterAll(async () => t.close())

describe("health, readiness and metrics", () => {
  it("answers liveness and readiness without a key", async () => {
    expect((await t.request({ method: "GET", url: "/healthz", key: null })).json()).toEqual({ status: "ok" })
    const ready = await t.request({ method: "GET", url: "/readyz", key: null })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toEqual({
      status: "ready",
      database: { ok: true },
      rate_limiter: { mode: "local", serving: true },
    })
  })

  it("exposes per-channel decision counters and latency histograms in Prometheus format", async () => {
    const sub = await t.subscription({ plan: "basic" })
    const body = {
      entity_id: sub.entityId,
      entity_type: "organization",
      estimated_tokens: 10,
      channel: "whatsapp",
    }
    await t.request({ method: "POST", url: "/api/tokens/consume", payload: body })
    await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      payload: { ...body, channel: "instagram" },
    })
    const metrics = await t.request({ method: "GET", url: "/metrics", key: null })
    expect(metrics.headers["content-type"]).toContain("text/plain")
    expect(metrics.body).toMatch(/omnimeter_decisions_total\{channel="whatsapp",outcome="allowed"\} [1-9]/)
    expect(metrics.body).toMatch(
      /omnimeter_decisions_total\{channel="instagram",outcome="channel_not_in_plan"\} [1-9]/,
    )
    expect(metrics.body).toContain(
      'omnimeter_decision_duration_seconds_bucket{le="0.005",channel="whatsapp"}',
    )
    expect(metrics.body).toMatch(
      /omnimeter_http_requests_total\{route="\/api\/tokens\/consume",method="POST",status="200"\}/,
    )
  })
})

describe("the OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document that lists every endpoint", async () => {
    const res = await t.request({ method: "GET", url: "/openapi.json", key: null })
    expect(res.statusCode).toBe(200)
    const document = res.json()
    await expect(SwaggerParser.validate(structuredClone(document))).resolves.toBeTruthy()
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        "/api/tokens/consume",
        "/api/tokens/settle",
        "/api/subscriptions",
        "/api/subscriptions/{id}",
        "/api/subscriptions/{id}/keys",
        "/api/subscriptions/{id}/keys/{key_id}",
        "/api/onboarding/channels",
        "/api/onboarding/subscription/{subscription_id}/channels/config",
        "/api/onboarding/subscription/{subscription_id}/channels/{channel}/config",
        "/api/plans",
        "/api/usage/import",
        "/healthz",
        "/readyz",
        "/metrics",
      ]),
    )
    expect(document.components.schemas.ErrorEnvelope).toBeDefined()
  })

  it("serves interactive docs at /docs", async () => {
    const res = await t.request({ method: "GET", url: "/docs/", key: null })
    expect(res.statusCode).toBe(200)
    expect(res.body).toContain("swagger")
  })
})

describe("the error envelope", () => {
  it("answers malformed JSON with 400 and changes nothing", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      headers: { "content-type": "application/json" },
      payload: '{"entity_id": "a", ',
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({
      code: "validation_error",
      request_id: res.headers["x-request-id"],
    })
  })

  it("answers a body over the configured limit with 413", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      payload: {
        entity_id: "a",
        entity_type: "b",
        estimated_tokens: 1,
        channel: "api",
        message: "x".repeat(5000),
      },
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe("payload_too_large")
  })

  it("answers an unsupported content type with 415", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      headers: { "content-type": "text/xml" },
      payload: "<a/>",
    })
    expect(res.statusCode).toBe(415)
    expect(res.json().error.code).toBe("unsupported_media_type")
  })

  it("answers an unknown route with 404 in the envelope", async () => {
    const res = await t.request({ method: "GET", url: "/api/nope", key: null })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({
      error: {
        code: "not_found",
        message: "No route GET /api/nope.",
        request_id: res.headers["x-request-id"],
      },
    })
  })

  it("keeps a well-formed X-Request-Id from the caller and replaces a malformed one", async () => {
    const kept = await t.request({
      method: "GET",
      url: "/healthz",
      key: null,
      headers: { "x-request-id": "trace-123" },
    })
    expect(kept.headers["x-request-id"]).toBe("trace-123")
    const replaced = await t.request({
      method: "GET",
      url: "/healthz",
      key: null,
      headers: { "x-request-id": "bad id\nwith newline" },
    })
    expect(replaced.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/)
  })
})
