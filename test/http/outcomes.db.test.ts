/**
 * What each channel earns and costs (issue 14), over HTTP on both databases: prices and exact turn costs,
 * outcomes and feedback (idempotent, validated, tenant-isolated), and the outcomes answer against an
 * independent recomputation in TypeScript from the events this test generated, under all three attribution
 * models, in a :30 zone and across a DST change.
 */
import Sentiment from "sentiment"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

let t: TestApp
const clock = new ManualClock(Date.parse("2026-10-20T00:00:00Z"))
beforeAll(async () => {
  t = await startTestApp({ clock, env: { OMNIMETER_CURRENCY: "EUR" } })
})
afterAll(async () => t.close())

const CONSUME = "/api/tokens/consume"
const SETTLE = "/api/tokens/settle"

/** Money text (major unit) as an integer of 10^-12 units, parsed by hand. */
function pico(text: string): bigint {
  const [whole = "0", fraction = ""] = text.split(".")
  return BigInt(whole) * 10n ** 12n + BigInt((fraction + "0".repeat(12)).slice(0, 12))
}

async function consume(sub: { entityId: string; key: string }, extra: Record<string, unknown> = {}) {
  const res = await t.request({
    method: "POST",
    url: CONSUME,
    key: sub.key,
    payload: {
      entity_id: sub.entityId,
      entity_type: "organization",
      estimated_tokens: 100,
      channel: "website",
      session_id: "s",
      user_identifier: "u",
      ...extra,
    },
  })
  expect(res.statusCode, res.body).toBe(200)
  return res.json().usage_id as string
}

async function putPrice(model: string, body: Record<string, unknown>) {
  const res = await t.request({ method: "PUT", url: `/api/prices/${model}`, payload: body })
  expect(res.statusCode, res.body).toBe(200)
  return res
}

