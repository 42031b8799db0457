/**
 * Drill-down by chatbot, end user and session, on both databases: the breakdown endpoint and the analytics
 * endpoints' chatbot_id and user_identifier filters, each against a recomputation in TypeScript from the
 * turns the test generated (not from the database), in UTC and in a half-hour zone (the 15-minute
 * rollups); the CSV exports of the analytics answers; the error and security paths.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CHANNELS } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { parseCsv } from "../support/csv.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { describeSecurityMatrix } from "../support/security-matrix.js"

const clock = new ManualClock(Date.parse("2026-03-20T12:00:00Z"))
let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string

interface Generated {
  at: number
  channel: string
  chatbot: string | null
  user: string | null
  session: string | null
  denied: string | null
  raw: number
  billed: number
}
const turns: Generated[] = []

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ timezone: "UTC" })
  other = await t.subscription()
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
  const next = random(16)
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)] as T
  const start = Date.parse("2026-02-20T00:00:00Z")
  for (let i = 0; i < 900; i += 1) {
    const denied = next() < 0.15 ? pick(["rate_limited", "quota_exceeded", "message_too_long"]) : null
    const raw = 1 + Math.floor(next() * 500)
    turns.push({
      // Minutes apart and never on the same instant, so last activity and order are unambiguous.
      at: start + i * 31 * 60_000 + Math.floor(next() * 60) * 1000,
      channel: pick(CHANNELS),
      chatbot: pick(["sales", "support", "faq", null]),
      user: pick([...Array.from({ length: 12 }, (_, n) => `user-${String(n).padStart(2, "0")}`), null, ""]),
      session: next() < 0.1 ? null : `s-${String(Math.floor(next() * 60)).padStart(3, "0")}`,
      denied,
      raw: denied ? 0 : raw,
      billed: denied ? 0 : Math.ceil(raw * 1.5),
    })
  }
  await sql`
    insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, session_id,
      operation_type, status, denial_reason, estimated_tokens, raw_tokens, billed_tokens, token_multiplier,
      created_at)
    select ${owner.id}::uuid, x.channel, x.chatbot, x.user_id, x.session, 'chat',
      case when x.denied is null then 'estimated' else 'denied' end, x.denied, x.raw, x.raw, x.billed, 1.5, x.at
    from jsonb_to_recordset(${JSON.stringify(turns.map((g) => ({ ...g, user_id: g.user, at: new Date(g.at).toISOString() })))}::jsonb)
      as x(at timestamptz, channel text, chatbot text, user_id text, session text, denied text, raw bigint,
        billed bigint)`.execute(t.container.database.db)
  // Another tenant's turns with the same chatbot and user names must never count.
  await sql`
    insert into token_usage_logs (subscription_id, channel, chatbot_id, user_identifier, session_id,
      operation_type, status, estimated_tokens, raw_tokens, billed_tokens, token_multiplier, created_at)
    values (${other.id}::uuid, 'website', 'sales', 'user-01', 's-001', 'chat', 'estimated', 9, 9, 9, 1,
      '2026-03-03T10:00:00Z')`.execute(t.container.database.db)
})
afterAll(async () => t?.close())

const base = () => `/api/onboarding/analytics/${owner.id}`
const PERIOD = "from=2026-03-02&to=2026-03-08"

/** The turns of `[start, end)`. */
const within = (start: string, end: string) => (g: Generated) =>
  g.at >= Date.parse(start) && g.at < Date.parse(end)

interface Item {
  key: string | null
  tokens_used: number
  raw_tokens: number
  message_count: number
  denied_count: number
  turns: number
  unique_users: number
  unique_people: number
  sessions: number
  last_activity_at: string
}

/** The breakdown recomputed from the generated turns. */
function expectedItems(rows: Generated[], keyOf: (g: Generated) => string | null): Item[] {
  const groups = new Map<string | null, Generated[]>()
  for (const g of rows) {
    const key = keyOf(g) || null
    groups.set(key, [...(groups.get(key) ?? []), g])
  }
  return [...groups].map(([key, list]) => {
    const allowed = list.filter((g) => g.denied === null)
    return {
      key,
      tokens_used: allowed.reduce((sum, g) => sum + g.billed, 0),
      raw_tokens: allowed.reduce((sum, g) => sum + g.raw, 0),
      message_count: allowed.length,
      denied_count: list.length - allowed.length,
      turns: list.length,
      unique_users: new Set(allowed.map((g) => g.user).filter((u) => u)).size,
      // No identifier is linked here: a person per channel and identifier.
      unique_people: new Set(allowed.filter((g) => g.user).map((g) => `${g.channel}|${g.user}`)).size,
      sessions: new Set(list.map((g) => g.session).filter((s) => s)).size,
      last_activity_at: new Date(Math.max(...list.map((g) => g.at))).toISOString(),
    }
  })
}

