/**
 * The turn log, GET /api/subscriptions/{id}/turns and .../turns/{usage_id}, on both databases: every
 * filter and every page against the turns the test itself made (kept in a plain list here), the CSV export
 * streamed across many database pages, the error paths naming the parameter, and the security matrix.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Channel } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { EXPORT_PAGE_SIZE } from "../../src/turns/turn-log.js"
import { parseCsv } from "../support/csv.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { describeSecurityMatrix } from "../support/security-matrix.js"

const ROUTE = "/api/subscriptions/:id/turns"
const clock = new ManualClock(Date.parse("2026-11-20T09:00:00Z"))
let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string

/** What the test sent, as it expects the log to show it. */
interface Made {
  usageId: string
  at: number
  channel: string
  chatbot: string
  user: string
  session: string
  decision: "allowed" | "denied"
  reason: string | null
}
const made: Made[] = []

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ plan: "basic", token_limit: 100_000 })
  other = await t.subscription()
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
  // 24 turns: 3 chatbots, 4 users, 6 sessions; instagram is outside the basic plan, so those are denied.
  for (let i = 0; i < 24; i += 1) {
    clock.advance(61_000)
    const channel: Channel = (["website", "whatsapp", "instagram"] as const)[i % 3] ?? "website"
    const input = {
      entityId: owner.entityId,
      entityType: "organization",
      estimatedTokens: 100 + i,
      channel,
      chatbotId: ["sales", "support", "faq"][i % 3 === 2 ? 2 : i % 2] ?? "sales",
      userIdentifier: `user-${i % 4}`,
      sessionId: `session-${i % 6}`,
      operationType: "chat",
    }
    const decision = await t.container.meter.validateAndConsumeTokens(input)
    made.push({
      usageId: decision.allowed ? decision.usageId : "",
      at: clock.now(),
      channel,
      chatbot: input.chatbotId,
      user: input.userIdentifier,
      session: input.sessionId,
      decision: decision.allowed ? "allowed" : "denied",
      reason: decision.allowed ? null : decision.reason,
    })
  }
  // A denial answers no usage_id; its ledger row is found by its time (each turn has its own minute).
  const rows = await sql<{ id: string; created_at: Date }>`select id, created_at from token_usage_logs
    where subscription_id = ${owner.id}`.execute(t.container.database.db)
  for (const m of made) {
    if (m.usageId === "")
      m.usageId = rows.rows.find((r) => new Date(r.created_at).getTime() === m.at)?.id ?? ""
  }
  // The other tenant's turns must never show.
  await t.container.meter.validateAndConsumeTokens({
    entityId: other.entityId,
    entityType: "organization",
    estimatedTokens: 5,
    channel: "website",
  })
})
afterAll(async () => t?.close())

const newestFirst = (list: Made[]) => [...list].sort((a, b) => b.at - a.at).map((m) => m.usageId)

async function listAll(query: string, limit = 500, key = owner.key): Promise<string[]> {
  const ids: string[] = []
  let cursor: string | null = null
  do {
    const url: string = `/api/subscriptions/${owner.id}/turns?limit=${limit}${query ? `&${query}` : ""}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`
    const res = await t.request({ method: "GET", url, key })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", ROUTE, res)
    const body = res.json() as { turns: Array<{ usage_id: string }>; next_cursor: string | null }
    expect(body.turns.length).toBeLessThanOrEqual(limit)
    ids.push(...body.turns.map((turn) => turn.usage_id))
    cursor = body.next_cursor
  } while (cursor)
  return ids
}