describe("cost in money", () => {
  it("prices a settled turn exactly from its token split at the price in force, and never rewrites it", async () => {
    const sub = await t.subscription({ token_limit: 10_000_000 })
    const put = await putPrice("omni-test-a", {
      input_per_million: "0.15",
      output_per_million: 0.6,
      effective_from: "2026-10-01T00:00:00Z",
    })
    expectDocumented(t.app, "PUT", "/api/prices/{model}", put)
    expect(put.json()).toMatchObject({
      currency: "EUR",
      input_per_million: "0.15",
      output_per_million: "0.6",
    })

    const usageId = await consume(sub, { model: "omni-test-a" })
    const settled = await t.request({
      method: "POST",
      url: SETTLE,
      key: sub.key,
      payload: { usage_id: usageId, input_tokens: 7, output_tokens: 1234 },
    })
    expect(settled.statusCode, settled.body).toBe(200)
    expectDocumented(t.app, "POST", SETTLE, settled)
    // 7 x 0.15 + 1234 x 0.6 micro-units = 741.45 micro-units = 0.00074145 EUR, and actual_tokens is the sum.
    expect(settled.json()).toMatchObject({ actual_tokens: 1241, model: "omni-test-a", currency: "EUR" })
    expect(pico(settled.json().cost)).toBe(7n * 150_000n + 1234n * 600_000n)

    // A new price from now on: the settled turn keeps its cost; the next turn gets the new price.
    clock.advance(60_000)
    await putPrice("omni-test-a", { input_per_million: "1", output_per_million: "2" })
    const later = await consume(sub, { model: "omni-test-a" })
    clock.advance(60_000)
    const second = await t.request({
      method: "POST",
      url: SETTLE,
      key: sub.key,
      payload: { usage_id: later, input_tokens: 10, output_tokens: 20, actual_tokens: 30 },
    })
    expect(pico(second.json().cost)).toBe(10n * 1_000_000n + 20n * 2_000_000n)
    const stored = await t.container.database.db
      .selectFrom("turn_details")
      .select("cost_micros")
      .where("usage_id", "=", usageId)
      .executeTakeFirstOrThrow()
    expect(Number(stored.cost_micros)).toBe(741.45)

    const list = await t.request({ method: "GET", url: "/api/prices", key: sub.key })
    expect(list.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/prices", list)
    const rows = list.json().prices.filter((p: { model: string }) => p.model === "omni-test-a")
    expect(rows.map((p: { input_per_million: string }) => p.input_per_million)).toEqual(["1", "0.15"])
  })

  it("leaves a turn unpriced (cost null) without a model, a split or a price, never 0", async () => {
    const sub = await t.subscription({ token_limit: 10_000_000 })
    const cases: Array<[Record<string, unknown>, Record<string, unknown>]> = [
      [{}, { actual_tokens: 50 }],
      [{ model: "omni-test-unknown" }, { input_tokens: 1, output_tokens: 2 }],
      [{ model: "omni-test-a" }, { actual_tokens: 40 }],
    ]
    for (const [atConsume, atSettle] of cases) {
      const usageId = await consume(sub, atConsume)
      const res = await t.request({
        method: "POST",
        url: SETTLE,
        key: sub.key,
        payload: { usage_id: usageId, ...atSettle },
      })
      expect(res.statusCode, res.body).toBe(200)
      expect(res.json().cost).toBeNull()
    }
  })

  it("refuses a split that disagrees with actual_tokens, and bad prices, naming the field", async () => {
    const sub = await t.subscription({ token_limit: 10_000_000 })
    const usageId = await consume(sub)
    const bad = async (payload: Record<string, unknown>, field: string) => {
      const res = await t.request({
        method: "POST",
        url: SETTLE,
        key: sub.key,
        payload: { usage_id: usageId, ...payload },
      })
      expect(res.statusCode, res.body).toBe(400)
      expect(res.json().error.field).toBe(field)
    }
    await bad({ input_tokens: 1, output_tokens: 2, actual_tokens: 4 }, "actual_tokens")
    await bad({ input_tokens: 1 }, "output_tokens")
    await bad({}, "actual_tokens")
    const price = async (payload: Record<string, unknown>, field: string) => {
      const res = await t.request({ method: "PUT", url: "/api/prices/omni-test-b", payload })
      expect(res.statusCode, res.body).toBe(400)
      expect(res.json().error.field).toBe(field)
    }
    await price({ input_per_million: "1.1234567", output_per_million: "1" }, "input_per_million")
    await price({ input_per_million: "-1", output_per_million: "1" }, "input_per_million")
    await price({ input_per_million: "1", output_per_million: "1", currency: "EUX" }, "currency")
    await price({ input_per_million: "1", output_per_million: "1", currency: "USD" }, "currency")
  })

  it("lets only the admin set prices, and any key read them", async () => {
    const sub = await t.subscription()
    const body = { input_per_million: "1", output_per_million: "1" }
    expect(
      (await t.request({ method: "PUT", url: "/api/prices/m", key: sub.key, payload: body })).statusCode,
    ).toBe(403)
    expect(
      (await t.request({ method: "PUT", url: "/api/prices/m", key: null, payload: body })).statusCode,
    ).toBe(401)
    expect((await t.request({ method: "GET", url: "/api/prices", key: null })).statusCode).toBe(401)
  })
})

describe("outcomes and feedback", () => {
  it("records an outcome once per idempotency key", async () => {
    const sub = await t.subscription()
    const body = { name: "purchase", value: "19.99", user_identifier: "u1", idempotency_key: "order-1" }
    const first = await t.request({ method: "POST", url: "/api/outcomes", key: sub.key, payload: body })
    expect(first.statusCode, first.body).toBe(201)
    expectDocumented(t.app, "POST", "/api/outcomes", first)
    const again = await t.request({
      method: "POST",
      url: "/api/outcomes",
      key: sub.key,
      payload: { ...body, value: 5 },
    })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({
      id: first.json().id,
      value: "19.99",
      currency: "EUR",
      recorded: false,
    })
  })

  it("refuses bad outcomes, ratings and sentiment with a 400 naming the field", async () => {
    const sub = await t.subscription({ token_limit: 1_000_000 })
    const outcome = { name: "lead", user_identifier: "u1", idempotency_key: "k" }
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ["/api/outcomes", { ...outcome, value: 10, currency: "ABC" }, "currency"],
      ["/api/outcomes", { ...outcome, value: 10, currency: "USD" }, "currency"],
      ["/api/outcomes", { ...outcome, value: -1 }, "value"],
      ["/api/outcomes", { ...outcome, value: "-1" }, "value"],
      ["/api/outcomes", { ...outcome, occurred_at: "2027-01-01T00:00:00Z" }, "occurred_at"],
      ["/api/feedback", { session_id: "s", csat: 6, idempotency_key: "f" }, "csat"],
      ["/api/feedback", { session_id: "s", csat: 0, idempotency_key: "f" }, "csat"],
      ["/api/feedback", { session_id: "s", idempotency_key: "f" }, "csat"],
    ]
    for (const [url, payload, field] of cases) {
      const res = await t.request({ method: "POST", url, key: sub.key, payload })
      expect(res.statusCode, `${url} ${JSON.stringify(payload)}: ${res.body}`).toBe(400)
      expect(res.json().error.field).toBe(field)
    }
    for (const sentiment of [1.01, -1.5]) {
      const res = await t.request({
        method: "POST",
        url: CONSUME,
        key: sub.key,
        payload: {
          entity_id: sub.entityId,
          entity_type: "organization",
          estimated_tokens: 1,
          channel: "website",
          sentiment,
        },
      })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.field).toBe("sentiment")
    }
    const stored = await t.container.database.db
      .selectFrom("outcomes")
      .select("id")
      .where("subscription_id", "=", sub.id)
      .execute()
    expect(stored).toEqual([])
  })

  it("rates a turn or a session once per key, and answers 404 for another tenant's turn", async () => {
    const a = await t.subscription({ token_limit: 1_000_000 })
    const b = await t.subscription({ token_limit: 1_000_000 })
    const turnOfB = await consume(b, { channel: "whatsapp", session_id: "sb" })
    const turnOfA = await consume(a, { channel: "whatsapp", session_id: "sa" })
    const rate = (key: string, payload: Record<string, unknown>) =>
      t.request({ method: "POST", url: "/api/feedback", key, payload })
    const foreign = await rate(a.key, { usage_id: turnOfB, csat: 5, idempotency_key: "x" })
    expect(foreign.statusCode).toBe(404)
    expect(foreign.json().error.code).toBe("usage_not_found")
    const first = await rate(a.key, { usage_id: turnOfA, csat: 4, idempotency_key: "r1" })
    expect(first.statusCode, first.body).toBe(201)
    expectDocumented(t.app, "POST", "/api/feedback", first)
    expect(first.json()).toMatchObject({ channel: "whatsapp", session_id: "sa", csat: 4 })
    expect((await rate(a.key, { usage_id: turnOfA, csat: 1, idempotency_key: "r1" })).json()).toMatchObject({
      csat: 4,
      recorded: false,
    })
    const session = await rate(a.key, { session_id: "sa", thumbs: "up", idempotency_key: "r2" })
    expect(session.json()).toMatchObject({ channel: "whatsapp", thumbs: "up", usage_id: null })
    // The admin names whose session; a session of B is not A's.
    expect((await rate(a.key, { session_id: "sb", thumbs: "up", idempotency_key: "r3" })).statusCode).toBe(
      404,
    )
    expect((await rate("om_sk_wrong", { session_id: "sa", csat: 3, idempotency_key: "r4" })).statusCode).toBe(
      401,
    )
  })

  it("keeps every new endpoint within the caller's tenant", async () => {
    const a = await t.subscription()
    const b = await t.subscription()
    const asA = (payload: Record<string, unknown>) =>
      t.request({ method: "POST", url: "/api/outcomes", key: a.key, payload })
    const intoB = await asA({
      entity_id: b.entityId,
      entity_type: "organization",
      name: "lead",
      user_identifier: "u",
      idempotency_key: "cross",
    })
    expect(intoB.statusCode).toBe(404)
    const read = await t.request({
      method: "GET",
      url: `/api/onboarding/analytics/${b.id}/outcomes`,
      key: a.key,
    })
    expect(read.statusCode).toBe(404)
    expect(
      (await t.request({ method: "GET", url: `/api/onboarding/analytics/${b.id}/outcomes`, key: null }))
        .statusCode,
    ).toBe(401)
    expect(
      (await t.request({ method: "POST", url: "/api/outcomes", key: null, payload: {} })).statusCode,
    ).toBe(401)
    const byAdmin = await t.request({
      method: "POST",
      url: "/api/outcomes",
      payload: {
        entity_id: b.entityId,
        entity_type: "organization",
        name: "lead",
        user_identifier: "u",
        idempotency_key: "adm",
      },
    })
    expect(byAdmin.statusCode).toBe(201)
    expect(byAdmin.json().subscription_id).toBe(b.id)
    // Row level security beneath: A's transaction sees none of B's outcomes.
    const seen = await t.container.database.withTenant(a.id, (db) =>
      db.selectFrom("outcomes").select("id").where("subscription_id", "=", b.id).execute(),
    )
    expect(seen).toEqual([])
  })
})