const byKey = (a: Item, b: Item) =>
  a.key === b.key ? 0 : a.key === null ? -1 : b.key === null ? 1 : a.key < b.key ? -1 : 1

async function allPages(query: string, limit: number): Promise<Item[]> {
  const items: Item[] = []
  let offset: number | null = 0
  while (offset !== null) {
    const res = await t.request({
      method: "GET",
      url: `${base()}/breakdown?${query}&limit=${limit}&offset=${offset}`,
      key: owner.key,
    })
    expect(res.statusCode, res.body).toBe(200)
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/breakdown", res)
    items.push(...res.json().items)
    offset = res.json().next_offset
  }
  return items
}

describe("the breakdown", () => {
  const period = within("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z")
  const dimensions = [
    ["chatbot", (g: Generated) => g.chatbot],
    ["user", (g: Generated) => g.user],
    ["session", (g: Generated) => g.session],
  ] as const

  it.each(dimensions)(
    "by %s equals a recomputation from the turns, most tokens first, every page",
    async (by, keyOf) => {
      const expected = expectedItems(turns.filter(period), keyOf).sort(
        (a, b) => b.tokens_used - a.tokens_used || byKey(a, b),
      )
      expect(expected.length).toBeGreaterThan(3)
      expect(await allPages(`by=${by}&${PERIOD}`, 4)).toEqual(expected)
      const first = await t.request({ method: "GET", url: `${base()}/breakdown?by=${by}&${PERIOD}&limit=2` })
      expect(first.json()).toMatchObject({
        by,
        sort: "tokens_used",
        order: "desc",
        total_items: expected.length,
        next_offset: 2,
        period: { from: "2026-03-02", to: "2026-03-08", days: 7 },
      })
    },
  )

  it.each([
    ["last_activity_at", "asc", (a: Item, b: Item) => a.last_activity_at.localeCompare(b.last_activity_at)],
    ["denied_count", "desc", (a: Item, b: Item) => b.denied_count - a.denied_count || byKey(a, b)],
    ["unique_users", "asc", (a: Item, b: Item) => a.unique_users - b.unique_users || byKey(a, b)],
    // Sorted by key, the turns without one come last (the sort field's nulls always do).
    ["key", "asc", (a: Item, b: Item) => (a.key === null ? 1 : b.key === null ? -1 : byKey(a, b))],
  ] as const)("sorts sessions by %s %s", async (sort, order, compare) => {
    const expected = expectedItems(turns.filter(period), (g) => g.session).sort(compare)
    expect(await allPages(`by=session&${PERIOD}&sort=${sort}&order=${order}`, 25)).toEqual(expected)
  })

  it("narrows by chatbot, end user and channels", async () => {
    const keep = (g: Generated) =>
      period(g) && g.chatbot === "support" && g.user === "user-03" && ["website", "api"].includes(g.channel)
    const expected = expectedItems(turns.filter(keep), (g) => g.session).sort(
      (a, b) => b.tokens_used - a.tokens_used || byKey(a, b),
    )
    const query = `by=session&${PERIOD}&chatbot_id=support&user_identifier=user-03&channels=website,api`
    expect(await allPages(query, 50)).toEqual(expected)
  })

  it("a page past the end is empty and still counts the items", async () => {
    const res = await t.request({ method: "GET", url: `${base()}/breakdown?by=chatbot&${PERIOD}&offset=40` })
    expect(res.json()).toMatchObject({ items: [], total_items: 4, next_offset: null })
  })

  it("exports every item as CSV, the header naming the item's fields", async () => {
    const json = await t.request({ method: "GET", url: `${base()}/breakdown?by=user&${PERIOD}&limit=500` })
    const res = await t.request({
      method: "GET",
      url: `${base()}/breakdown?by=user&${PERIOD}&limit=2`,
      headers: { accept: "text/csv" },
      key: owner.key,
    })
    expect(res.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id/breakdown", res)
    const [header, ...rows] = parseCsv(res.body)
    expect(header).toEqual(Object.keys(json.json().items[0]))
    expect(rows).toEqual(
      json.json().items.map((item: Item) => Object.values(item).map((v) => (v === null ? "" : String(v)))),
    )
  })
})

/** The figures the analytics endpoints answer, recomputed from the generated turns. */
function expectedTotals(rows: Generated[]) {
  const allowed = rows.filter((g) => g.denied === null)
  return {
    tokens_used: allowed.reduce((sum, g) => sum + g.billed, 0),
    raw_tokens: allowed.reduce((sum, g) => sum + g.raw, 0),
    message_count: allowed.length,
    denied_count: rows.length - allowed.length,
    unique_users: new Set(allowed.map((g) => g.user).filter((u) => u)).size,
  }
}

describe("analytics filtered by chatbot and end user", () => {
  it.each([
    [
      "chatbot_id=sales",
      (g: Generated) => g.chatbot === "sales",
      "UTC",
      "2026-03-02T00:00:00Z",
      "2026-03-09T00:00:00Z",
    ],
    [
      "chatbot_id=faq",
      (g: Generated) => g.chatbot === "faq",
      "Asia/Kolkata",
      "2026-03-01T18:30:00Z",
      "2026-03-08T18:30:00Z",
    ],
    [
      "user_identifier=user-07",
      (g: Generated) => g.user === "user-07",
      "UTC",
      "2026-03-02T00:00:00Z",
      "2026-03-09T00:00:00Z",
    ],
    [
      "chatbot_id=support&user_identifier=user-02",
      (g: Generated) => g.chatbot === "support" && g.user === "user-02",
      "Asia/Kolkata",
      "2026-03-01T18:30:00Z",
      "2026-03-08T18:30:00Z",
    ],
  ] as const)(
    "%s in %s equals a recomputation, per channel, in total and for the period before",
    async (filter, keep, tz, start, end) => {
      const res = await t.request({
        method: "GET",
        url: `${base()}?${PERIOD}&tz=${tz}&${filter}`,
        key: owner.key,
      })
      expect(res.statusCode, res.body).toBe(200)
      expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id", res)
      const current = turns.filter((g) => keep(g) && within(start, end)(g))
      const weekMs = 7 * 86_400_000
      const previousStart = new Date(Date.parse(start) - weekMs).toISOString()
      const previous = turns.filter((g) => keep(g) && within(previousStart, start)(g))
      const body = res.json()
      expect(body.totals).toMatchObject(expectedTotals(current))
      expect(body.totals.previous).toEqual({
        tokens_used: expectedTotals(previous).tokens_used,
        message_count: expectedTotals(previous).message_count,
        unique_users: expectedTotals(previous).unique_users,
      })
      for (const channel of body.channels) {
        expect(channel).toMatchObject(expectedTotals(current.filter((g) => g.channel === channel.channel)))
      }
      const comparison = await t.request({
        method: "GET",
        url: `${base()}/channels/comparison?${PERIOD}&tz=${tz}&${filter}`,
      })
      expect(comparison.json().totals).toMatchObject(expectedTotals(current))
      const trends = await t.request({
        method: "GET",
        url: `${base()}/channels/website/trends?${PERIOD}&tz=${tz}&${filter}`,
      })
      expect(trends.json().summary).toMatchObject(
        expectedTotals(current.filter((g) => g.channel === "website")),
      )
    },
  )

  it("a chatbot or user nobody used answers zeros, not an error", async () => {
    const res = await t.request({ method: "GET", url: `${base()}?${PERIOD}&chatbot_id=nobody` })
    expect(res.statusCode).toBe(200)
    expect(res.json().totals).toMatchObject({
      tokens_used: 0,
      message_count: 0,
      denied_count: 0,
      unique_users: 0,
    })
  })

  it.each(["chatbot_id=", "user_identifier=", `chatbot_id=${"x".repeat(256)}`])(
    "?%s answers 400 naming it",
    async (query) => {
      const res = await t.request({ method: "GET", url: `${base()}?${query}` })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.field).toBe(query.split("=")[0])
    },
  )
})

