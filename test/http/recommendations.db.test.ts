/**
 * Channel recommendations, a person's preferred channel, and unique_people (issue 15) through the HTTP API
 * on both databases: the happy paths against a recomputation from the generated turns and outcomes (with
 * simple-statistics' normal table, not jStat), the error paths, and the security matrix.
 */
import { cumulativeStdNormalProbability } from "simple-statistics"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

type Sub = Awaited<ReturnType<TestApp["subscription"]>>
const NOW = Date.parse("2026-03-10T08:00:00Z")
const clock = new ManualClock(NOW)
let t: TestApp
let owner: Sub
let other: Sub
let revokedKey: string

const consume = (sub: Sub, body: Record<string, unknown>) =>
  t.request({
    method: "POST",
    url: "/api/tokens/consume",
    key: sub.key,
    payload: { entity_id: sub.entityId, entity_type: "organization", estimated_tokens: 100, ...body },
  })

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
  other = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
})
afterAll(async () => t.close())

interface Plan {
  channel: string
  sessions: number
  converted: number
}

describe("channel recommendations", () => {
  let sub: Sub
  // Per channel: sessions of two turns each, the first `converted` of them named by a purchase worth 10.
  const plan: Plan[] = [
    { channel: "whatsapp", sessions: 60, converted: 24 },
    { channel: "website", sessions: 60, converted: 6 },
    { channel: "telegram", sessions: 5, converted: 1 },
  ]
  const billed = new Map<string, number>()
  const day = Date.parse("2026-03-05T00:00:00Z")

  beforeAll(async () => {
    sub = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
    let minute = 0
    for (const { channel, sessions, converted } of plan) {
      for (let s = 0; s < sessions; s++) {
        const session = `${channel}-${s}`
        for (let turn = 0; turn < 2; turn++) {
          clock.set(day + minute++ * 60_000)
          const answer = await consume(sub, {
            channel,
            user_identifier: `${channel}-user-${s}`,
            session_id: session,
          })
          expect(answer.json().allowed).toBe(true)
          billed.set(channel, (billed.get(channel) ?? 0) + answer.json().billed_tokens)
        }
        if (s < converted) {
          const recorded = await t.request({
            method: "POST",
            url: "/api/outcomes",
            key: sub.key,
            payload: {
              name: "purchase",
              value: "10",
              user_identifier: `${channel}-user-${s}`,
              session_id: session,
              channel,
              idempotency_key: `buy-${session}`,
            },
          })
          expect(recorded.statusCode).toBe(201)
        }
      }
    }
    // ann: three website sessions and one WhatsApp session, linked as one person, converting on WhatsApp;
    // solo: two website sessions, unlinked, no conversion.
    const visits: [string, string, string][] = [
      ["web-ann", "website", "ann-w1"],
      ["web-ann", "website", "ann-w2"],
      ["wa-ann", "whatsapp", "ann-a1"],
      ["web-ann", "website", "ann-w3"],
      ["solo", "website", "solo-1"],
      ["solo", "website", "solo-2"],
    ]
    for (const [user, channel, session] of visits) {
      clock.set(day + minute++ * 60_000)
      const answer = await consume(sub, { channel, user_identifier: user, session_id: session })
      billed.set(channel, (billed.get(channel) ?? 0) + answer.json().billed_tokens)
    }
    await t.request({
      method: "POST",
      url: "/api/outcomes",
      key: sub.key,
      payload: {
        name: "signup",
        user_identifier: "wa-ann",
        channel: "whatsapp",
        idempotency_key: "ann-signup",
      },
    })
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/ann`,
      payload: {
        identifiers: [
          { channel: "website", user_identifier: "web-ann" },
          { channel: "whatsapp", user_identifier: "wa-ann" },
        ],
      },
    })
    clock.set(NOW)
  })

  it("ranks and judges the channels as a recomputation from the generated sessions does", async () => {
    const response = await t.request({
      url: `/api/onboarding/analytics/${sub.id}/recommendations?from=2026-03-01&to=2026-03-09`,
      key: sub.key,
    })
    expect(response.statusCode).toBe(200)
    const body = response.json()
    expect(body.outcomes_known).toBe(true)
    // The recomputation: ann's and solo's sessions count too (ann's signup names no session).
    const extra: Record<string, number> = { website: 5, whatsapp: 1 }
    const rows = plan.map((p) => ({
      ...p,
      sessions: p.sessions + (extra[p.channel] ?? 0),
      value: p.converted * 10,
      tokens: billed.get(p.channel) ?? 0,
    }))
    const totalSessions = rows.reduce((n, r) => n + r.sessions, 0)
    const totalConverted = rows.reduce((n, r) => n + r.converted, 0)
    // The normal distribution's 97.5% point, as tabulated (simple-statistics' probit is an approximation).
    const z975 = 1.959963984540054
    const expected = rows
      .map((r) => {
        const p = r.converted / r.sessions
        const rest = (totalConverted - r.converted) / (totalSessions - r.sessions)
        const pooled = totalConverted / totalSessions
        const z =
          (p - rest) / Math.sqrt(pooled * (1 - pooled) * (1 / r.sessions + 1 / (totalSessions - r.sessions)))
        const pValue = 2 * (1 - cumulativeStdNormalProbability(Math.abs(z)))
        const action =
          r.sessions < 30 ? "gather_evidence" : pValue < 0.05 ? (z > 0 ? "steer_to" : "steer_away") : "keep"
        // Wilson's interval written out: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
        const n = r.sessions
        const centre = (p + z975 ** 2 / (2 * n)) / (1 + z975 ** 2 / n)
        const half = (z975 * Math.sqrt((p * (1 - p)) / n + z975 ** 2 / (4 * n * n))) / (1 + z975 ** 2 / n)
        return {
          ...r,
          p,
          pValue,
          action,
          low: centre - half,
          high: centre + half,
          perK: (r.value * 1000) / r.tokens,
        }
      })
      .sort((a, b) => b.perK - a.perK)
    expect(body.channels.map((c: { channel: string }) => c.channel)).toEqual(expected.map((e) => e.channel))
    for (const [index, e] of expected.entries()) {
      const got = body.channels[index]
      expect(got.rank).toBe(index + 1)
      expect(got.sessions).toBe(e.sessions)
      expect(got.converted_sessions).toBe(e.converted)
      expect(got.tokens_used).toBe(e.tokens)
      expect(got.value).toBe(e.value)
      expect(got.conversion_rate).toBeCloseTo(e.p, 12)
      expect(got.conversion_rate_interval.low).toBeCloseTo(e.low, 6)
      expect(got.conversion_rate_interval.high).toBeCloseTo(e.high, 6)
      expect(got.value_per_1k_tokens).toBeCloseTo(e.perK, 9)
      expect(got.action).toBe(e.action)
      if (e.action !== "gather_evidence") expect(got.compared_with_rest.p_value).toBeCloseTo(e.pValue, 2)
      expect(got.sentence).toContain(`${Math.round(e.p * 1000) / 10}%`)
    }
    expect(body.channels.find((c: { channel: string }) => c.channel === "whatsapp").action).toBe("steer_to")
    expect(body.channels.find((c: { channel: string }) => c.channel === "website").action).toBe("steer_away")
    expect(body.person).toBeNull()
  })

  it("folds the judged channels into the insights list as channel_recommendation", async () => {
    const body = (
      await t.request({ url: `/api/onboarding/analytics/${sub.id}/insights`, key: sub.key })
    ).json()
    const folded = body.insights.filter((i: { kind: string }) => i.kind === "channel_recommendation")
    expect(folded.map((i: { channel: string }) => i.channel).sort()).toEqual(["website", "whatsapp"])
    const scores = body.insights.map((i: { score: number }) => i.score)
    expect(scores).toEqual([...scores].sort((a, b) => b - a))
  })

  it("gives a linked person's preferred channel by conversions, by either of their identifiers", async () => {
    for (const query of ["person_id=ann", "user_identifier=web-ann"]) {
      const body = (
        await t.request({
          url: `/api/onboarding/analytics/${sub.id}/recommendations?from=2026-03-01&to=2026-03-09&${query}`,
          key: sub.key,
        })
      ).json()
      expect(body.person.channel).toBe("whatsapp")
      expect(body.person.basis).toBe("converting")
      expect(
        body.person.channels.map(
          (c: { channel: string; sessions: number; turns: number; conversions: number }) => [
            c.channel,
            c.sessions,
            c.turns,
            c.conversions,
          ],
        ),
      ).toEqual([
        ["website", 3, 3, 0],
        ["whatsapp", 1, 1, 1],
      ])
    }
  })

  it("gives an unlinked, unconverted person's most engaged channel, and none for a stranger", async () => {
    const url = `/api/onboarding/analytics/${sub.id}/recommendations?from=2026-03-01&to=2026-03-09`
    const solo = (await t.request({ url: `${url}&user_identifier=solo`, key: sub.key })).json()
    expect(solo.person).toMatchObject({ channel: "website", basis: "engaged", user_identifier: "solo" })
    expect(solo.person.channels[0]).toMatchObject({ sessions: 2, turns: 2, conversions: 0 })
    const stranger = (await t.request({ url: `${url}&person_id=nobody`, key: sub.key })).json()
    expect(stranger.person).toMatchObject({ channel: null, basis: null, channels: [] })
  })

  it("judges nothing without outcomes", async () => {
    const quiet = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
    clock.set(day)
    for (let s = 0; s < 40; s++)
      await consume(quiet, { channel: "website", user_identifier: `q${s}`, session_id: `q${s}` })
    clock.set(NOW)
    const body = (
      await t.request({ url: `/api/onboarding/analytics/${quiet.id}/recommendations`, key: quiet.key })
    ).json()
    expect(body.outcomes_known).toBe(false)
    expect(body.channels.map((c: { action: string }) => c.action)).toEqual(["gather_evidence"])
  })

  it("answers 400 naming the field for a bad person_id, both selectors, and an unknown channel", async () => {
    const url = `/api/onboarding/analytics/${owner.id}/recommendations`
    for (const [query, field] of [
      [`person_id=${"x".repeat(65)}`, "person_id"],
      ["person_id=a&user_identifier=b", "person_id"],
      ["channels=fax", "channels"],
      ["user_identifier=", "user_identifier"],
    ] as const) {
      const response = await t.request({ url: `${url}?${query}`, key: owner.key })
      expect(response.statusCode).toBe(400)
      expect(response.json().error.message).toContain(field)
    }
  })

  it("answers 404 for another tenant's subscription, with or without a person", async () => {
    for (const query of ["", "?person_id=ann"]) {
      const response = await t.request({
        url: `/api/onboarding/analytics/${sub.id}/recommendations${query}`,
        key: other.key,
      })
      expect(response.statusCode).toBe(404)
    }
  })
})

describe("unique_people", () => {
  it("counts linked identifiers once and an unlinked identifier once per channel, links applying to past turns", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
    const turns: [string, string, string][] = [
      ["ada-wa", "whatsapp", "bot-1"],
      ["ada-web", "website", "bot-1"],
      ["ada-web", "website", "bot-2"],
      ["sam", "website", "bot-1"],
      ["sam", "telegram", "bot-2"],
      ["kim", "telegram", "bot-2"],
      ["kim", "telegram", "bot-2"],
    ]
    const day = Date.parse("2026-03-04T10:00:00Z")
    for (const [i, [user, channel, chatbot]] of turns.entries()) {
      clock.set(day + i * 60_000)
      await consume(sub, { channel, user_identifier: user, chatbot_id: chatbot })
    }
    clock.set(NOW)
    // The recomputation: a person key per turn, then distinct keys per channel, per chatbot and in total.
    let personOf = (user: string, channel: string) => `${channel}:${user}`
    const distinct = (
      keep: (turn: [string, string, string]) => boolean,
      key: (turn: [string, string, string]) => string,
    ) => new Set(turns.filter(keep).map(key)).size
    const people = (keep: (turn: [string, string, string]) => boolean) =>
      distinct(keep, ([user, channel]) => personOf(user, channel))
    const users = (keep: (turn: [string, string, string]) => boolean) => distinct(keep, ([user]) => user)
    expect(users(() => true)).toBe(4) // ada-wa, ada-web, sam, kim

    // Twice: once over whole UTC days (the rollups' day maps) and once over a partial day (the ledger).
    const expectPeople = async () => {
      for (const range of [
        "from=2026-03-01&to=2026-03-09",
        "from=2026-03-04&to=2026-03-04&tz=Asia/Kolkata",
      ]) {
        const body = (
          await t.request({ url: `/api/onboarding/analytics/${sub.id}?${range}`, key: sub.key })
        ).json()
        expect(body.totals.unique_people).toBe(people(() => true))
        expect(body.totals.unique_users).toBe(users(() => true))
        for (const channel of body.channels as {
          channel: string
          unique_people: number
          unique_users: number
        }[]) {
          expect(channel.unique_people).toBe(people(([, c]) => c === channel.channel))
          expect(channel.unique_users).toBe(users(([, c]) => c === channel.channel))
        }
        const comparison = (
          await t.request({
            url: `/api/onboarding/analytics/${sub.id}/channels/comparison?${range}`,
            key: sub.key,
          })
        ).json()
        expect(comparison.totals.unique_people).toBe(people(() => true))
      }
    }
    // No link yet: every identifier is a person of its own, one per channel.
    expect(people(() => true)).toBe(5) // ada-wa, ada-web, sam on website, sam on telegram, kim
    await expectPeople()

    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/ada`,
      payload: {
        identifiers: [
          { channel: "whatsapp", user_identifier: "ada-wa" },
          { channel: "website", user_identifier: "ada-web" },
        ],
      },
    })
    personOf = (user: string, channel: string) => (user.startsWith("ada") ? "ada" : `${channel}:${user}`)
    expect(people(() => true)).toBe(4) // ada, sam on website, sam on telegram, kim
    await expectPeople()
    const breakdown = (
      await t.request({
        url: `/api/onboarding/analytics/${sub.id}/breakdown?by=chatbot&from=2026-03-01&to=2026-03-09`,
        key: sub.key,
      })
    ).json()
    for (const item of breakdown.items as { key: string; unique_people: number }[]) {
      expect(item.unique_people).toBe(people(([, , chatbot]) => chatbot === item.key))
    }
  })
})

const endpoints: MatrixEndpoint[] = [
  {
    name: "recommendations",
    method: "GET",
    route: "/api/onboarding/analytics/:subscription_id/recommendations",
    url: () => `/api/onboarding/analytics/${owner.id}/recommendations`,
    expect: { other: 404 },
  },
  {
    name: "a person's recommendation",
    method: "GET",
    route: "/api/onboarding/analytics/:subscription_id/recommendations",
    url: () => `/api/onboarding/analytics/${owner.id}/recommendations?person_id=ada`,
    expect: { other: 404 },
  },
]

describeSecurityMatrix(endpoints, {
  app: () => t,
  revokedKey: () => revokedKey,
  otherKey: () => other.key,
  ownKey: () => owner.key,
})