describe("backfills through the NDJSON import", () => {
  it("imports priced turns and outcomes, each outcome once however often the file is sent", async () => {
    const sub = await t.subscription({ token_limit: 10_000_000 })
    await putPrice("omni-import", {
      input_per_million: "3",
      output_per_million: "15",
      effective_from: "2026-01-01T00:00:00Z",
    })
    const lines = [
      {
        subscription_id: sub.id,
        channel: "api",
        created_at: "2026-10-10T10:00:00Z",
        raw_tokens: 300,
        model: "omni-import",
        input_tokens: 100,
        output_tokens: 200,
        user_identifier: "u9",
      },
      {
        type: "outcome",
        subscription_id: sub.id,
        name: "purchase",
        value: 12.5,
        user_identifier: "u9",
        occurred_at: "2026-10-10T11:00:00Z",
        idempotency_key: "imp-1",
      },
      {
        subscription_id: sub.id,
        channel: "api",
        created_at: "2026-10-10T10:00:00Z",
        raw_tokens: 5,
        input_tokens: 1,
        output_tokens: 2,
      },
      {
        type: "outcome",
        subscription_id: sub.id,
        name: "lead",
        value: -1,
        user_identifier: "u9",
        occurred_at: "2026-10-10T11:00:00Z",
        idempotency_key: "imp-2",
      },
    ]
    const send = () =>
      t.request({
        method: "POST",
        url: "/api/usage/import",
        headers: { "content-type": "application/x-ndjson" },
        payload: lines.map((line) => JSON.stringify(line)).join("\n"),
      })
    const first = await send()
    expect(first.statusCode, first.body).toBe(200)
    expect(first.json()).toMatchObject({ imported: 2, duplicates: 0, rejected_count: 2 })
    expect(first.json().rejected.map((r: { line: number }) => r.line)).toEqual([3, 4])
    const again = (await send()).json()
    expect(again.duplicates).toBe(1)
    const outcomes = await t.container.database.db
      .selectFrom("outcomes")
      .select(["name", "value"])
      .where("subscription_id", "=", sub.id)
      .execute()
    expect(outcomes).toEqual([{ name: "purchase", value: "12.500000" }])
    const costs = await t.container.database.db
      .selectFrom("turn_details")
      .select("cost_micros")
      .where("subscription_id", "=", sub.id)
      .execute()
    // 100 x 3 + 200 x 15 micro-units, once per import (turns without keys are imported again).
    expect(costs.map((c) => Number(c.cost_micros))).toEqual([3300, 3300])
  })
})

