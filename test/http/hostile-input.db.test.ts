/**
 * Hostile input at the edge (issue 11, defects 1 to 6): text that PostgreSQL cannot store or that Unicode
 * does not allow, dates at the calendar's edges and numbers past 64 bits answer 400 naming the field, in the
 * one envelope, on PGlite and PostgreSQL alike, and store nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"

const clock = new ManualClock(Date.parse("2026-11-25T12:00:00Z"))
let t: TestApp
let sub: Awaited<ReturnType<TestApp["subscription"]>>

beforeAll(async () => {
  t = await startTestApp({ clock })
  sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
})
afterAll(async () => t?.close())

/** Row counts of every table a 4xx must leave alone. */
async function stored() {
  const db = t.container.database.db
  const count = async (table: "token_usage_logs" | "subscriptions" | "api_keys" | "webhook_endpoints") =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    )
  return {
    ledger: await count("token_usage_logs"),
    subscriptions: await count("subscriptions"),
    keys: await count("api_keys"),
    webhooks: await count("webhook_endpoints"),
  }
}

function expectRejected(
  res: { statusCode: number; json(): unknown; headers: Record<string, unknown> },
  field: string,
) {
  expect(res.statusCode).toBe(400)
  const body = res.json() as { error: { code: string; field?: string; request_id: string } }
  expect(body.error.code).toBe("validation_error")
  expect(body.error.field).toBe(field)
  expect(body.error.request_id).toBe(res.headers["x-request-id"])
}

const NUL = "a\u0000b"
const LONE = "a\ud800b"
const BAD_TEXT: Array<[string, string]> = [
  ["U+0000", NUL],
  ["a lone high surrogate", LONE],
  ["a lone low surrogate", "\udc00"],
]

const consume = (overrides: Record<string, unknown>) => ({
  entity_id: sub.entityId,
  entity_type: "organization",
  channel: "api",
  estimated_tokens: 10,
  ...overrides,
})

describe("one rule for text", () => {
  const consumeFields = [
    "entity_id",
    "entity_type",
    "chatbot_id",
    "session_id",
    "user_identifier",
    "operation_type",
    "idempotency_key",
  ]
  describe.each(BAD_TEXT)("%s", (_name, bad) => {
    it.each(consumeFields)("in consume's %s is a 400 naming it, and nothing is charged", async (field) => {
      const before = await stored()
      const res = await t.request({
        method: "POST",
        url: "/api/tokens/consume",
        payload: consume({ [field]: bad }),
      })
      expectRejected(res, field)
      expect(await stored()).toEqual(before)
    })

    it.each(["entity_id", "entity_type"])(
      "in a new subscription's %s is a 400 naming it, and no subscription is created",
      async (field) => {
        const before = await stored()
        const res = await t.request({
          method: "POST",
          url: "/api/subscriptions",
          payload: {
            entity_id: `e-${Math.random()}`,
            entity_type: "organization",
            plan: "basic",
            [field]: bad,
          },
        })
        expectRejected(res, field)
        expect(await stored()).toEqual(before)
      },
    )

    it("in a key's label is a 400 naming it, and no key is issued", async () => {
      const before = await stored()
      const res = await t.request({
        method: "POST",
        url: `/api/subscriptions/${sub.id}/keys`,
        payload: { label: bad },
      })
      expectRejected(res, "label")
      expect(await stored()).toEqual(before)
    })

    it.each([
      ["url", { url: `https://example.com/${bad}`, event_types: ["quota.exhausted"] }],
      [
        "description",
        { url: "https://example.com/hook", description: bad, event_types: ["quota.exhausted"] },
      ],
    ])("in a webhook's %s is a 400 naming it, and no endpoint is created", async (field, payload) => {
      const before = await stored()
      const res = await t.request({ method: "POST", url: `/api/subscriptions/${sub.id}/webhooks`, payload })
      expectRejected(res, field)
      expect(await stored()).toEqual(before)
    })
  })

  it("the library refuses U+0000 and lone surrogates naming the field, and charges nothing", async () => {
    const before = await stored()
    for (const [, bad] of BAD_TEXT) {
      for (const [field, name] of [
        ["entityId", "entityId"],
        ["sessionId", "sessionId"],
        ["idempotencyKey", "idempotencyKey"],
      ] as const) {
        await expect(
          t.container.meter.validateAndConsumeTokens({
            entityId: sub.entityId,
            entityType: "organization",
            channel: "api",
            estimatedTokens: 1,
            [field]: bad,
          }),
        ).rejects.toMatchObject({ code: "validation_error", details: { field: name } })
      }
    }
    expect(await stored()).toEqual(before)
  })

  it("keeps well-formed astral characters (a surrogate pair) exactly as sent", async () => {
    const entityId = `emoji-\u{1F600}-${Math.random()}`
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { entity_id: entityId, entity_type: "organization", plan: "basic" },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json().entity_id).toBe(entityId)
  })

  it("two ids that differ only in a lone surrogate can no longer collide as U+FFFD", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { entity_id: "collide-\ud800", entity_type: "organization", plan: "basic" },
    })
    expectRejected(res, "entity_id")
    const stored = await t.container.database.db
      .selectFrom("subscriptions")
      .select("id")
      .where("entity_id", "=", "collide-\ufffd")
      .execute()
    expect(stored).toEqual([])
  })
})