describe("the turn log", () => {
  it("made its turns the way the test meant: some allowed, some denied as not in the plan", () => {
    expect(made.filter((m) => m.decision === "denied").map((m) => m.reason)).toEqual(
      Array(8).fill("channel_not_in_plan"),
    )
    expect(made.every((m) => m.usageId !== "")).toBe(true)
  })

  it("lists every turn of the subscription, newest first, and no other tenant's", async () => {
    expect(await listAll("")).toEqual(newestFirst(made))
  })

  it("pages by cursor without skipping or repeating a turn", async () => {
    expect(await listAll("", 5)).toEqual(newestFirst(made))
    expect(await listAll("", 1)).toEqual(newestFirst(made))
  })

  it("a turn written while paging appears above the first page, never on a later one", async () => {
    const first = await t.request({ method: "GET", url: `/api/subscriptions/${owner.id}/turns?limit=10` })
    clock.advance(1_000)
    const late = await t.container.meter.validateAndConsumeTokens({
      entityId: owner.entityId,
      entityType: "organization",
      estimatedTokens: 1,
      channel: "website",
      sessionId: "late",
    })
    if (!late.allowed) throw new Error("the late turn was denied")
    const rest = await listAll(`cursor=${encodeURIComponent(first.json().next_cursor)}`, 500)
    expect([...first.json().turns.map((x: { usage_id: string }) => x.usage_id), ...rest]).toEqual(
      newestFirst(made),
    )
    const top = await t.request({ method: "GET", url: `/api/subscriptions/${owner.id}/turns?limit=1` })
    expect(top.json().turns[0].usage_id).toBe(late.usageId)
    await sql`delete from token_usage_logs where id = ${late.usageId}::uuid`.execute(t.container.database.db)
  })

  it.each([
    ["channel=whatsapp", (m: Made) => m.channel === "whatsapp"],
    ["chatbot_id=support", (m: Made) => m.chatbot === "support"],
    ["user_identifier=user-2", (m: Made) => m.user === "user-2"],
    ["session_id=session-5", (m: Made) => m.session === "session-5"],
    ["decision=denied", (m: Made) => m.decision === "denied"],
    ["decision=allowed", (m: Made) => m.decision === "allowed"],
    ["reason=channel_not_in_plan", (m: Made) => m.reason === "channel_not_in_plan"],
    ["reason=quota_exceeded", () => false],
    [
      "chatbot_id=sales&user_identifier=user-0&decision=allowed",
      (m: Made) => m.chatbot === "sales" && m.user === "user-0" && m.decision === "allowed",
    ],
  ])("filters by %s", async (query, keep) => {
    expect(await listAll(query, 3)).toEqual(newestFirst(made.filter(keep)))
  })

  it("filters by a time range: from included, to excluded", async () => {
    const from = made[5]?.at ?? 0
    const to = made[15]?.at ?? 0
    const query = `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`
    expect(await listAll(query)).toEqual(newestFirst(made.filter((m) => m.at >= from && m.at < to)))
  })

  it("shows a turn's decision and its settlement, and opens one turn by its id", async () => {
    const allowed = made.find((m) => m.decision === "allowed" && m.channel === "whatsapp")
    if (!allowed) throw new Error("no allowed whatsapp turn")
    await t.container.meter.settle(allowed.usageId, { actualTokens: 40, outcome: "ok", latencyMs: 812 })
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${owner.id}/turns/${allowed.usageId}`,
      key: owner.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", `${ROUTE}/:usage_id`, res)
    expect(res.json()).toMatchObject({
      usage_id: allowed.usageId,
      created_at: new Date(allowed.at).toISOString(),
      channel: "whatsapp",
      chatbot_id: allowed.chatbot,
      user_identifier: allowed.user,
      session_id: allowed.session,
      decision: "allowed",
      denial_reason: null,
      status: "settled",
      raw_tokens: 40,
      outcome: "ok",
      latency_ms: 812,
    })
    expect(res.json().billed_tokens).toBe(Math.ceil(40 * res.json().token_multiplier))
    const denied = made.find((m) => m.decision === "denied")
    const one = await t.request({
      method: "GET",
      url: `/api/subscriptions/${owner.id}/turns/${denied?.usageId}`,
    })
    expect(one.json()).toMatchObject({
      decision: "denied",
      denial_reason: "channel_not_in_plan",
      status: "denied",
      billed_tokens: 0,
    })
  })
})

describe("the turn log's errors", () => {
  it.each([
    ["cursor=not-a-cursor", "cursor"],
    [`cursor=${Buffer.from("2026-01-01T00:00:00Z|x").toString("base64url")}`, "cursor"],
    ["from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z", "from"],
    ["decision=allowed&reason=rate_limited", "reason"],
    ["reason=bored", "reason"],
    ["channel=fax", "channel"],
    ["decision=maybe", "decision"],
    ["from=yesterday", "from"],
    ["limit=0", "limit"],
    ["limit=501", "limit"],
    ["chatbot_id=", "chatbot_id"],
    ["colour=red", "colour"],
  ])("?%s answers 400 naming %s", async (query, field) => {
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${owner.id}/turns?${query}`,
      key: owner.key,
    })
    expect(res.statusCode, res.body).toBe(400)
    expectDocumented(t.app, "GET", ROUTE, res)
    expect(res.json().error).toMatchObject({ code: "validation_error", field })
  })

  it("a turn the subscription does not have answers 404 usage_not_found, even another tenant's", async () => {
    const theirs = await t.request({
      method: "GET",
      url: `/api/subscriptions/${other.id}/turns`,
      key: other.key,
    })
    const theirId = theirs.json().turns[0].usage_id as string
    for (const usageId of [theirId, "01890000-0000-7000-8000-000000000000"]) {
      const res = await t.request({ method: "GET", url: `/api/subscriptions/${owner.id}/turns/${usageId}` })
      expect(res.statusCode).toBe(404)
      expect(res.json().error.code).toBe("usage_not_found")
      expectDocumented(t.app, "GET", `${ROUTE}/:usage_id`, res)
    }
  })

  it("a subscription that does not exist answers 404, in JSON and in CSV", async () => {
    for (const url of [
      "/api/subscriptions/00000000-0000-4000-8000-000000000000/turns",
      "/api/subscriptions/00000000-0000-4000-8000-000000000000/turns?format=csv",
    ]) {
      const res = await t.request({ method: "GET", url })
      expect(res.statusCode).toBe(404)
      expect(res.headers["content-type"]).toContain("application/json")
      expect(res.json().error.code).toBe("subscription_not_found")
    }
  })
})