// ---------------------------------------------------------------------------------------------------------
// The outcomes answer against a recomputation from the generated events.

interface GeneratedTurn {
  id: string
  at: number
  channel: string
  session: string
  user: string
  model: string | null
  input: number
  output: number
  latency: number
  error: boolean
  billed: number
  sentiment: number | null
}
interface GeneratedOutcome {
  name: string
  value: bigint
  user: string
  session: string | null
  channel: string | null
  at: number
}
interface GeneratedRating {
  channel: string
  csat: number | null
  thumbs: "up" | "down" | null
  at: number
}

/** A small deterministic generator (mulberry32). */
function random(seed: number) {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const CHANNELS = ["website", "whatsapp", "telegram", "api"]
const PRICES: Record<string, [bigint, bigint]> = {
  "omni-x": [150_000n, 600_000n],
  "omni-y": [2_500_000n, 10_000_000n],
}
const MESSAGES = [
  "I love this, great help",
  "this is terrible and awful",
  "where is my order",
  "thanks",
  "bad bad bad",
]

describe("the outcomes answer", () => {
  const turns: GeneratedTurn[] = []
  const outcomes: GeneratedOutcome[] = []
  const ratings: GeneratedRating[] = []
  let sub: { id: string; entityId: string; key: string }
  const analyser = new Sentiment()

  beforeAll(async () => {
    // Prices in micro-units per million tokens, effective before any turn.
    for (const [model, [input, output]] of Object.entries(PRICES))
      await putPrice(model, {
        input_per_million: (Number(input) / 1e6).toString(),
        output_per_million: (Number(output) / 1e6).toString(),
        effective_from: "2026-10-01T00:00:00Z",
      })
    clock.set(Date.parse("2026-10-24T00:00:00Z"))
    sub = await t.subscription({ token_limit: 1_000_000_000 })
    const rand = random(14)
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T
    // Turns from 2026-10-24 to 2026-11-04: New York leaves DST on 2026-11-01.
    let at = Date.parse("2026-10-24T00:00:00Z")
    const end = Date.parse("2026-11-04T00:00:00Z")
    while (at < end) {
      at += Math.floor(rand() * 50 * 60_000) + 60_000
      clock.set(at)
      const channel = pick(CHANNELS)
      const user = `user-${Math.floor(rand() * 12)}`
      const session = `${user}-session-${Math.floor(rand() * 3)}`
      const model = rand() < 0.15 ? null : rand() < 0.1 ? "omni-unpriced" : pick(Object.keys(PRICES))
      const ownScore = rand() < 0.3 ? Math.round((rand() * 2 - 1) * 10_000) / 10_000 : undefined
      const message = ownScore === undefined && rand() < 0.7 ? pick(MESSAGES) : undefined
      const usageId = await consume(sub, {
        channel,
        user_identifier: user,
        session_id: session,
        ...(model ? { model } : {}),
        ...(ownScore !== undefined ? { sentiment: ownScore } : {}),
        ...(message !== undefined ? { message } : {}),
      })
      const input = Math.floor(rand() * 2000)
      const output = Math.floor(rand() * 800)
      const latency = Math.floor(rand() * 5000)
      const error = rand() < 0.08
      const afinn = message === undefined ? null : analyser.analyze(message).score
      const turn: GeneratedTurn = {
        id: usageId,
        at,
        channel,
        session,
        user,
        model,
        input,
        output,
        latency,
        error,
        billed: 0,
        sentiment:
          ownScore ??
          (afinn === null ? null : Math.round((afinn / Math.sqrt(afinn * afinn + 15)) * 10_000) / 10_000),
      }
      const settledRes = await t.request({
        method: "POST",
        url: SETTLE,
        key: sub.key,
        payload: {
          usage_id: usageId,
          input_tokens: input,
          output_tokens: output,
          latency_ms: latency,
          outcome: error ? "error" : "ok",
        },
      })
      expect(settledRes.statusCode, settledRes.body).toBe(200)
      turn.billed = settledRes.json().billed_tokens
      turns.push(turn)
      if (rand() < 0.2) {
        const csat = rand() < 0.6 ? Math.floor(rand() * 5) + 1 : null
        const thumbs = csat === null ? (rand() < 0.5 ? "up" : "down") : null
        const res = await t.request({
          method: "POST",
          url: "/api/feedback",
          key: sub.key,
          payload: { usage_id: usageId, idempotency_key: `fb-${usageId}`, ...(csat ? { csat } : { thumbs }) },
        })
        expect(res.statusCode, res.body).toBe(201)
        ratings.push({ channel, csat, thumbs, at })
      }
      if (rand() < 0.15) {
        const kind = rand()
        const outcome: GeneratedOutcome = {
          name: pick(["purchase", "lead", "ticket_resolved"]),
          value: BigInt(Math.floor(rand() * 100_000_000)),
          user: kind < 0.85 ? user : `stranger-${Math.floor(rand() * 1000)}`,
          session: kind < 0.5 ? session : null,
          channel: kind > 0.75 && kind < 0.85 ? pick(CHANNELS) : null,
          at: at + Math.floor(rand() * 3 * 86_400_000),
        }
        if (outcome.at < end) outcomes.push(outcome)
      }
    }
    clock.set(end)
    for (const [i, o] of outcomes.entries()) {
      const res = await t.request({
        method: "POST",
        url: "/api/outcomes",
        key: sub.key,
        payload: {
          name: o.name,
          value: `${o.value / 1_000_000n}.${(o.value % 1_000_000n).toString().padStart(6, "0")}`,
          user_identifier: o.user,
          ...(o.session ? { session_id: o.session } : {}),
          ...(o.channel ? { channel: o.channel } : {}),
          occurred_at: new Date(o.at).toISOString(),
          idempotency_key: `o-${i}`,
        },
      })
      expect(res.statusCode, res.body).toBe(201)
    }
  }, 600_000)

  /** The local calendar day of an instant in a zone, by Intl (not by the service's instants). */
  const localDay = (at: number, tz: string) =>
    new Intl.DateTimeFormat("en-CA", {
      timeZone: tz,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    }).format(at)

  function oracle(tz: string, from: string, to: string, model: string, lookbackDays = 7) {
    const inPeriod = (at: number) => {
      const day = localDay(at, tz)
      return day >= from && day <= to
    }
    const lookback = lookbackDays * 86_400_000
    const credits: Array<{ outcome: GeneratedOutcome; shares: Map<string, number> }> = []
    for (const o of outcomes.filter((x) => inPeriod(x.at))) {
      const shares = new Map<string, number>()
      if (o.channel) shares.set(o.channel, 1)
      else {
        const window = turns.filter((x) => x.at >= o.at - lookback && x.at <= o.at)
        const bySession = o.session ? window.filter((x) => x.session === o.session) : []
        const touches = bySession.length > 0 ? bySession : window.filter((x) => x.user === o.user)
        if (touches.length > 0) {
          const ordered = [...touches].sort((x, y) => x.at - y.at)
          if (model === "last_touch") shares.set(ordered.at(-1)?.channel ?? "", 1)
          else if (model === "first_touch") shares.set(ordered[0]?.channel ?? "", 1)
          else
            for (const x of touches) shares.set(x.channel, (shares.get(x.channel) ?? 0) + 1 / touches.length)
        }
      }
      credits.push({ outcome: o, shares })
    }
    const outcomeSessions = new Set(outcomes.filter((o) => inPeriod(o.at) && o.session).map((o) => o.session))
    const figures = (channels: string[]) => {
      const mine = turns.filter((x) => channels.includes(x.channel) && inPeriod(x.at))
      const priced = mine.filter((x) => x.model !== null && PRICES[x.model])
      const cost = priced.reduce((sum, x) => {
        const [input, output] = PRICES[x.model ?? ""] ?? [0n, 0n]
        return sum + BigInt(x.input) * input + BigInt(x.output) * output
      }, 0n) // 10^-12 units: tokens x (micro-units per million tokens)
      let conversions = 0
      let value = 0
      const byName = new Map<string, number>()
      for (const { outcome, shares } of credits)
        for (const [channel, share] of shares)
          if (channels.includes(channel)) {
            conversions += share
            value += Number(outcome.value) * share
            byName.set(outcome.name, (byName.get(outcome.name) ?? 0) + share)
          }
      const latencies = mine.map((x) => x.latency).sort((a, b) => a - b)
      const rank = (p: number) => (latencies.length ? latencies[Math.ceil(p * latencies.length) - 1] : null)
      const scored = mine.filter((x) => x.sentiment !== null).map((x) => x.sentiment ?? 0)
      const csat = ratings.filter((r) => channels.includes(r.channel) && inPeriod(r.at) && r.csat !== null)
      const sessions = new Set(mine.map((x) => x.session))
      const converted = [...sessions].filter((s) => outcomeSessions.has(s)).length
      const tokens = mine.reduce((sum, x) => sum + x.billed, 0)
      return {
        cost,
        priced: priced.length,
        unpriced: mine.length - priced.length,
        conversions,
        byName,
        value,
        tokens,
        p: [rank(0.5), rank(0.9), rank(0.99)],
        errorRate: mine.length ? mine.filter((x) => x.error).length / mine.length : null,
        sentimentAvg: scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : null,
        buckets: [
          scored.filter((s) => s < -0.6).length,
          scored.filter((s) => s >= -0.6 && s < -0.2).length,
          scored.filter((s) => s >= -0.2 && s <= 0.2).length,
          scored.filter((s) => s > 0.2 && s <= 0.6).length,
          scored.filter((s) => s > 0.6).length,
        ],
        csatAvg: csat.length ? csat.reduce((a, r) => a + (r.csat ?? 0), 0) / csat.length : null,
        csatCount: csat.length,
        sessions: sessions.size,
        converted,
      }
    }
    const unattributed = credits.filter((c) => c.shares.size === 0)
    return { figures, unattributed }
  }

  const close = (actual: number | null, expected: number | null, places: number) => {
    if (expected === null) expect(actual).toBeNull()
    else expect(Math.abs((actual ?? Number.NaN) - expected)).toBeLessThanOrEqual(0.5 * 10 ** -places + 1e-9)
  }

  // The default 7-day lookback reads the stored touches (outcome_touches); another one probes the ledger.
  // Without `channels` (all six) the totals count sessions from their spans over all channels (session_edges
  // '*'); with some channels, from their rows one by one.
  for (const [tz, from, to, lookback, all] of [
    ["America/New_York", "2026-10-30", "2026-11-02", 7, false],
    ["America/New_York", "2026-10-30", "2026-11-02", 7, true],
    ["Asia/Kolkata", "2026-10-27", "2026-11-01", 7, false],
    ["Asia/Kolkata", "2026-10-27", "2026-11-01", 2, false],
  ] as const)
    for (const model of ["last_touch", "first_touch", "linear"])
      it(`equals the recomputation in ${tz} under ${model} attribution with a ${lookback}-day lookback${all ? " on every channel" : ""}`, async () => {
        const res = await t.request({
          method: "GET",
          url: `/api/onboarding/analytics/${sub.id}/outcomes?from=${from}&to=${to}&tz=${tz}&attribution=${model}&lookback_days=${lookback}${all ? "" : `&channels=${CHANNELS.join(",")}`}`,
          key: sub.key,
        })
        expect(res.statusCode, res.body).toBe(200)
        expectDocumented(t.app, "GET", "/api/onboarding/analytics/{subscription_id}/outcomes", res)
        const answer = res.json()
        const { figures, unattributed } = oracle(tz, from, to, model, lookback)
        const rows = [
          ...answer.channels.map((c: { channel: string }) => [c, [c.channel]] as const),
          [answer.totals, CHANNELS] as const,
        ]
        for (const [row, channels] of rows) {
          const want = figures(channels)
          expect(pico(row.cost), channels.join()).toBe(want.cost)
          expect(row.priced_turns).toBe(want.priced)
          expect(row.unpriced_turns).toBe(want.unpriced)
          expect(row.tokens_used).toBe(want.tokens)
          close(row.conversion_count, want.conversions, 4)
          for (const { name, count } of row.conversions) close(count, want.byName.get(name) ?? 0, 4)
          expect(row.conversions.length).toBe(want.byName.size)
          // Value: micro-units, exact but for linear shares (rounded to micro-units).
          expect(Math.abs(Number(pico(row.value) / 1_000_000n) - want.value)).toBeLessThanOrEqual(
            model === "linear" ? 1 : 0,
          )
          const cost = Number(want.cost) / 1e12
          const value = Number(pico(row.value)) / 1e12
          close(row.roi, cost === 0 ? null : (value - cost) / cost, 4)
          close(row.tokens_per_conversion, want.conversions === 0 ? null : want.tokens / want.conversions, 2)
          if (want.conversions === 0) expect(row.cost_per_conversion).toBeNull()
          else close(Number(row.cost_per_conversion), cost / want.conversions, 6)
          // Percentiles from the log-spaced histogram: within 1% of percentile_disc's, plus rounding.
          const read = [row.latency_ms.p50, row.latency_ms.p90, row.latency_ms.p99]
          want.p.forEach((exact, i) => {
            if (exact === null || exact === undefined) expect(read[i]).toBeNull()
            else expect(Math.abs(read[i] - exact), `p${i}`).toBeLessThanOrEqual(0.01 * exact + 0.5)
          })
          close(row.error_rate, want.errorRate, 4)
          close(row.sentiment_avg, want.sentimentAvg, 4)
          expect(Object.values(row.sentiment_distribution)).toEqual(want.buckets)
          close(row.csat_avg, want.csatAvg, 2)
          expect(row.csat_count).toBe(want.csatCount)
          expect(row.sessions).toBe(want.sessions)
          expect(row.converted_sessions).toBe(want.converted)
          close(row.conversion_rate, want.sessions === 0 ? null : want.converted / want.sessions, 4)
        }
        expect(answer.unattributed.count).toBe(unattributed.length)
        expect(pico(answer.unattributed.value)).toBe(
          unattributed.reduce((s, c) => s + c.outcome.value, 0n) * 1_000_000n,
        )
        // The data covers what the test claims: outcomes credited each way, and some not at all.
        expect(answer.totals.conversion_count).toBeGreaterThan(0)
      })

  for (const path of ["", "/channels/comparison"])
    it(`scores efficiency by value per 1,000 billed tokens when the period's outcomes earned value (${path || "comprehensive"})`, async () => {
      const [tz, from, to] = ["Asia/Kolkata", "2026-10-27", "2026-11-01"]
      const res = await t.request({
        method: "GET",
        url: `/api/onboarding/analytics/${sub.id}${path}?from=${from}&to=${to}&tz=${tz}&channels=${CHANNELS.join(",")}`,
        key: sub.key,
      })
      expect(res.statusCode, res.body).toBe(200)
      const answer = res.json()
      expect(answer.efficiency_basis).toBe("value")
      // Value per channel under last touch with the 7-day lookback, from the generated events; tokens from
      // the settled turns: value micro-units x 1000 / 10^6 / tokens, and the best channel scores 100.
      const { figures } = oracle(tz, from, to, "last_touch")
      const per = new Map(CHANNELS.map((c) => [c, figures([c])]))
      const perToken = (c: string) => {
        const f = per.get(c)
        return f && f.tokens > 0 ? f.value / f.tokens : null
      }
      const best = Math.max(...CHANNELS.map((c) => perToken(c) ?? 0))
      for (const row of answer.channels) {
        const mine = perToken(row.channel)
        if (mine === null) {
          expect(row.value_per_1k_tokens).toBeNull()
          expect(row.efficiency_score).toBeNull()
          continue
        }
        close(row.value_per_1k_tokens, (mine * 1000) / 1e6, 6)
        close(row.efficiency_score, (100 * mine) / best, 1)
      }
      expect(answer.channels.some((row: { efficiency_score: number }) => row.efficiency_score === 100)).toBe(
        true,
      )
    })

  it("keeps efficiency as messages per 1,000 tokens until an outcome with a value is credited, and under a user filter", async () => {
    const fresh = await t.subscription({ token_limit: 1_000_000 })
    const day = new Date(clock.now()).toISOString().slice(0, 10)
    const url = `/api/onboarding/analytics/${fresh.id}?from=${day}&to=${day}&tz=UTC`
    await consume(fresh, { channel: "website", user_identifier: "buyer", estimated_tokens: 400 })
    await consume(fresh, { channel: "api", user_identifier: "browser", estimated_tokens: 100 })
    const before = (await t.request({ method: "GET", url, key: fresh.key })).json()
    expect(before.efficiency_basis).toBe("messages")
    expect(before.channels.find((c: { channel: string }) => c.channel === "api").efficiency_score).toBe(100)
    for (const row of before.channels) expect(row.value_per_1k_tokens).toBeNull()
    const recorded = await t.request({
      method: "POST",
      url: "/api/outcomes",
      key: fresh.key,
      payload: { name: "purchase", value: "2.5", user_identifier: "buyer", idempotency_key: "eff-1" },
    })
    expect(recorded.statusCode, recorded.body).toBe(201)
    const after = (await t.request({ method: "GET", url, key: fresh.key })).json()
    expect(after.efficiency_basis).toBe("value")
    const website = after.channels.find((c: { channel: string }) => c.channel === "website")
    const api = after.channels.find((c: { channel: string }) => c.channel === "api")
    expect(website.value_per_1k_tokens).toBeCloseTo((2.5 * 1000) / website.tokens_used, 6)
    expect([website.efficiency_score, api.efficiency_score]).toEqual([100, 0])
    const filtered = await t.request({ method: "GET", url: `${url}&user_identifier=buyer`, key: fresh.key })
    expect(filtered.json().efficiency_basis).toBe("messages")
  })
})
