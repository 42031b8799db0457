/**
 * The operator's cross-subscription overview (issue 16): every figure against a recomputation from the
 * ledger rows in TypeScript (the endpoint reads the hourly rollups and the quota counters), the ranking by
 * each sort, the window of whole hours, validation and security.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const clock = new ManualClock(Date.parse("2026-03-01T00:30:00Z"))
let t: TestApp
type Sub = Awaited<ReturnType<TestApp["subscription"]>>
let growing: Sub
let overQuota: Sub
let idle: Sub

const ROUTE = "/api/admin/overview"

async function turn(sub: Sub, at: string, tokens: number): Promise<string | null> {
  clock.set(Date.parse(at))
  const decision = await t.container.meter.validateAndConsumeTokens({
    entityId: sub.entityId,
    entityType: "organization",
    estimatedTokens: tokens,
    channel: "website",
  })
  return decision.allowed ? decision.usageId : null
}

interface LedgerRow {
  subscription_id: string
  status: string
  billed_tokens: number
  created_at: Date
}

/** The figures of one subscription recomputed from its ledger rows, for a window ending at `end`. */
function recompute(rows: LedgerRow[], subscriptionId: string, end: number, days: number) {
  const span = days * 86_400_000
  const mine = rows.filter((r) => r.subscription_id === subscriptionId)
  const inRange = (r: LedgerRow, from: number, to: number) =>
    r.created_at.getTime() >= from && r.created_at.getTime() < to
  const sum = (list: LedgerRow[]) => list.reduce((total, r) => total + Number(r.billed_tokens), 0)
  const current = mine.filter((r) => inRange(r, end - span, end))
  const previous = mine.filter((r) => inRange(r, end - 2 * span, end - span))
  return {
    tokens_used: sum(current.filter((r) => r.status !== "denied")),
    message_count: current.filter((r) => r.status !== "denied").length,
    denied_count: current.filter((r) => r.status === "denied").length,
    previous_tokens_used: sum(previous.filter((r) => r.status !== "denied")),
    // The whole billing period (March), the current hour included.
    quota_used_tokens: sum(mine.filter((r) => r.status !== "denied")),
  }
}

beforeAll(async () => {
  t = await startTestApp({ clock })
  growing = await t.subscription({ token_limit: 10_000 })
  overQuota = await t.subscription({ token_limit: 1_000 })
  idle = await t.subscription({ token_limit: 0 })
  for (const day of ["06", "07", "08"]) await turn(growing, `2026-03-${day}T13:00:00Z`, 100)
  for (const hour of ["10", "11", "12", "13", "14"]) await turn(growing, `2026-03-15T${hour}:00:00Z`, 100)
  // In the hour still running when the overview is asked for: quota, not the window.
  await turn(growing, "2026-03-20T12:10:00Z", 50)
  const first = await turn(overQuota, "2026-03-18T09:00:00Z", 400)
  await turn(overQuota, "2026-03-18T09:05:00Z", 400)
  expect(await turn(overQuota, "2026-03-18T09:10:00Z", 400)).toBeNull() // quota_exceeded
  clock.set(Date.parse("2026-03-18T09:20:00Z"))
  // Settlement records the truth, past the limit.
  await t.container.meter.settle(first ?? "", { actualTokens: 700 })
  clock.set(Date.parse("2026-03-20T12:40:00Z"))
})
afterAll(async () => t.close())