describe("the turn log as CSV", () => {
  it("?format=csv and Accept: text/csv stream every matching turn, the header naming the documented fields", async () => {
    const document = t.app.swagger() as {
      paths: Record<string, { get: { responses: Record<string, unknown> } }>
    }
    const json = (
      await t.request({ method: "GET", url: `/api/subscriptions/${owner.id}/turns?limit=1` })
    ).json()
    for (const request of [
      { url: `/api/subscriptions/${owner.id}/turns?format=csv&decision=denied&limit=1` },
      {
        url: `/api/subscriptions/${owner.id}/turns?decision=denied&limit=1`,
        headers: { accept: "text/csv" },
      },
    ]) {
      const res = await t.request({ method: "GET", ...request, key: owner.key })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.headers["content-type"]).toBe("text/csv; charset=utf-8")
      expect(res.headers["content-disposition"]).toBe('attachment; filename="turns.csv"')
      expectDocumented(t.app, "GET", ROUTE, res)
      const [header, ...rows] = parseCsv(res.body)
      expect(header).toEqual(Object.keys(json.turns[0]))
      // Every matching turn, not one page: limit applies to JSON pages only.
      expect(rows.map((r) => r[0])).toEqual(newestFirst(made.filter((m) => m.decision === "denied")))
      expect(rows.every((r) => r[header?.indexOf("decision") ?? -1] === "denied")).toBe(true)
    }
    expect(document.paths["/api/subscriptions/{id}/turns"]?.get.responses["200"]).toMatchObject({
      content: { "text/csv": expect.anything() },
    })
  })

  it("Accept preferring JSON, or format=json, answers JSON", async () => {
    for (const request of [
      {
        url: `/api/subscriptions/${owner.id}/turns`,
        headers: { accept: "application/json, text/csv;q=0.5" },
      },
      { url: `/api/subscriptions/${owner.id}/turns?format=json`, headers: { accept: "text/csv" } },
    ]) {
      const res = await t.request({ method: "GET", ...request })
      expect(res.headers["content-type"]).toContain("application/json")
    }
  })

  it("an export larger than a database page comes out whole, in order, once each", async () => {
    const sub = await t.subscription()
    const count = EXPORT_PAGE_SIZE * 2 + 345
    // Written straight to the ledger in one statement, as an import would: a text with a comma, a quote
    // and a formula-looking user id checks the quoting.
    await sql`
      insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, operation_type, status,
        estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
      select ${sub.id}::uuid, 'api', 'bot, "the" one', '=cmd|' || (i % 7), 'chat', 'estimated', 10, 10, 10, 1,
        timestamptz '2026-11-01T00:00:00Z' + i * interval '1 second'
      from generate_series(1, ${count}) as i`.execute(t.container.database.db)
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/turns?format=csv`,
      key: sub.key,
    })
    expect(res.statusCode).toBe(200)
    const [header, ...rows] = parseCsv(res.body)
    expect(rows).toHaveLength(count)
    const at = header?.indexOf("created_at") ?? -1
    const times = rows.map((r) => Date.parse(r[at] ?? ""))
    expect(times[0]).toBe(Date.parse("2026-11-01T00:00:00Z") + count * 1000)
    expect(times.every((time, i) => i === 0 || time === (times[i - 1] ?? 0) - 1000)).toBe(true)
    expect(new Set(rows.map((r) => r[0])).size).toBe(count)
    expect(rows[0]?.[header?.indexOf("chatbot_id") ?? -1]).toBe('bot, "the" one')
    expect(rows[0]?.[header?.indexOf("user_identifier") ?? -1]).toMatch(/^'=cmd\|\d$/)
  })
})

describe("the alerts list as CSV", () => {
  it("streams every alert, the header naming the alert's fields, data as JSON text", async () => {
    const sub = await t.subscription({ token_limit: 1000 })
    for (const tokens of [600, 250, 100]) {
      await t.container.meter.validateAndConsumeTokens({
        entityId: sub.entityId,
        entityType: "organization",
        estimatedTokens: tokens,
        channel: "website",
      })
    }
    const json = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alerts`, key: sub.key })
    const alerts = json.json().alerts as Array<Record<string, unknown>>
    expect(alerts.length).toBeGreaterThanOrEqual(3)
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/alerts?format=csv&limit=1`,
      key: sub.key,
    })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/alerts", res)
    const [header, ...rows] = parseCsv(res.body)
    expect(header).toEqual(Object.keys(alerts[0] ?? {}))
    expect(rows.map((r) => r[0])).toEqual(alerts.map((a) => a.id))
    const data = header?.indexOf("data") ?? -1
    expect(rows.map((r) => JSON.parse(r[data] ?? ""))).toEqual(alerts.map((a) => a.data))
  })
})

describeSecurityMatrix(
  [
    {
      name: "the turn log",
      method: "GET",
      route: ROUTE,
      url: () => `/api/subscriptions/${owner.id}/turns`,
      expect: { other: 404 },
    },
    {
      name: "the turn log as CSV",
      method: "GET",
      route: ROUTE,
      url: () => `/api/subscriptions/${owner.id}/turns?format=csv`,
      expect: { other: 404 },
    },
    {
      name: "one turn",
      method: "GET",
      route: `${ROUTE}/:usage_id`,
      url: () => `/api/subscriptions/${owner.id}/turns/${made[0]?.usageId}`,
      expect: { other: 404 },
    },
  ],
  { app: () => t, revokedKey: () => revokedKey, otherKey: () => other.key, ownKey: () => owner.key },
)
