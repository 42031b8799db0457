/**
 * Saved dashboards (issue 16) through the HTTP API: the happy path (save, list, open, rename, reorder,
 * delete), validation that names the field, optimistic concurrency, the per-subscription limit, the
 * security matrix and row level security beneath it.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { DASHBOARD_LIMITS } from "../../src/core/dashboards.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

// 15:00 UTC on March 10 is already March 11 in Tokyo: the presets follow the subscription's day.
const clock = new ManualClock(Date.parse("2026-03-10T15:00:00Z"))
let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string
let dashboardId: string

const base = (id = owner.id) => `/api/subscriptions/${id}/dashboards`
const WIDGETS = [
  { kind: "totals", period: "last_7_days" },
  { kind: "daily_tokens", channels: ["website", "whatsapp"] },
  { kind: "channel_trend", channels: ["telegram"], title: "Telegram", period: "last_14_days" },
]

async function count(subscriptionId: string): Promise<number> {
  const rows = await sql<{ n: number }>`
    select count(*)::int as n from dashboards where subscription_id = ${subscriptionId}`.execute(
    t.container.database.db,
  )
  return Number(rows.rows[0]?.n)
}

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ timezone: "Asia/Tokyo" })
  other = await t.subscription()
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
  const created = await t.request({
    method: "POST",
    url: base(),
    key: owner.key,
    payload: { name: "Support desk", widgets: WIDGETS },
  })
  expect(created.statusCode, created.body).toBe(201)
  dashboardId = created.json().id
  await t.request({
    method: "POST",
    url: base(other.id),
    key: other.key,
    payload: { name: "Theirs", widgets: [{ kind: "quota" }] },
  })
})
afterAll(async () => t.close())

describe("saving and opening a dashboard", () => {
  it("saves the widgets in order with every filter written out, and the days each period covers today", async () => {
    const res = await t.request({ method: "GET", url: `${base()}/${dashboardId}`, key: owner.key })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/dashboards/:dashboard_id", res)
    const body = res.json()
    expect(body).toMatchObject({
      id: dashboardId,
      subscription_id: owner.id,
      name: "Support desk",
      timezone: "Asia/Tokyo",
      version: 1,
    })
    // Today is 2026-03-11 in Tokyo; presets end with the last complete day, the 10th.
    expect(body.widgets).toEqual([
      {
        kind: "totals",
        title: null,
        period: "last_7_days",
        channels: [],
        chatbot_id: null,
        from: "2026-03-04",
        to: "2026-03-10",
      },
      {
        kind: "daily_tokens",
        title: null,
        period: "last_30_days",
        channels: ["website", "whatsapp"],
        chatbot_id: null,
        from: "2026-02-09",
        to: "2026-03-10",
      },
      {
        kind: "channel_trend",
        title: "Telegram",
        period: "last_14_days",
        channels: ["telegram"],
        chatbot_id: null,
        from: "2026-02-25",
        to: "2026-03-10",
      },
    ])
  })

  it("lists only the subscription's own dashboards", async () => {
    const res = await t.request({ method: "GET", url: base(), key: owner.key })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/dashboards", res)
    expect(res.json().dashboards.map((d: { name: string }) => d.name)).toEqual(["Support desk"])
  })

  it("keeps a chatbot filter and answers it as chatbot_id", async () => {
    const res = await t.request({
      method: "POST",
      url: base(),
      payload: { name: "Sales bot", widgets: [{ kind: "totals", chatbot_id: "sales-bot" }] },
    })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json().widgets[0].chatbot_id).toBe("sales-bot")
    expectDocumented(t.app, "POST", "/api/subscriptions/:id/dashboards", res)
    await t.request({ method: "DELETE", url: `${base()}/${res.json().id}` })
  })

  it("reorders the widgets and renames, bumping the version each time", async () => {
    const reordered = [WIDGETS[2], WIDGETS[0], WIDGETS[1]]
    const res = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      key: owner.key,
      payload: { widgets: reordered, version: 1 },
    })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "PATCH", "/api/subscriptions/:id/dashboards/:dashboard_id", res)
    expect(res.json().widgets.map((w: { kind: string }) => w.kind)).toEqual([
      "channel_trend",
      "totals",
      "daily_tokens",
    ])
    expect(res.json().version).toBe(2)
    const renamed = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      key: owner.key,
      payload: { name: "Support desk (weekly)" },
    })
    expect(renamed.json()).toMatchObject({ name: "Support desk (weekly)", version: 3 })
    expect(renamed.json().widgets.map((w: { kind: string }) => w.kind)).toEqual([
      "channel_trend",
      "totals",
      "daily_tokens",
    ])
  })

  it("refuses a change made from an older version with 409, and changes nothing", async () => {
    const before = (await t.request({ method: "GET", url: `${base()}/${dashboardId}` })).json()
    const res = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      payload: { name: "Stale edit", version: before.version - 1 },
    })
    expect(res.statusCode).toBe(409)
    expect(res.json().error).toMatchObject({ code: "conflict", field: "version" })
    expect(res.json().error.message).toContain(`version ${before.version}`)
    expectDocumented(t.app, "PATCH", "/api/subscriptions/:id/dashboards/:dashboard_id", res)
    const after = (await t.request({ method: "GET", url: `${base()}/${dashboardId}` })).json()
    expect(after).toEqual(before)
  })

  it("lets the last write win when no version is sent", async () => {
    const a = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      payload: { widgets: [{ kind: "quota" }] },
    })
    const b = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      payload: { widgets: WIDGETS },
    })
    expect([a.statusCode, b.statusCode]).toEqual([200, 200])
    expect(b.json().version).toBe(a.json().version + 1)
    expect(b.json().widgets).toHaveLength(3)
  })

  it("deletes a dashboard, after which it is 404", async () => {
    const created = await t.request({
      method: "POST",
      url: base(),
      payload: { name: "Short-lived", widgets: [] },
    })
    expect(created.statusCode).toBe(201)
    const url = `${base()}/${created.json().id}`
    const gone = await t.request({ method: "DELETE", url, key: owner.key })
    expect(gone.statusCode).toBe(204)
    expect((await t.request({ method: "GET", url })).statusCode).toBe(404)
    expect((await t.request({ method: "DELETE", url })).statusCode).toBe(404)
  })
})

describe("validation: 400 naming the field, nothing written", () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["an unknown widget kind", { name: "x", widgets: [{ kind: "pie_chart" }] }, "widgets.0.kind"],
    [
      "too many widgets",
      {
        name: "x",
        widgets: Array.from({ length: DASHBOARD_LIMITS.widgets + 1 }, () => ({ kind: "totals" })),
      },
      "widgets",
    ],
    ["a name over 80 characters", { name: "n".repeat(81), widgets: [] }, "name"],
    ["an empty name", { name: "", widgets: [] }, "name"],
    [
      "an unknown period preset",
      { name: "x", widgets: [{ kind: "totals", period: "yesterday" }] },
      "widgets.0.period",
    ],
    [
      "an unknown channel",
      { name: "x", widgets: [{ kind: "totals", channels: ["fax"] }] },
      "widgets.0.channels.0",
    ],
    [
      "a one-channel widget with two channels",
      {
        name: "x",
        widgets: [{ kind: "totals" }, { kind: "hourly_distribution", channels: ["api", "website"] }],
      },
      "widgets.1.channels",
    ],
    [
      "a one-channel widget with none",
      { name: "x", widgets: [{ kind: "channel_trend" }] },
      "widgets.0.channels",
    ],
    [
      "a channel named twice",
      { name: "x", widgets: [{ kind: "totals", channels: ["api", "api"] }] },
      "widgets.0.channels",
    ],
    [
      "an unknown widget field",
      { name: "x", widgets: [{ kind: "totals", colour: "red" }] },
      "widgets.0.colour",
    ],
    ["no widgets list", { name: "x" }, "widgets"],
  ]
  it.each(cases)("refuses %s", async (_, payload, field) => {
    const before = await count(owner.id)
    const res = await t.request({ method: "POST", url: base(), key: owner.key, payload })
    expect(res.statusCode, res.body).toBe(400)
    expect(res.json().error).toMatchObject({ code: "validation_error", field })
    expect(res.json().error.message.startsWith(`${field}:`)).toBe(true)
    expectDocumented(t.app, "POST", "/api/subscriptions/:id/dashboards", res)
    expect(await count(owner.id)).toBe(before)
  })

  it("refuses an empty change and a name over 80 characters on PATCH", async () => {
    const empty = await t.request({ method: "PATCH", url: `${base()}/${dashboardId}`, payload: {} })
    expect(empty.statusCode).toBe(400)
    const long = await t.request({
      method: "PATCH",
      url: `${base()}/${dashboardId}`,
      payload: { name: "n".repeat(81) },
    })
    expect(long.json().error.field).toBe("name")
  })

  it("answers 409 naming the name when it is taken, on create and on rename", async () => {
    const current = (await t.request({ method: "GET", url: `${base()}/${dashboardId}` })).json()
    const twin = await t.request({
      method: "POST",
      url: base(),
      payload: { name: current.name, widgets: [] },
    })
    expect(twin.statusCode).toBe(409)
    expect(twin.json().error).toMatchObject({ code: "conflict", field: "name" })
    const other = await t.request({ method: "POST", url: base(), payload: { name: "Second", widgets: [] } })
    const rename = await t.request({
      method: "PATCH",
      url: `${base()}/${other.json().id}`,
      payload: { name: current.name },
    })
    expect(rename.statusCode).toBe(409)
    await t.request({ method: "DELETE", url: `${base()}/${other.json().id}` })
  })

  it("the same name may be used by another subscription", async () => {
    const res = await t.request({
      method: "POST",
      url: base(other.id),
      payload: { name: "Support desk (weekly)", widgets: [] },
    })
    expect(res.statusCode).toBe(201)
  })

  it("keeps at most 50 dashboards per subscription, even when created at once", async () => {
    const sub = await t.subscription()
    const attempts = await Promise.all(
      Array.from({ length: DASHBOARD_LIMITS.dashboardsPerSubscription + 5 }, (_, i) =>
        t.request({
          method: "POST",
          url: base(sub.id),
          key: sub.key,
          payload: { name: `View ${i}`, widgets: [] },
        }),
      ),
    )
    const statuses = attempts.map((a) => a.statusCode)
    expect(statuses.filter((s) => s === 201)).toHaveLength(DASHBOARD_LIMITS.dashboardsPerSubscription)
    expect(statuses.filter((s) => s === 409)).toHaveLength(5)
    expect(await count(sub.id)).toBe(DASHBOARD_LIMITS.dashboardsPerSubscription)
  })
})

const endpoints: MatrixEndpoint[] = [
  {
    name: "list dashboards",
    method: "GET",
    route: "/api/subscriptions/:id/dashboards",
    url: () => base(),
    expect: { other: 404 },
  },
  {
    name: "create dashboard",
    method: "POST",
    route: "/api/subscriptions/:id/dashboards",
    url: () => base(),
    payload: () => ({ name: `Matrix ${Math.random().toString(36).slice(2)}`, widgets: [{ kind: "quota" }] }),
    expect: { other: 404, own: 201, admin: 201 },
  },
  {
    name: "read dashboard",
    method: "GET",
    route: "/api/subscriptions/:id/dashboards/:dashboard_id",
    url: () => `${base()}/${dashboardId}`,
    expect: { other: 404 },
  },
  {
    name: "change dashboard",
    method: "PATCH",
    route: "/api/subscriptions/:id/dashboards/:dashboard_id",
    url: () => `${base()}/${dashboardId}`,
    payload: () => ({ widgets: WIDGETS }),
    expect: { other: 404 },
  },
  {
    name: "delete dashboard",
    method: "DELETE",
    route: "/api/subscriptions/:id/dashboards/:dashboard_id",
    url: () => `${base()}/00000000-0000-4000-8000-000000000000`,
    expect: { other: 404, own: 404, admin: 404 },
  },
]

describeSecurityMatrix(endpoints, {
  app: () => t,
  revokedKey: () => revokedKey,
  otherKey: () => other.key,
  ownKey: () => owner.key,
})

describe("tenant isolation", () => {
  it("another subscription's key cannot read, change or delete a dashboard through its own path either", async () => {
    // The dashboard id under the other subscription's path: not found, not someone else's.
    const url = `${base(other.id)}/${dashboardId}`
    for (const method of ["GET", "DELETE"] as const) {
      expect((await t.request({ method, url, key: other.key })).statusCode).toBe(404)
    }
    const patch = await t.request({ method: "PATCH", url, key: other.key, payload: { name: "hijacked" } })
    expect(patch.statusCode).toBe(404)
    const mine = await t.request({ method: "GET", url: `${base()}/${dashboardId}` })
    expect(mine.json().name).not.toBe("hijacked")
  })

  it("row level security shows a scoped transaction only its own dashboards and refuses forged rows", async () => {
    const seen = await t.container.database.withTenant(owner.id, async (trx) =>
      Number(
        (
          await sql<{
            n: number
          }>`select count(*)::int as n from dashboards where subscription_id <> ${owner.id}`.execute(trx)
        ).rows[0]?.n,
      ),
    )
    expect(seen).toBe(0)
    expect(await count(other.id)).toBeGreaterThan(0)
    await expect(
      t.container.database.withTenant(owner.id, (trx) =>
        sql`insert into dashboards (subscription_id, name, widgets) values (${other.id}, 'forged', '[]')`.execute(
          trx,
        ),
      ),
    ).rejects.toThrow(/row-level security/)
  })
})