describe("analytics as CSV", () => {
  it("the comprehensive answer: one row per channel and a total row, nested fields dotted, arrays left out", async () => {
    const json = (await t.request({ method: "GET", url: `${base()}?${PERIOD}` })).json()
    const res = await t.request({ method: "GET", url: `${base()}?${PERIOD}&format=csv`, key: owner.key })
    expect(res.statusCode).toBe(200)
    expect(res.headers["content-disposition"]).toBe(
      'attachment; filename="analytics-2026-03-02-2026-03-08.csv"',
    )
    expectDocumented(t.app, "GET", "/api/onboarding/analytics/:subscription_id", res)
    const [header = [], ...rows] = parseCsv(res.body)
    expect(header).toContain("growth.tokens_used")
    expect(header).toContain("denied_by_reason.rate_limited")
    expect(header).not.toContain("hourly_distribution")
    expect(rows.map((r) => r[0])).toEqual([
      ...json.channels.map((c: { channel: string }) => c.channel),
      "total",
    ])
    const column = (name: string) => header.indexOf(name)
    expect(rows.map((r) => Number(r[column("tokens_used")]))).toEqual([
      ...json.channels.map((c: { tokens_used: number }) => c.tokens_used),
      json.totals.tokens_used,
    ])
    expect(rows.map((r) => r[column("growth.tokens_used")])).toEqual([
      ...json.channels.map((c: { growth: { tokens_used: number | null } }) =>
        String(c.growth.tokens_used ?? ""),
      ),
      String(json.totals.growth.tokens_used ?? ""),
    ])
  })

  it("the comparison and a channel's trends", async () => {
    const comparison = await t.request({
      method: "GET",
      url: `${base()}/channels/comparison?${PERIOD}&format=csv`,
    })
    const [header, ...rows] = parseCsv(comparison.body)
    expect(header?.slice(0, 3)).toEqual(["rank", "channel", "tokens_used"])
    expect(rows).toHaveLength(6)
    const trends = await t.request({
      method: "GET",
      url: `${base()}/channels/api/trends?${PERIOD}`,
      headers: { accept: "text/csv,application/json;q=0.9" },
    })
    const [trendHeader, ...points] = parseCsv(trends.body)
    expect(trendHeader).toEqual([
      "start",
      "date",
      "hour",
      "tokens_used",
      "raw_tokens",
      "message_count",
      "denied_count",
    ])
    expect(points.map((p) => p[1])).toEqual([
      "2026-03-02",
      "2026-03-03",
      "2026-03-04",
      "2026-03-05",
      "2026-03-06",
      "2026-03-07",
      "2026-03-08",
    ])
  })
})

