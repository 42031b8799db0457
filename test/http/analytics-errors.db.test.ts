/**
 * The analytics endpoints' error and security paths: bad query parameters answer 400 naming the parameter
 * in the one envelope, and every endpoint answers only the subscription's own key and the admin key
 * (another subscription's key gets the same 404 as a subscription that does not exist).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const clock = new ManualClock(Date.parse("2026-11-25T12:00:00Z"))
let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ timezone: "Europe/Berlin" })
  other = await t.subscription()
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  const revoke = await t.request({
    method: "DELETE",
    url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}`,
  })
  expect(revoke.statusCode).toBe(204)
})
afterAll(async () => t?.close())

const ENDPOINTS = [
  {
    route: "/api/onboarding/analytics/:subscription_id",
    path: (id: string) => `/api/onboarding/analytics/${id}`,
  },
  {
    route: "/api/onboarding/analytics/:subscription_id/channels/comparison",
    path: (id: string) => `/api/onboarding/analytics/${id}/channels/comparison`,
  },
  {
    route: "/api/onboarding/analytics/:subscription_id/channels/:channel/trends",
    path: (id: string) => `/api/onboarding/analytics/${id}/channels/whatsapp/trends`,
  },
]

describe.each(ENDPOINTS)("GET $route", ({ route, path }) => {
  const cases: Array<[string, string, string]> = [
    ["from=2026-02-30", "from", "an impossible date"],
    ["from=yesterday", "from", "a word for a date"],
    ["to=2026-1-05", "to", "a date without zero padding"],
    ["from=2026-03-10&to=2026-03-09", "from", "from after to"],
    ["from=2025-01-01&to=2026-02-05", "from", "a period over 400 days"],
    ["to=2020-01-01&from=2018-10-01", "from", "a period over 400 days in the past"],
    ["tz=Mars/Olympus_Mons", "tz", "an unknown timezone"],
    ["channels=website,fax", "channels", "an unknown channel"],
    ["channels=", "channels", "an empty channel list"],
    ["colour=red", "colour", "an unknown parameter"],
  ]
  it.each(cases)("?%s answers 400 naming %s (%s)", async (query, field) => {
    const res = await t.request({ method: "GET", url: `${path(owner.id)}?${query}`, key: owner.key })
    expect(res.statusCode, res.body).toBe(400)
    expectDocumented(t.app, "GET", route, res)
    expect(res.json().error).toMatchObject({ code: "validation_error", field })
    expect(res.json().error.message).toContain(field)
  })

  it("a period of exactly 400 days is served", async () => {
    const res = await t.request({
      method: "GET",
      url: `${path(owner.id)}?from=2025-06-01&to=2026-07-05`,
      key: owner.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().period.days).toBe(400)
  })

  it("a subscription that does not exist answers 404", async () => {
    const res = await t.request({ method: "GET", url: path("00000000-0000-4000-8000-000000000000") })
    expect(res.statusCode).toBe(404)
    expectDocumented(t.app, "GET", route, res)
    expect(res.json().error.code).toBe("subscription_not_found")
  })

  it("a malformed subscription id answers 400", async () => {
    const res = await t.request({ method: "GET", url: path("not-a-uuid") })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.field).toBe("subscription_id")
  })

  const callers: Array<[string, () => string | null, number]> = [
    ["no key", () => null, 401],
    ["a wrong key", () => "om_sub_this_key_does_not_exist_0000000000", 401],
    ["a revoked key", () => revokedKey, 401],
    ["another subscription's key", () => other.key, 404],
    ["the subscription's own key", () => owner.key, 200],
    ["the admin key", () => ADMIN_KEY, 200],
  ]
  it.each(callers)("called with %s answers %i", async (_name, key, status) => {
    const res = await t.request({ method: "GET", url: path(owner.id), key: key() })
    expect(res.statusCode, res.body).toBe(status)
    expectDocumented(t.app, "GET", route, res)
    if (status === 200) expect(res.json().subscription_id).toBe(owner.id)
    if (status === 404) expect(res.json().error.code).toBe("subscription_not_found")
  })
})

describe("the trends endpoint", () => {
  const TRENDS = "/api/onboarding/analytics/:subscription_id/channels/:channel/trends"
  const url = (channel: string, query = "") =>
    `/api/onboarding/analytics/${owner.id}/channels/${channel}/trends${query}`

  it("an unknown channel in the path answers 400 naming channel", async () => {
    const res = await t.request({ method: "GET", url: url("fax"), key: owner.key })
    expect(res.statusCode).toBe(400)
    expectDocumented(t.app, "GET", TRENDS, res)
    expect(res.json().error).toMatchObject({ code: "validation_error", field: "channel" })
  })

  it("hourly granularity over more than 14 days answers 400 naming granularity", async () => {
    const res = await t.request({
      method: "GET",
      url: url("api", "?from=2026-11-01&to=2026-11-15&granularity=hourly"),
      key: owner.key,
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: "validation_error", field: "granularity" })
  })

  it("hourly granularity over 14 days gives one point per hour", async () => {
    const res = await t.request({
      method: "GET",
      url: url("api", "?from=2026-11-01&to=2026-11-14&granularity=hourly"),
      key: owner.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().points).toHaveLength(14 * 24)
  })

  it("an unknown granularity answers 400 naming granularity", async () => {
    const res = await t.request({ method: "GET", url: url("api", "?granularity=weekly"), key: owner.key })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.field).toBe("granularity")
  })

  it("a channels filter without the path's channel answers 400 naming channels", async () => {
    const res = await t.request({ method: "GET", url: url("api", "?channels=website"), key: owner.key })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.field).toBe("channels")
  })
})