describe("one rule for time", () => {
  const analytics = () => `/api/onboarding/analytics/${sub.id}`
  it.each([
    ["to=9999-12-31", "to"],
    ["from=0001-01-01&to=0001-01-05", "from"],
    ["from=1969-12-25&to=1969-12-31", "from"],
  ])("analytics ?%s is a 400 naming %s", async (query, field) => {
    const res = await t.request({ method: "GET", url: `${analytics()}?${query}`, key: sub.key })
    expectRejected(res, field)
  })

  it.each(["from=1970-01-01&to=1970-01-31", "from=9999-12-01&to=9999-12-30"])(
    "analytics ?%s, at the documented range's edges, answers 200",
    async (query) => {
      const res = await t.request({ method: "GET", url: `${analytics()}?${query}`, key: sub.key })
      expect(res.statusCode).toBe(200)
    },
  )

  it.each([
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "1969-12-31T23:59:59Z",
    "+010000-01-01T00:00:00Z",
  ])("a subscription's period_start %s is a 400 naming it, and nothing is created", async (periodStart) => {
    const before = await stored()
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: {
        entity_id: `p-${Math.random()}`,
        entity_type: "organization",
        plan: "basic",
        period_start: periodStart,
      },
    })
    expectRejected(res, "period_start")
    expect(await stored()).toEqual(before)
  })

  it("the library refuses a periodStart outside the range naming it, on either engine", async () => {
    for (const periodStart of ["0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]) {
      await expect(
        t.container.meter.createSubscription({
          entityId: `lib-${Math.random()}`,
          entityType: "organization",
          plan: "basic",
          periodStart,
        }),
      ).rejects.toMatchObject({ code: "validation_error", details: { field: "periodStart" } })
    }
  })

  it("a period_start at the documented range's first instant is stored as sent", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: {
        entity_id: `p-${Math.random()}`,
        entity_type: "organization",
        plan: "basic",
        period_start: "1970-01-01T00:00:00Z",
      },
    })
    expect(res.statusCode).toBe(201)
    expect(res.json().period_anchor).toBe("1970-01-01T00:00:00.000Z")
  })
})

describe("numbers past 64 bits", () => {
  it.each(["9223372036854775808", "1e308", "9007199254740993"])(
    "?before=%s on the alerts list is a 400 naming before",
    async (before) => {
      const res = await t.request({
        method: "GET",
        url: `/api/subscriptions/${sub.id}/alerts?before=${before}`,
        key: sub.key,
      })
      expectRejected(res, "before")
    },
  )
})
