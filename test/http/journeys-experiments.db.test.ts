/**
 * People, journeys and experiments (issue 15) through the HTTP API on both databases: the happy paths
 * against an independent recomputation from the generated turns, the error paths, and the security matrix.
 */
import { sql } from "kysely"
import { cumulativeStdNormalProbability } from "simple-statistics"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { CHANNEL_DEFINITIONS } from "../../src/core/channels.js"
import { ManualClock } from "../../src/core/clock.js"
import { assignVariant } from "../../src/core/experiments.js"
import { createMeter } from "../../src/meter/meter.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

type Sub = Awaited<ReturnType<TestApp["subscription"]>>
const clock = new ManualClock(Date.parse("2026-03-10T08:00:00Z"))
let t: TestApp
let owner: Sub
let other: Sub
let revokedKey: string
let experimentId: string

const consume = (sub: Sub, body: Record<string, unknown>, key?: string) =>
  t.request({
    method: "POST",
    url: "/api/tokens/consume",
    ...(key ? { key } : {}),
    payload: { entity_id: sub.entityId, entity_type: "organization", estimated_tokens: 100, ...body },
  })

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ token_limit: 100_000_000 })
  other = await t.subscription({ token_limit: 100_000_000 })
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
  const created = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/experiments`,
    payload: {
      name: "matrix",
      channels: ["telegram"],
      variants: [
        { name: "a", weight: 1 },
        { name: "b", weight: 1 },
      ],
      primary_metric: "tokens_per_turn",
    },
  })
  experimentId = created.json().id
})
afterAll(async () => t.close())

describe("people across channels", () => {
  it("links identifiers to a person and reads them back", async () => {
    const put = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${owner.id}/people/ada`,
      payload: {
        identifiers: [
          { channel: "whatsapp", user_identifier: "+15550001" },
          { channel: "website", user_identifier: "cookie-ada" },
        ],
      },
    })
    expect(put.statusCode).toBe(200)
    const got = await t.request({ url: `/api/subscriptions/${owner.id}/people/ada`, key: owner.key })
    expect(got.statusCode).toBe(200)
    expect(got.json().identifiers.map((i: { channel: string }) => i.channel)).toEqual(["website", "whatsapp"])
  })

  it("refuses an identifier that belongs to another person with 409 naming that person", async () => {
    const put = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${owner.id}/people/bob`,
      payload: { identifiers: [{ channel: "whatsapp", user_identifier: "+15550001" }] },
    })
    expect(put.statusCode).toBe(409)
    expect(put.json().error.message).toContain('"ada"')
    const bob = await t.request({ url: `/api/subscriptions/${owner.id}/people/bob` })
    expect(bob.statusCode).toBe(404)
  })

  it("answers 400 naming person_id for an id over 64 characters, and identifiers for a bad channel", async () => {
    const long = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${owner.id}/people/${"x".repeat(65)}`,
      payload: { identifiers: [] },
    })
    expect(long.statusCode).toBe(400)
    expect(long.json().error.message).toContain("person_id")
    const bad = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${owner.id}/people/carl`,
      payload: { identifiers: [{ channel: "fax", user_identifier: "1" }] },
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.message).toContain("identifiers")
  })

  it("keeps one subscription's people apart from another's", async () => {
    const put = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${other.id}/people/ada`,
      payload: { identifiers: [{ channel: "whatsapp", user_identifier: "+15550001" }] },
    })
    expect(put.statusCode).toBe(200)
    const seen = await t.container.database.withTenant(owner.id, async (trx) =>
      sql<{
        n: number
      }>`select count(*)::int as n from person_identifiers where subscription_id <> ${owner.id}`
        .execute(trx)
        .then((r) => r.rows[0]?.n),
    )
    expect(seen).toBe(0)
  })
})