describe("GET /api/admin/overview", () => {
  it("answers every subscription's figures as a recomputation from the ledger finds them", async () => {
    const res = await t.request({ method: "GET", url: `${ROUTE}?days=7` })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", ROUTE, res)
    const body = res.json()
    expect(body.window).toEqual({
      days: 7,
      previous_start: "2026-03-06T12:00:00.000Z",
      start: "2026-03-13T12:00:00.000Z",
      end: "2026-03-20T12:00:00.000Z",
    })
    const ledger = (await t.container.database.db
      .selectFrom("token_usage_logs")
      .select(["subscription_id", "status", "billed_tokens", "created_at"])
      .execute()) as LedgerRow[]
    const end = Date.parse("2026-03-20T12:00:00Z")
    for (const sub of [growing, overQuota, idle]) {
      const row = body.subscriptions.find((s: { subscription_id: string }) => s.subscription_id === sub.id)
      expect(row, sub.id).toMatchObject(recompute(ledger, sub.id, end, 7))
    }
    expect(body.total).toBe(3)
  })

  it("derives quota use (over 100% when over quota), denial rate and growth", async () => {
    const body = (await t.request({ method: "GET", url: ROUTE })).json()
    const byId = (id: string) =>
      body.subscriptions.find((s: { subscription_id: string }) => s.subscription_id === id)
    // 300 tokens in Mar 6-13, 500 in Mar 13-20: +66.67%.
    expect(byId(growing.id)).toMatchObject({ growth: 66.67, quota_used_tokens: 850, quota_used_percent: 8.5 })
    expect(byId(growing.id).over_quota).toBe(false)
    // 700 settled + 400 = 1,100 of 1,000; one of three turns denied.
    expect(byId(overQuota.id)).toMatchObject({
      quota_used_tokens: 1100,
      quota_used_percent: 110,
      over_quota: true,
      denied_count: 1,
      denial_rate: 33.33,
      growth: null,
    })
    expect(byId(idle.id)).toMatchObject({
      tokens_used: 0,
      quota_used_percent: null,
      denial_rate: null,
      growth: null,
    })
    expect(byId(overQuota.id).period_start).toBe("2026-03-01T00:30:00.000Z")
  })

  it.each([
    ["tokens_used", "desc", () => [overQuota, growing, idle]],
    ["tokens_used", "asc", () => [idle, growing, overQuota]],
    ["quota_used", "desc", () => [overQuota, growing, idle]],
    ["denied_count", "desc", () => [overQuota, ...[growing, idle].sort((a, b) => (a.id < b.id ? -1 : 1))]],
    // Growth is known for one subscription only: the others follow it, in id order, in either order.
    ["growth", "asc", () => [growing, ...[overQuota, idle].sort((a, b) => (a.id < b.id ? -1 : 1))]],
  ] as const)("ranks by %s %s, 1..n without gaps", async (sort, order, expected) => {
    const res = await t.request({ method: "GET", url: `${ROUTE}?sort=${sort}&order=${order}` })
    const list = res.json().subscriptions as { rank: number; subscription_id: string }[]
    expect(list.map((s) => s.subscription_id)).toEqual(expected().map((s) => s.id))
    expect(list.map((s) => s.rank)).toEqual([1, 2, 3])
  })

  it("returns the first `limit` of the ranking and the total", async () => {
    const body = (await t.request({ method: "GET", url: `${ROUTE}?limit=1` })).json()
    expect(body.subscriptions).toHaveLength(1)
    expect(body.total).toBe(3)
  })

  it.each([
    ["days=0", "days"],
    ["days=91", "days"],
    ["sort=cost", "sort"],
    ["order=sideways", "order"],
    ["limit=0", "limit"],
    ["colour=red", "colour"],
  ])("refuses %s with 400 naming %s", async (query, field) => {
    const res = await t.request({ method: "GET", url: `${ROUTE}?${query}` })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.field).toBe(field)
    expectDocumented(t.app, "GET", ROUTE, res)
  })

  it("is for the admin key only: 401 without a key, 403 with a subscription key", async () => {
    const none = await t.request({ method: "GET", url: ROUTE, key: null })
    expect(none.statusCode).toBe(401)
    const sub = await t.request({ method: "GET", url: ROUTE, key: growing.key })
    expect(sub.statusCode).toBe(403)
    expect(sub.json().error).toMatchObject({ code: "forbidden", request_id: sub.headers["x-request-id"] })
    expectDocumented(t.app, "GET", ROUTE, sub)
    const wrong = await t.request({ method: "GET", url: ROUTE, key: "om_sk_never_issued_key_000000000000" })
    expect(wrong.statusCode).toBe(401)
  })
})
