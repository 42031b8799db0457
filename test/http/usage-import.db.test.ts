import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
beforeAll(async () => {
  t = await startTestApp()
})
afterAll(async () => t.close())

const IMPORT = "/api/usage/import"
const ndjson = (lines: unknown[]) =>
  lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")

async function ledger(subscriptionId: string) {
  return t.container.database.db
    .selectFrom("token_usage_logs")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at")
    .execute()
}

describe("POST /api/usage/import", () => {
  it("imports good lines, lists bad ones with their line number and reason, and never lets a bad line block a good one", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    const good = {
      subscription_id: sub.id,
      channel: "whatsapp",
      created_at: "2026-02-03T10:00:00Z",
      raw_tokens: 101,
      user_identifier: "u1",
    }
    const body = ndjson([
      good,
      "{not json",
      { ...good, channel: "sms" },
      { ...good, raw_tokens: -3 },
      { channel: "api", created_at: "2026-02-03T10:00:00Z", raw_tokens: 1 },
      { ...good, subscription_id: "00000000-0000-4000-8000-000000000000" },
      { ...good, created_at: "2999-01-01T00:00:00Z" },
      "",
      {
        entity_id: sub.entityId,
        entity_type: "organization",
        channel: "api",
        created_at: "2026-02-04T23:50:00+05:45",
        raw_tokens: 10,
      },
    ])
    const res = await t.request({
      method: "POST",
      url: IMPORT,
      headers: { "content-type": "application/x-ndjson" },
      payload: body,
    })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "POST", IMPORT, res)
    const report = res.json()
    expect(report).toMatchObject({ imported: 2, duplicates: 0, rejected_count: 6 })
    expect(report.rejected.map((r: { line: number }) => r.line)).toEqual([2, 3, 4, 5, 6, 7])
    expect(report.rejected[0].reason).toBe("not valid JSON")
    expect(report.rejected[1].reason).toContain("channel")
    expect(report.rejected[4].reason).toContain("subscription_not_found")
    expect(report.rejected[5].reason).toContain("future")
    const rows = await ledger(sub.id)
    expect(rows.map((r) => [r.channel, r.status, Number(r.raw_tokens), Number(r.billed_tokens)])).toEqual([
      ["whatsapp", "settled", 101, 122],
      ["api", "settled", 10, 9],
    ])
    expect(rows[1]?.created_at.toISOString()).toBe("2026-02-04T18:05:00.000Z")
  })

  it("bills with the channel's configured multiplier and counts the tokens in their billing period", async () => {
    const sub = await t.subscription({ period_start: "2026-01-15T00:00:00Z" })
    await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/telegram/config`,
      payload: { token_multiplier: 1.1 },
    })
    const res = await t.request({
      method: "POST",
      url: IMPORT,
      headers: { "content-type": "application/x-ndjson" },
      payload: ndjson([
        { subscription_id: sub.id, channel: "telegram", created_at: "2026-02-01T00:00:00Z", raw_tokens: 3 },
        { subscription_id: sub.id, channel: "telegram", created_at: "2026-02-20T00:00:00Z", raw_tokens: 10 },
      ]),
    })
    expect(res.json().imported).toBe(2)
    const counters = await t.container.database.db
      .selectFrom("quota_counters")
      .select(["period_start", "used_tokens"])
      .where("subscription_id", "=", sub.id)
      .orderBy("period_start")
      .execute()
    expect(counters.map((c) => [c.period_start.toISOString(), Number(c.used_tokens)])).toEqual([
      ["2026-01-15T00:00:00.000Z", 4],
      ["2026-02-15T00:00:00.000Z", 11],
    ])
  })

  it("does not duplicate a line re-imported with the same idempotency key, across batches and within one", async () => {
    const sub = await t.subscription()
    const lines = Array.from({ length: 2500 }, (_, i) => ({
      subscription_id: sub.id,
      channel: "website",
      created_at: new Date(Date.parse("2026-03-01T00:00:00Z") + i * 60_000).toISOString(),
      raw_tokens: 10,
      idempotency_key: `msg-${i % 2000}`,
    }))
    const send = () =>
      t.request({
        method: "POST",
        url: IMPORT,
        headers: { "content-type": "application/x-ndjson" },
        payload: ndjson(lines),
      })
    expect((await send()).json()).toMatchObject({ imported: 2000, duplicates: 500, rejected_count: 0 })
    expect((await send()).json()).toMatchObject({ imported: 0, duplicates: 2500 })
    expect((await ledger(sub.id)).length).toBe(2000)
  })

  it("refuses a JSON body and a subscription key", async () => {
    const sub = await t.subscription()
    const json = await t.request({ method: "POST", url: IMPORT, payload: { a: 1 } })
    expect(json.statusCode).toBe(415)
    const tenant = await t.request({
      method: "POST",
      url: IMPORT,
      key: sub.key,
      headers: { "content-type": "application/x-ndjson" },
      payload: "{}",
    })
    expect(tenant.statusCode).toBe(403)
    const anonymous = await t.request({
      method: "POST",
      url: IMPORT,
      key: null,
      headers: { "content-type": "application/x-ndjson" },
      payload: "{}",
    })
    expect(anonymous.statusCode).toBe(401)
  })
})