describe("journeys", () => {
  it("match a recomputation from the generated turns, with links applied to past turns", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
    const channels = ["website", "whatsapp", "instagram", "messenger"] as const
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    // Each user: a few sessions, each a few turns on one channel, with or without a session id.
    const turns: { user: string; channel: string; at: number; session?: string }[] = []
    const start = Date.parse("2026-03-02T00:00:00Z")
    for (let u = 0; u < 40; u++) {
      let at = start + Math.floor(random() * 3600_000)
      for (let k = 0; k < 1 + Math.floor(random() * 4); k++) {
        const channel = channels[Math.floor(random() * channels.length)] ?? "website"
        const withSession = random() < 0.5
        for (let n = 0; n < 1 + Math.floor(random() * 3); n++) {
          turns.push({ user: `u${u}`, channel, at, ...(withSession ? { session: `s${u}-${k}` } : {}) })
          at += 60_000 * (1 + Math.floor(random() * 10))
        }
        at += 3600_000 * (1 + Math.floor(random() * 5))
      }
    }
    turns.sort((a, b) => a.at - b.at)
    for (const turn of turns) {
      clock.set(turn.at)
      const answer = await consume(sub, {
        channel: turn.channel,
        user_identifier: turn.user,
        ...(turn.session ? { session_id: turn.session } : {}),
      })
      expect(answer.json().allowed).toBe(true)
    }
    // After the turns: u0's and u1's identifiers on every channel are one person.
    const link = channels.flatMap((channel) => [
      { channel, user_identifier: "u0" },
      { channel, user_identifier: "u1" },
    ])
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/p01`,
      payload: { identifiers: link },
    })
    clock.set(Date.parse("2026-03-10T08:00:00Z"))

    // The recomputation: sessions by walking each person's turns in order.
    const person = (user: string, channel: string) =>
      user === "u0" || user === "u1" ? "p01" : `${channel}|${user}`
    const sessions = new Map<string, { channel: string; at: number }[]>()
    const lastFree = new Map<string, number>()
    const seenSession = new Set<string>()
    for (const turn of turns) {
      const who = person(turn.user, turn.channel)
      const list = sessions.get(who) ?? []
      sessions.set(who, list)
      if (turn.session) {
        const key = `${who}|${turn.channel}|${turn.session}`
        if (!seenSession.has(key)) list.push({ channel: turn.channel, at: turn.at })
        seenSession.add(key)
      } else {
        const key = `${who}|${turn.channel}`
        const previous = lastFree.get(key)
        if (previous === undefined || turn.at - previous >= 30 * 60_000)
          list.push({ channel: turn.channel, at: turn.at })
        lastFree.set(key, turn.at)
      }
    }
    const transitions = new Map<string, number>()
    const gaps = new Map<string, number[]>()
    const paths = new Map<string, number>()
    let multi = 0
    for (const list of sessions.values()) {
      list.sort((a, b) => a.at - b.at || a.channel.localeCompare(b.channel))
      const path: string[] = []
      list.forEach((session, i) => {
        const before = list[i - 1]
        if (before && before.channel !== session.channel) {
          const key = `${before.channel}>${session.channel}`
          transitions.set(key, (transitions.get(key) ?? 0) + 1)
          gaps.set(key, [...(gaps.get(key) ?? []), (session.at - before.at) / 1000])
        }
        if (path.at(-1) !== session.channel) path.push(session.channel)
      })
      if (new Set(path).size > 1) multi += 1
      const key = path.slice(0, 5).join(">")
      paths.set(key, (paths.get(key) ?? 0) + 1)
    }

    const response = await t.request({
      url: `/api/onboarding/analytics/${sub.id}/journeys?from=2026-03-01&to=2026-03-09`,
      key: sub.key,
    })
    expect(response.statusCode).toBe(200)
    const body = response.json()
    // Computed now, by the service's clock (this app stores no answer; the stored answers are tested in
    // src/analytics/journeys.db.test.ts).
    expect(body.computed_at).toBe(new Date(clock.now()).toISOString())
    expect(body.people).toBe(sessions.size)
    expect(body.sessions).toBe([...sessions.values()].reduce((n, list) => n + list.length, 0))
    expect(body.cross_channel_share).toBeCloseTo(multi / sessions.size, 12)
    expect(
      Object.fromEntries(
        body.transitions.map((x: { from: string; to: string; count: number }) => [
          `${x.from}>${x.to}`,
          x.count,
        ]),
      ),
    ).toEqual(Object.fromEntries(transitions))
    // The median gap by sorting: the middle one, or the mean of the two middle ones.
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b)
      const middle = Math.floor(sorted.length / 2)
      return sorted.length % 2 === 1
        ? (sorted[middle] ?? Number.NaN)
        : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
    }
    expect(body.transitions.length).toBeGreaterThan(0)
    expect(
      body.transitions.some((x: { count: number }) => x.count > 1 && x.count % 2 === 0),
      "a transition with an even count, where the median is a mean of two gaps",
    ).toBe(true)
    for (const x of body.transitions as { from: string; to: string; median_gap_seconds: number }[])
      expect(x.median_gap_seconds, `${x.from}>${x.to}`).toBeCloseTo(
        median(gaps.get(`${x.from}>${x.to}`) ?? []),
        6,
      )
    expect(body.top_paths).toHaveLength(Math.min(20, paths.size))
    for (const path of body.top_paths as { channels: string[]; people: number; share: number }[]) {
      expect(path.people).toBe(paths.get(path.channels.join(">")))
      expect(path.share).toBeCloseTo(path.people / sessions.size, 12)
    }
  })

  it("give converters' first and last touch and each path's conversion rate once outcomes exist", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
    const day = Date.parse("2026-03-03T00:00:00Z")
    const visits: [string, string, number][] = [
      ["ann", "instagram", 0],
      ["ann", "whatsapp", 120],
      ["ann", "website", 300],
      ["ben", "instagram", 10],
      ["ben", "whatsapp", 200],
      ["cat", "website", 30],
      ["dan", "website", 40],
    ]
    for (const [user, channel, minute] of visits) {
      clock.set(day + minute * 60_000)
      await consume(sub, { channel, user_identifier: user })
    }
    // ann and ben are one person each across their channels; cat and dan are not linked.
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/ann`,
      payload: {
        identifiers: ["instagram", "whatsapp", "website"].map((channel) => ({
          channel,
          user_identifier: "ann",
        })),
      },
    })
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/ben`,
      payload: {
        identifiers: ["instagram", "whatsapp"].map((channel) => ({ channel, user_identifier: "ben" })),
      },
    })
    // ann converts on WhatsApp before her website visit; cat converts on the website.
    for (const [user, channel, minute] of [
      ["ann", "whatsapp", 150],
      ["cat", "website", 35],
    ] as const) {
      clock.set(day + minute * 60_000 + 1000)
      const recorded = await t.request({
        method: "POST",
        url: "/api/outcomes",
        key: sub.key,
        payload: {
          name: "purchase",
          user_identifier: user,
          channel,
          occurred_at: new Date(day + minute * 60_000).toISOString(),
          idempotency_key: `${user}-buy`,
        },
      })
      expect(recorded.statusCode).toBe(201)
    }
    clock.set(Date.parse("2026-03-10T08:00:00Z"))
    const body = (
      await t.request({ url: `/api/onboarding/analytics/${sub.id}/journeys?from=2026-03-03&to=2026-03-03` })
    ).json()
    expect(body.converted_people).toBe(2)
    expect(body.first_touch).toEqual([
      { channel: "instagram", people: 1 },
      { channel: "website", people: 1 },
    ])
    expect(body.last_touch).toEqual([
      { channel: "website", people: 1 },
      { channel: "whatsapp", people: 1 },
    ])
    const rate = (path: string) =>
      body.top_paths.find((p: { channels: string[] }) => p.channels.join(">") === path)?.conversion_rate
    expect(rate("website")).toBe(0.5)
    expect(rate("instagram>whatsapp")).toBe(0)
    expect(rate("instagram>whatsapp>website")).toBe(1)
  })

  it("answers 400 naming the parameter for an unknown channel, and 404 for another tenant", async () => {
    const bad = await t.request({ url: `/api/onboarding/analytics/${owner.id}/journeys?channels=fax` })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.message).toContain("channels")
    const notBoolean = await t.request({ url: `/api/onboarding/analytics/${owner.id}/journeys?fresh=maybe` })
    expect(notBoolean.statusCode).toBe(400)
    expect(notBoolean.json().error.message).toContain("fresh")
    const fresh = await t.request({ url: `/api/onboarding/analytics/${owner.id}/journeys?fresh=true` })
    expect(fresh.statusCode).toBe(200)
    const foreign = await t.request({ url: `/api/onboarding/analytics/${owner.id}/journeys`, key: other.key })
    expect(foreign.statusCode).toBe(404)
  })
})

describe("experiments", () => {
  const create = (sub: Sub, payload: Record<string, unknown>) =>
    t.request({ method: "POST", url: `/api/subscriptions/${sub.id}/experiments`, payload })
  const base = {
    name: "WhatsApp pricing",
    channels: ["whatsapp"],
    primary_metric: "tokens_per_turn",
    variants: [
      { name: "control", weight: 1 },
      { name: "double", weight: 1, overrides: { token_multiplier: 2, priority: 9 }, label: "gpt-small" },
    ],
  }

  it("answers 400 naming the field for bad weights, an out-of-range override and an unknown metric", async () => {
    const zero = await create(owner, {
      ...base,
      variants: [
        { name: "a", weight: 0 },
        { name: "b", weight: 0 },
      ],
    })
    expect(zero.statusCode).toBe(400)
    expect(zero.json().error.message).toContain("variants")
    const range = await create(owner, {
      ...base,
      variants: [
        { name: "a", weight: 1 },
        { name: "b", weight: 1, overrides: { token_multiplier: 11 } },
      ],
    })
    expect(range.statusCode).toBe(400)
    expect(range.json().error.message).toContain("token_multiplier")
    const metric = await create(owner, { ...base, primary_metric: "happiness" })
    expect(metric.statusCode).toBe(400)
    expect(metric.json().error.message).toContain("primary_metric")
  })

  it("applies the variant's overrides in consume, sticky per person, and reports them in the decision", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const created = await create(sub, { ...base, status: "running" })
    expect(created.statusCode).toBe(201)
    const id = created.json().id as string
    const whatsapp = CHANNEL_DEFINITIONS.whatsapp.defaults
    const whatsappBilled = Math.ceil((100 * whatsapp.multiplierHundredths) / 100)
    const users = Array.from({ length: 60 }, (_, i) => `+1555${1000 + i}`)
    const seen = new Map<string, string>()
    for (const round of [0, 1]) {
      for (const user of users) {
        // A second apart: the channel's requests-per-minute limit is not what this test is about.
        clock.advance(1000)
        const decision = (await consume(sub, { channel: "whatsapp", user_identifier: user }, sub.key)).json()
        const expected = assignVariant(id, `i:whatsapp:${user}`, [1, 1]) === 0 ? "control" : "double"
        expect(decision.experiments).toEqual([
          { id, variant: expected, label: expected === "double" ? "gpt-small" : null },
        ])
        expect(decision.billed_tokens).toBe(expected === "double" ? 200 : whatsappBilled)
        expect(decision.priority).toBe(expected === "double" ? 9 : whatsapp.priority)
        if (round === 1) expect(seen.get(user)).toBe(expected)
        seen.set(user, expected)
      }
    }
    // A turn on another channel is in no experiment.
    const web = (await consume(sub, { channel: "website", user_identifier: users[0] })).json()
    expect(web.experiments).toBeUndefined()

    // Another instance (a second meter on the same database) assigns everyone the same.
    const second = await createMeter({ database: t.container.database, clock })
    for (const user of users.slice(0, 10)) {
      clock.advance(1000)
      const decision = await second.validateAndConsumeTokens({
        entityId: sub.entityId,
        entityType: "organization",
        estimatedTokens: 10,
        channel: "whatsapp",
        userIdentifier: user,
      })
      expect(decision.experiments?.[0]?.variant).toBe(seen.get(user))
    }
    await second.close()

    const results = await t.request({
      url: `/api/subscriptions/${sub.id}/experiments/${id}/results`,
      key: sub.key,
    })
    expect(results.statusCode).toBe(200)
    const body = results.json()
    const inControl = users.filter((user) => seen.get(user) === "control").length
    expect(body.variants.map((v: { people: number }) => v.people)).toEqual([
      inControl,
      users.length - inControl,
    ])
    const firstTen = users.slice(0, 10)
    expect(body.variants[0].turns).toBe(
      inControl * 2 + firstTen.filter((u) => seen.get(u) === "control").length,
    )
    expect(body.variants[1].billed_tokens).toBe(
      (users.length - inControl) * 400 + firstTen.filter((u) => seen.get(u) === "double").length * 20,
    )
    expect(body.verdict.decided).toBe(false)
    expect(body.verdict.text).toContain("at least 100 people")

    const stop = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}/experiments/${id}`,
      payload: { status: "stopped" },
    })
    expect(stop.json().status).toBe("stopped")
    const after = (await consume(sub, { channel: "whatsapp", user_identifier: users[0] })).json()
    expect(after.experiments).toBeUndefined()
    expect(after.billed_tokens).toBe(whatsappBilled)
    const restart = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}/experiments/${id}`,
      payload: { status: "running" },
    })
    expect(restart.statusCode).toBe(409)
  })

  it("tests conversion rates with the two-proportion z-test, recomputed here from the turns and outcomes", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    clock.set(Date.parse("2026-03-20T00:00:00Z"))
    const created = await create(sub, {
      ...base,
      channels: ["telegram"],
      primary_metric: "conversion_rate",
      status: "running",
      variants: [
        { name: "control", weight: 1 },
        { name: "short", weight: 1, overrides: { max_message_length: 500 } },
      ],
    })
    const id = created.json().id as string
    const variantOf = new Map<string, number>()
    const converted = new Set<string>()
    for (let i = 0; i < 240; i++) {
      const user = `tg-${i}`
      clock.advance(1000)
      const decision = (await consume(sub, { channel: "telegram", user_identifier: user })).json()
      expect(decision.allowed).toBe(true)
      const variant = decision.experiments[0].variant === "control" ? 0 : 1
      variantOf.set(user, variant)
      // The second variant converts a little more often: every 3rd person against every 4th.
      if (i % (variant === 0 ? 4 : 3) === 0) {
        converted.add(user)
        await t.request({
          method: "POST",
          url: "/api/outcomes",
          key: sub.key,
          payload: {
            name: "lead",
            user_identifier: user,
            channel: "telegram",
            idempotency_key: `lead-${user}`,
          },
        })
      }
    }
    const body = (await t.request({ url: `/api/subscriptions/${sub.id}/experiments/${id}/results` })).json()
    const n = [0, 1].map((v) => [...variantOf.values()].filter((x) => x === v).length)
    const x = [0, 1].map((v) => [...converted].filter((user) => variantOf.get(user) === v).length)
    expect(body.variants.map((v: { people: number }) => v.people)).toEqual(n)
    expect(body.variants.map((v: { conversions: number }) => v.conversions)).toEqual(x)
    const [n1, n2] = n as [number, number]
    const [x1, x2] = x as [number, number]
    const pooled = (x1 + x2) / (n1 + n2)
    const z = (x2 / n2 - x1 / n1) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    const comparison = body.variants[1].comparison
    expect(comparison.statistic).toBeCloseTo(z, 9)
    // Two-sided p from simple-statistics' normal table (z to 0.01), a different route to the same number.
    expect(comparison.p_value).toBeCloseTo(2 * (1 - cumulativeStdNormalProbability(Math.abs(z))), 2)
    expect(body.variants[0].metric.value).toBeCloseTo(x1 / n1, 12)
    expect(body.variants[0].metric.interval.low).toBeLessThan(x1 / n1)
    expect(body.variants[0].metric.interval.high).toBeGreaterThan(x1 / n1)
    expect(body.sample_ratio.mismatch).toBe(false)
    expect(body.verdict.decided).toBe(comparison.p_value < 0.05 && Math.min(n1, n2) >= 100)
    if (body.verdict.decided) expect(body.verdict.winner).toBe("short")
  })

  it("a variant's message length and per-minute limits decide its people's turns, and not the control's", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const created = await create(sub, {
      ...base,
      channels: ["telegram"],
      status: "running",
      variants: [
        { name: "control", weight: 1 },
        {
          name: "tight",
          weight: 1,
          overrides: { max_message_length: 100, requests_per_minute: 3, tokens_per_minute: 1000 },
        },
      ],
    })
    expect(created.statusCode, created.body).toBe(201)
    const id = created.json().id as string
    const personIn = (variant: number) => {
      for (let n = 0; ; n++)
        if (assignVariant(id, `i:telegram:limits-${n}`, [1, 1]) === variant) return `limits-${n}`
    }
    const [control, tight] = [personIn(0), personIn(1)]
    const turn = async (user: string, body: Record<string, unknown> = {}) => {
      const decision = (await consume(sub, { channel: "telegram", user_identifier: user, ...body })).json()
      expect(decision.experiments?.[0]?.variant).toBe(user === tight ? "tight" : "control")
      return decision
    }
    // Each part starts on a fresh minute: the variants share the channel's one window.
    const nextMinute = () => clock.advance(120_000)

    // A 200-character message: over the variant's 100, within Telegram's 4,096.
    nextMinute()
    expect(await turn(tight, { message_length: 200 })).toMatchObject({
      allowed: false,
      reason: "message_too_long",
      max_message_length: 100,
    })
    expect((await turn(control, { message_length: 200 })).allowed).toBe(true)

    // An estimate over the variant's 1,000 tokens per minute can never pass; Telegram's 60,000 let it.
    nextMinute()
    expect(await turn(tight, { estimated_tokens: 1500 })).toMatchObject({
      allowed: false,
      reason: "turn_too_large",
      tokens_per_minute: 1000,
    })
    expect((await turn(control, { estimated_tokens: 1500 })).allowed).toBe(true)

    // 600 + 600 tokens in a minute pass the channel's window but not the variant's 1,000.
    nextMinute()
    expect((await turn(tight, { estimated_tokens: 600 })).allowed).toBe(true)
    expect(await turn(tight, { estimated_tokens: 600 })).toMatchObject({
      allowed: false,
      reason: "rate_limited",
      limit: "tokens_per_minute",
    })
    expect((await turn(control, { estimated_tokens: 600 })).allowed).toBe(true)

    // A fourth request in a minute: over the variant's 3, within Telegram's 60.
    nextMinute()
    for (let i = 0; i < 3; i++) expect((await turn(tight)).allowed).toBe(true)
    expect(await turn(tight)).toMatchObject({
      allowed: false,
      reason: "rate_limited",
      limit: "requests_per_minute",
    })
    expect((await turn(control)).allowed).toBe(true)
  })

  it("answers 404 for another tenant's experiment under one's own subscription, and changes nothing", async () => {
    const foreign = await create(other, { ...base, channels: ["messenger"] })
    expect(foreign.statusCode, foreign.body).toBe(201)
    const foreignId = foreign.json().id as string
    for (const key of [owner.key, undefined]) {
      const under = `/api/subscriptions/${owner.id}/experiments/${foreignId}`
      const responses = [
        await t.request({ url: under, ...(key ? { key } : {}) }),
        await t.request({
          method: "PATCH",
          url: under,
          ...(key ? { key } : {}),
          payload: { status: "running" },
        }),
        await t.request({ url: `${under}/results`, ...(key ? { key } : {}) }),
      ]
      for (const response of responses) {
        expect(response.statusCode, response.body).toBe(404)
        expect(response.json().error).toMatchObject({ code: "not_found", request_id: expect.any(String) })
      }
    }
    const after = await t.request({
      url: `/api/subscriptions/${other.id}/experiments/${foreignId}`,
      key: other.key,
    })
    expect(after.json()).toMatchObject({
      status: "draft",
      started_at: null,
      updated_at: foreign.json().updated_at,
    })
    // Nor is it running for the other tenant's turns.
    const decision = (
      await consume(other, { channel: "messenger", user_identifier: "m-1" }, other.key)
    ).json()
    expect(decision.experiments).toBeUndefined()
  })

  it("never bypasses the plan: a channel outside it stays denied for the variant's people", async () => {
    const basic = await t.subscription({ plan: "basic" })
    const created = await create(basic, {
      ...base,
      channels: ["instagram"],
      status: "running",
      variants: [
        { name: "a", weight: 1, overrides: { requests_per_minute: 1000 } },
        { name: "b", weight: 1, overrides: { token_multiplier: 0.5 } },
      ],
    })
    expect(created.statusCode).toBe(201)
    const decision = (await consume(basic, { channel: "instagram", user_identifier: "x" })).json()
    expect(decision.allowed).toBe(false)
    expect(decision.reason).toBe("channel_not_in_plan")
  })

  it("refuses a second running experiment on the same channel with 409", async () => {
    const sub = await t.subscription()
    await create(sub, { ...base, status: "running" })
    const second = await create(sub, { ...base, status: "running" })
    expect(second.statusCode).toBe(409)
  })
})

const endpoints: MatrixEndpoint[] = [
  {
    name: "link person",
    method: "PUT",
    route: "/api/subscriptions/:id/people/:person_id",
    url: () => `/api/subscriptions/${owner.id}/people/matrix`,
    payload: () => ({ identifiers: [{ channel: "api", user_identifier: "matrix" }] }),
    expect: { other: 404 },
  },
  {
    name: "get person",
    method: "GET",
    route: "/api/subscriptions/:id/people/:person_id",
    url: () => `/api/subscriptions/${owner.id}/people/ada`,
    expect: { other: 404 },
  },
  {
    name: "create experiment",
    method: "POST",
    route: "/api/subscriptions/:id/experiments",
    url: () => `/api/subscriptions/${owner.id}/experiments`,
    payload: () => ({
      name: "m",
      channels: ["api"],
      variants: [
        { name: "a", weight: 1 },
        { name: "b", weight: 1 },
      ],
      primary_metric: "tokens_per_turn",
    }),
    expect: { other: 404, own: 201, admin: 201 },
  },
  {
    name: "list experiments",
    method: "GET",
    route: "/api/subscriptions/:id/experiments",
    url: () => `/api/subscriptions/${owner.id}/experiments`,
    expect: { other: 404 },
  },
  {
    name: "get experiment",
    method: "GET",
    route: "/api/subscriptions/:id/experiments/:experiment_id",
    url: () => `/api/subscriptions/${owner.id}/experiments/${experimentId}`,
    expect: { other: 404 },
  },
  {
    name: "update experiment",
    method: "PATCH",
    route: "/api/subscriptions/:id/experiments/:experiment_id",
    url: () => `/api/subscriptions/${owner.id}/experiments/${experimentId}`,
    payload: () => ({ status: "draft" }),
    expect: { other: 404 },
  },
  {
    name: "experiment results",
    method: "GET",
    route: "/api/subscriptions/:id/experiments/:experiment_id/results",
    url: () => `/api/subscriptions/${owner.id}/experiments/${experimentId}/results`,
    expect: { other: 404 },
  },
  {
    name: "journeys",
    method: "GET",
    route: "/api/onboarding/analytics/:subscription_id/journeys",
    url: () => `/api/onboarding/analytics/${owner.id}/journeys`,
    expect: { other: 404 },
  },
]

describeSecurityMatrix(endpoints, {
  app: () => t,
  revokedKey: () => revokedKey,
  otherKey: () => other.key,
  ownKey: () => owner.key,
})
