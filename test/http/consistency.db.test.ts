/**
 * Small inconsistencies at the HTTP edge (issue 11, defect 10): one spelling of a UUID, strict numbers in
 * query strings, a webhook URL that cannot be connected to, the import's media type named in its error,
 * and the key endpoints answering another subscription's key like the rest of the API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
let sub: Awaited<ReturnType<TestApp["subscription"]>>
beforeAll(async () => {
  t = await startTestApp()
  sub = await t.subscription()
})
afterAll(async () => t.close())

describe("a subscription id in upper case", () => {
  it("is the same subscription for its own key as for the admin", async () => {
    const upper = sub.id.toUpperCase()
    for (const url of [
      `/api/subscriptions/${upper}`,
      `/api/subscriptions/${upper}/alerts`,
      `/api/subscriptions/${upper}/webhooks`,
      `/api/onboarding/subscription/${upper}/channels/config`,
      `/api/onboarding/analytics/${upper}/forecast`,
    ]) {
      const own = await t.request({ method: "GET", url, key: sub.key })
      expect(own.statusCode, `${url}: ${own.body}`).toBe(200)
      const admin = await t.request({ method: "GET", url })
      expect(admin.statusCode, url).toBe(200)
    }
    const read = await t.request({ method: "GET", url: `/api/subscriptions/${upper}`, key: sub.key })
    expect(read.json().id).toBe(sub.id)
  })
})

describe("numbers in a query string", () => {
  it.each([
    ["limit=0x10", "limit"],
    ["limit=1.5", "limit"],
    ["limit=%205", "limit"],
    ["limit=5%20", "limit"],
    ["limit=1e2", "limit"],
    ["limit=+5", "limit"],
    ["limit=", "limit"],
    ["limit=1&limit=2", "limit"],
    ["before=1.5", "before"],
    ["before=0x10", "before"],
    ["before=9007199254740993", "before"],
  ])("refuses %s with 400 naming the parameter", async (query, field) => {
    const res = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alerts?${query}` })
    expect(res.statusCode, res.body).toBe(400)
    expect(res.json().error).toMatchObject({ code: "validation_error", field })
    expect(res.json().error.request_id).toBe(res.headers["x-request-id"])
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/alerts", res)
  })

  it("accepts plain decimal digits", async () => {
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/alerts?limit=10&before=5`,
    })
    expect(res.statusCode, res.body).toBe(200)
    const list = await t.request({ method: "GET", url: "/api/subscriptions?limit=0x10" })
    expect(list.statusCode).toBe(400)
    expect(list.json().error.field).toBe("limit")
  })
})

describe("a webhook URL on port 0", () => {
  it("is refused with 400 naming the url, and nothing is stored", async () => {
    const res = await t.request({
      method: "POST",
      url: `/api/subscriptions/${sub.id}/webhooks`,
      payload: { url: "https://example.com:0/", event_types: ["quota.threshold_reached"] },
    })
    expect(res.statusCode, res.body).toBe(400)
    expect(res.json().error.field).toBe("url")
    const list = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/webhooks` })
    expect(list.json().webhooks).toEqual([])
  })
})

describe("an import without a Content-Type", () => {
  it("is told to send NDJSON, not JSON", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/usage/import",
      payload: Buffer.from('{"subscription_id":"x"}\n'),
      headers: { "content-type": "" },
    })
    expect(res.statusCode, res.body).toBe(415)
    expect(res.json().error.message).toContain("application/x-ndjson")
    expect(res.json().error.message).not.toContain("application/json.")
  })

  it("names JSON where a JSON body was expected", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      payload: "<turn/>",
      headers: { "content-type": "application/xml" },
    })
    expect(res.statusCode).toBe(415)
    expect(res.json().error.message).toContain("application/json")
  })
})

describe("the key endpoints and a subscription key", () => {
  it("answer another subscription's key 404, as every other endpoint does", async () => {
    const other = await t.subscription()
    for (const [method, url] of [
      ["POST", `/api/subscriptions/${sub.id}/keys`],
      ["GET", `/api/subscriptions/${sub.id}/keys`],
      ["DELETE", `/api/subscriptions/${sub.id}/keys/${sub.keyId}`],
    ] as const) {
      const res = await t.request({
        method,
        url,
        key: other.key,
        ...(method === "POST" ? { payload: {} } : {}),
      })
      expect(res.statusCode, `${method} ${url}`).toBe(404)
      expect(res.json().error.code).toBe("subscription_not_found")
    }
    // The key was not revoked by the refused call.
    const still = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}`, key: sub.key })
    expect(still.statusCode).toBe(200)
  })
})