describe("the breakdown's errors", () => {
  const route = "/api/onboarding/analytics/:subscription_id/breakdown"
  it.each([
    ["", "by"],
    ["by=bot", "by"],
    ["by=user&sort=colour", "sort"],
    ["by=user&order=up", "order"],
    ["by=user&limit=0", "limit"],
    ["by=user&limit=501", "limit"],
    ["by=user&offset=-1", "offset"],
    ["by=user&from=2026-02-30", "from"],
    ["by=user&tz=Mars/Olympus_Mons", "tz"],
    ["by=user&channels=fax", "channels"],
    ["by=user&user_identifier=", "user_identifier"],
    ["by=user&colour=red", "colour"],
  ])("?%s answers 400 naming %s", async (query, field) => {
    const res = await t.request({ method: "GET", url: `${base()}/breakdown?${query}`, key: owner.key })
    expect(res.statusCode, res.body).toBe(400)
    expectDocumented(t.app, "GET", route, res)
    expect(res.json().error).toMatchObject({ code: "validation_error", field })
  })

  it("a subscription that does not exist answers 404", async () => {
    const res = await t.request({
      method: "GET",
      url: "/api/onboarding/analytics/00000000-0000-4000-8000-000000000000/breakdown?by=user",
    })
    expect(res.statusCode).toBe(404)
    expectDocumented(t.app, "GET", route, res)
  })
})

describeSecurityMatrix(
  [
    {
      name: "the breakdown",
      method: "GET",
      route: "/api/onboarding/analytics/:subscription_id/breakdown",
      url: () => `${base()}/breakdown?by=chatbot`,
      expect: { other: 404 },
    },
    {
      name: "the breakdown as CSV",
      method: "GET",
      route: "/api/onboarding/analytics/:subscription_id/breakdown",
      url: () => `${base()}/breakdown?by=user&format=csv`,
      expect: { other: 404 },
    },
    {
      name: "analytics filtered by chatbot",
      method: "GET",
      route: "/api/onboarding/analytics/:subscription_id",
      url: () => `${base()}?chatbot_id=sales&format=csv`,
      expect: { other: 404 },
    },
  ],
  { app: () => t, revokedKey: () => revokedKey, otherKey: () => other.key, ownKey: () => owner.key },
)
