/**
 * Channel analytics against an independent oracle (test/support/analytics-oracle.ts): turns with known
 * timestamps are written through the real paths (live consume and settle over HTTP, NDJSON import), and
 * every metric of every endpoint is recomputed from the generated turns in plain JavaScript. Runs on PGlite
 * and PostgreSQL, in zones with DST changes (23- and 25-hour days) and half- and quarter-hour offsets.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AnalyticsService } from "../../src/analytics/service.js"
import { ManualClock } from "../../src/core/clock.js"
import {
  datesFrom,
  local,
  type OracleStats,
  type OracleTurn,
  oracleScores,
  oracleStats,
  random,
  shiftDate,
} from "../support/analytics-oracle.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const CHANNELS = ["website", "whatsapp", "messenger", "instagram", "telegram", "api"]
const DENIAL_REASONS = [
  "subscription_not_found",
  "subscription_inactive",
  "channel_not_in_plan",
  "channel_disabled",
  "message_too_long",
  "turn_too_large",
  "rate_limited",
  "quota_exceeded",
  "capacity_shed",
  "quota_reserved",
]
/** Multipliers set on the subscription, in hundredths; the oracle bills with them. */
const MULTIPLIERS: Record<string, number> = {
  website: 100,
  whatsapp: 120,
  messenger: 110,
  instagram: 130,
  telegram: 105,
  api: 90,
}
const billed = (raw: number, channel: string) => Math.floor((raw * (MULTIPLIERS[channel] ?? 100) + 99) / 100)

const NOW = new Date("2026-12-01T12:00:00Z")
const clock = new ManualClock(NOW.getTime())
let t: TestApp

beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t?.close())

const ROUTE = "/api/onboarding/analytics/:subscription_id"
const COMPARISON = `${ROUTE}/channels/comparison`
const TRENDS = `${ROUTE}/channels/:channel/trends`

interface Scenario {
  zone: string
  from: string
  to: string
  /** Hours in the period, a fact about the zone's calendar (DST days have 23 or 25). */
  hours: number
  /** The instant `from` starts, a fact about the zone. */
  start: string
}

const SCENARIOS: Scenario[] = [
  // Spring forward on 2026-03-08: a 23-hour day.
  {
    zone: "America/New_York",
    from: "2026-03-01",
    to: "2026-03-14",
    hours: 14 * 24 - 1,
    start: "2026-03-01T05:00:00.000Z",
  },
  // Fall back on 2026-10-25: a 25-hour day.
  {
    zone: "Europe/London",
    from: "2026-10-20",
    to: "2026-10-31",
    hours: 12 * 24 + 1,
    start: "2026-10-19T23:00:00.000Z",
  },
  {
    zone: "Asia/Kolkata",
    from: "2026-05-01",
    to: "2026-05-10",
    hours: 10 * 24,
    start: "2026-04-30T18:30:00.000Z",
  },
  {
    zone: "Asia/Kathmandu",
    from: "2026-05-01",
    to: "2026-05-10",
    hours: 10 * 24,
    start: "2026-04-30T18:15:00.000Z",
  },
  // Across New Year: users of two UTC years.
  {
    zone: "Australia/Sydney",
    from: "2025-12-25",
    to: "2026-01-05",
    hours: 12 * 24,
    start: "2025-12-24T13:00:00.000Z",
  },
  // +13:45 falling back to +12:45 on 2026-04-05.
  {
    zone: "Pacific/Chatham",
    from: "2026-04-01",
    to: "2026-04-07",
    hours: 7 * 24 + 1,
    start: "2026-03-31T10:15:00.000Z",
  },
]

interface Loaded {
  id: string
  key: string
  entityId: string
  turns: OracleTurn[]
}

/** Creates a subscription in `zone` and writes ~360 turns around the scenario's period, both ways. */
async function load(scenario: Scenario, seed: number): Promise<Loaded> {
  const sub = await t.subscription({
    timezone: scenario.zone,
    token_limit: 1_000_000_000_000,
    period_start: "2025-01-01T00:00:00Z",
  })
  for (const channel of CHANNELS) {
    const res = await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${sub.id}/channels/${channel}/config`,
      payload: { token_multiplier: (MULTIPLIERS[channel] ?? 100) / 100 },
    })
    expect(res.statusCode).toBe(200)
  }
  const rand = random(seed)
  const days = datesFrom(scenario.from, scenario.to).length
  // From before the previous period to after the period, so both edges are exercised.
  const lo = Date.parse(`${shiftDate(scenario.from, -days - 1)}T00:00:00Z`)
  const hi = Date.parse(`${shiftDate(scenario.to, 2)}T00:00:00Z`)
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rand() * values.length)] as T
  const users = Array.from({ length: 30 }, (_, i) => `user-${i}`)
  const instant = () => {
    // Half the turns within a second of a quarter hour, where local days and hours begin and end.
    if (rand() < 0.5) {
      const quarter = Math.floor((lo + rand() * (hi - lo)) / 900_000) * 900_000
      return new Date(quarter + pick([-1000, 0, 0, 1000]))
    }
    return new Date(Math.floor(lo + rand() * (hi - lo)))
  }
  // Growth over the period, so trends are not all "stable".
  const weight = (at: Date) => 1 + (at.getTime() - lo) / (hi - lo)

  const turns: OracleTurn[] = []
  const imported: Array<Record<string, unknown>> = []
  for (let i = 0; i < 300; i += 1) {
    const at = instant()
    const channel = pick(CHANNELS)
    const user = rand() < 0.1 ? undefined : pick(users)
    const raw = Math.floor((1 + rand() * 500) * weight(at))
    imported.push({
      subscription_id: sub.id,
      channel,
      created_at: at.toISOString(),
      raw_tokens: raw,
      ...(user ? { user_identifier: user } : {}),
    })
    turns.push({
      at,
      channel,
      user,
      denialReason: undefined,
      rawTokens: raw,
      billedTokens: billed(raw, channel),
    })
  }

  // Live turns through consume (and some settled, some denied), in time order because the clock is set.
  // One denial surely inside the period, the rest at random.
  const certainDenial = new Date(`${shiftDate(scenario.from, 2)}T12:00:00Z`)
  const live = [...Array.from({ length: 40 }, instant), certainDenial].sort(
    (a, b) => a.getTime() - b.getTime(),
  )
  for (const at of live) {
    clock.set(at)
    const channel = pick(CHANNELS)
    const user = rand() < 0.1 ? undefined : pick(users)
    const estimated = 1 + Math.floor(rand() * 300)
    const deny = at === certainDenial || rand() < 0.2
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      key: sub.key,
      payload: {
        entity_id: sub.entityId,
        entity_type: "organization",
        estimated_tokens: estimated,
        channel,
        ...(user ? { user_identifier: user } : {}),
        ...(deny ? { message_length: 900_000 } : {}),
      },
    })
    const decision = res.json()
    if (deny) {
      expect(decision.allowed).toBe(false)
      turns.push({
        at,
        channel,
        user,
        denialReason: "message_too_long",
        rawTokens: estimated,
        billedTokens: 0,
      })
      continue
    }
    expect(decision.allowed, res.body).toBe(true)
    let raw = estimated
    if (rand() < 0.5) {
      raw = Math.floor(rand() * 600)
      const settled = await t.request({
        method: "POST",
        url: "/api/tokens/settle",
        key: sub.key,
        payload: { usage_id: decision.usage_id, actual_tokens: raw },
      })
      expect(settled.statusCode, settled.body).toBe(200)
    }
    turns.push({
      at,
      channel,
      user,
      denialReason: undefined,
      rawTokens: raw,
      billedTokens: billed(raw, channel),
    })
  }
  clock.set(NOW)
  const res = await t.request({
    method: "POST",
    url: "/api/usage/import",
    headers: { "content-type": "application/x-ndjson" },
    payload: imported.map((line) => JSON.stringify(line)).join("\n"),
  })
  expect(res.statusCode, res.body).toBe(200)
  expect(res.json().imported).toBe(imported.length)
  return { id: sub.id, key: sub.key, entityId: sub.entityId, turns }
}

const get = (url: string, key?: string) => t.request({ method: "GET", url, ...(key ? { key } : {}) })

function expectStats(actual: Record<string, unknown>, expected: OracleStats, label: string): void {
  const { hourly_distribution, daily_trends, ...scalars } = expected
  for (const [field, value] of Object.entries(scalars)) {
    expect(actual[field], `${label}: ${field}`).toEqual(value)
  }
  if ("hourly_distribution" in actual)
    expect(actual.hourly_distribution, `${label}: hourly`).toEqual(hourly_distribution)
  if ("daily_trends" in actual) expect(actual.daily_trends, `${label}: daily`).toEqual(daily_trends)
}

describe.each(SCENARIOS.map((scenario, i) => ({ ...scenario, seed: 1000 + i })))(
  "analytics in $zone",
  (scenario) => {
    let data: Loaded
    const query = `from=${scenario.from}&to=${scenario.to}`
    beforeAll(async () => {
      data = await load(scenario, scenario.seed)
    }, 120_000)

    it("the comprehensive answer matches the oracle for every channel and the totals", async () => {
      const res = await get(`/api/onboarding/analytics/${data.id}?${query}`, data.key)
      expect(res.statusCode, res.body).toBe(200)
      expectDocumented(t.app, "GET", ROUTE, res)
      const body = res.json()
      expect(body.timezone).toBe(scenario.zone)
      expect(body.period).toMatchObject({ from: scenario.from, to: scenario.to, start: scenario.start })
      const args = [scenario.zone, scenario.from, scenario.to] as const
      const perChannel = new Map<string, { tokens: number; messages: number }>()
      for (const channel of CHANNELS) {
        const expected = oracleStats(data.turns, ...args, [channel], DENIAL_REASONS)
        perChannel.set(channel, { tokens: expected.tokens_used, messages: expected.message_count })
        const actual = body.channels.find((c: { channel: string }) => c.channel === channel)
        expectStats(actual, expected, channel)
      }
      const scores = oracleScores(perChannel)
      for (const channel of CHANNELS) {
        const actual = body.channels.find((c: { channel: string }) => c.channel === channel)
        expect(actual, channel).toMatchObject(scores.get(channel) ?? {})
      }
      expectStats(body.totals, oracleStats(data.turns, ...args, CHANNELS, DENIAL_REASONS), "totals")
      expect(body.totals.message_count).toBeGreaterThan(50)
      expect(body.totals.denied_count).toBeGreaterThan(0)
    })

    it("a channels filter narrows the channels, the totals and the shares to those channels", async () => {
      const res = await get(`/api/onboarding/analytics/${data.id}?${query}&channels=api,whatsapp`, data.key)
      expect(res.statusCode, res.body).toBe(200)
      const body = res.json()
      expect(body.channels.map((c: { channel: string }) => c.channel)).toEqual(["whatsapp", "api"])
      const two = ["whatsapp", "api"]
      expectStats(
        body.totals,
        oracleStats(data.turns, scenario.zone, scenario.from, scenario.to, two, DENIAL_REASONS),
        "totals",
      )
      const perChannel = new Map(
        two.map((channel) => {
          const s = oracleStats(
            data.turns,
            scenario.zone,
            scenario.from,
            scenario.to,
            [channel],
            DENIAL_REASONS,
          )
          return [channel, { tokens: s.tokens_used, messages: s.message_count }]
        }),
      )
      const scores = oracleScores(perChannel)
      for (const c of body.channels) expect(c).toMatchObject(scores.get(c.channel) ?? {})
    })

    it("the comparison ranks channels by tokens_used and names the best and worst per metric", async () => {
      const res = await get(`/api/onboarding/analytics/${data.id}/channels/comparison?${query}`, data.key)
      expect(res.statusCode, res.body).toBe(200)
      expectDocumented(t.app, "GET", COMPARISON, res)
      const body = res.json()
      const stats = CHANNELS.map((channel, index) => ({
        channel,
        index,
        ...oracleStats(data.turns, scenario.zone, scenario.from, scenario.to, [channel], DENIAL_REASONS),
      }))
      const ranked = [...stats].sort((a, b) => b.tokens_used - a.tokens_used || a.index - b.index)
      expect(body.channels.map((c: { channel: string; rank: number }) => [c.rank, c.channel])).toEqual(
        ranked.map((s, i) => [i + 1, s.channel]),
      )
      for (const [i, { channel, index: _, ...s }] of ranked.entries())
        expectStats(body.channels[i], s, channel)
      const scores = oracleScores(
        new Map(stats.map((s) => [s.channel, { tokens: s.tokens_used, messages: s.message_count }])),
      )
      const extreme = (value: (s: (typeof ranked)[number]) => number | null, higher = true) => {
        const valued = ranked.filter((s) => value(s) !== null)
        if (valued.length === 0) return null
        let best = valued[0]
        let worst = valued[0]
        for (const s of valued) {
          const v = value(s) as number
          if (higher ? v > (value(best as typeof s) as number) : v < (value(best as typeof s) as number))
            best = s
          if (higher ? v < (value(worst as typeof s) as number) : v > (value(worst as typeof s) as number))
            worst = s
        }
        return { best: best?.channel, worst: worst?.channel }
      }
      expect(body.best_and_worst).toEqual({
        tokens_used: extreme((s) => s.tokens_used),
        message_count: extreme((s) => s.message_count),
        unique_users: extreme((s) => s.unique_users),
        avg_tokens_per_message: extreme(
          (s) => (s.message_count === 0 ? null : s.avg_tokens_per_message),
          false,
        ),
        usage_share: extreme((s) => scores.get(s.channel)?.usage_share ?? null),
        efficiency_score: extreme((s) => scores.get(s.channel)?.efficiency_score ?? null),
        tokens_growth: extreme((s) => s.growth.tokens_used),
      })
      const totals = oracleStats(
        data.turns,
        scenario.zone,
        scenario.from,
        scenario.to,
        CHANNELS,
        DENIAL_REASONS,
      )
      expect(body.totals).toEqual({
        tokens_used: totals.tokens_used,
        raw_tokens: totals.raw_tokens,
        message_count: totals.message_count,
        denied_count: totals.denied_count,
        unique_users: totals.unique_users,
        unique_people: totals.unique_people,
        avg_tokens_per_message: totals.avg_tokens_per_message,
      })
    })

    it("daily trends give one point per local day with the oracle's sums", async () => {
      for (const channel of ["whatsapp", "website"]) {
        const res = await get(
          `/api/onboarding/analytics/${data.id}/channels/${channel}/trends?${query}`,
          data.key,
        )
        expect(res.statusCode, res.body).toBe(200)
        expectDocumented(t.app, "GET", TRENDS, res)
        const body = res.json()
        const expected = oracleStats(
          data.turns,
          scenario.zone,
          scenario.from,
          scenario.to,
          [channel],
          DENIAL_REASONS,
        )
        expect(body.granularity).toBe("daily")
        expect(
          body.points.map((p: { date: string; tokens_used: number; message_count: number }) => ({
            date: p.date,
            tokens_used: p.tokens_used,
            message_count: p.message_count,
          })),
        ).toEqual(expected.daily_trends)
        expect(body.points[0].start).toBe(scenario.start)
        const denied = data.turns.filter(
          (turn) =>
            turn.channel === channel &&
            turn.denialReason !== undefined &&
            local(turn.at, scenario.zone).date >= scenario.from &&
            local(turn.at, scenario.zone).date <= scenario.to,
        ).length
        expect(body.points.reduce((s: number, p: { denied_count: number }) => s + p.denied_count, 0)).toBe(
          denied,
        )
        expectStats(body.summary, expected, `${channel} summary`)
      }
    })

    it("hourly trends give one point per local hour (23 or 25 on DST days) with the oracle's sums", async () => {
      const res = await get(
        `/api/onboarding/analytics/${data.id}/channels/telegram/trends?${query}&granularity=hourly`,
        data.key,
      )
      expect(res.statusCode, res.body).toBe(200)
      expectDocumented(t.app, "GET", TRENDS, res)
      const points: Array<{
        start: string
        date: string
        hour: number
        tokens_used: number
        raw_tokens: number
      }> = res.json().points
      expect(points).toHaveLength(scenario.hours)
      expect(points[0]?.start).toBe(scenario.start)
      const starts = points.map((p) => Date.parse(p.start))
      expect(starts.every((s, i) => i === 0 || s > (starts[i - 1] ?? 0))).toBe(true)
      const expected = new Map<string, { tokens: number; raw: number }>()
      for (const turn of data.turns) {
        if (turn.channel !== "telegram" || turn.denialReason !== undefined) continue
        const { date, hour } = local(turn.at, scenario.zone)
        if (date < scenario.from || date > scenario.to) continue
        const key = `${date} ${hour}`
        const e = expected.get(key) ?? { tokens: 0, raw: 0 }
        e.tokens += turn.billedTokens
        e.raw += turn.rawTokens
        expected.set(key, e)
      }
      const actual = new Map<string, { tokens: number; raw: number }>()
      for (const p of points) {
        expect(local(new Date(p.start), scenario.zone)).toEqual({ date: p.date, hour: p.hour })
        if (p.tokens_used === 0 && p.raw_tokens === 0) continue
        const key = `${p.date} ${p.hour}`
        const a = actual.get(key) ?? { tokens: 0, raw: 0 }
        a.tokens += p.tokens_used
        a.raw += p.raw_tokens
        actual.set(key, a)
      }
      expect(actual).toEqual(expected)
    })

    it("the rollups answer exactly what the raw ledger answers", async () => {
      const ledger = new AnalyticsService({ database: t.container.database, clock, source: "ledger" })
      const rollups = t.container.analytics
      const q = { from: shiftDate(scenario.from, -3), to: shiftDate(scenario.to, 1) }
      const strip = <T extends { generatedAt: Date }>(answer: T) => ({ ...answer, generatedAt: new Date(0) })
      expect(strip(await rollups.comprehensive(data.id, q))).toEqual(
        strip(await ledger.comprehensive(data.id, q)),
      )
      expect(strip(await rollups.comparison(data.id, q))).toEqual(strip(await ledger.comparison(data.id, q)))
      const hourly = { from: scenario.from, to: scenario.to, granularity: "hourly" as const }
      expect(strip(await rollups.trends(data.id, "api", hourly))).toEqual(
        strip(await ledger.trends(data.id, "api", hourly)),
      )
    })
  },
)

describe("freshness", () => {
  it("a consumed turn counts in analytics the moment consume returns, and settlement replaces its estimate", async () => {
    const sub = await t.subscription({ timezone: "Asia/Kolkata", token_limit: 1_000_000 })
    clock.set(new Date("2026-12-01T18:29:59Z")) // 23:59:59 in Kolkata
    const consumed = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      key: sub.key,
      payload: {
        entity_id: sub.entityId,
        entity_type: "organization",
        estimated_tokens: 200,
        channel: "whatsapp",
        user_identifier: "fresh-user",
      },
    })
    expect(consumed.json().allowed).toBe(true)
    const url = `/api/onboarding/analytics/${sub.id}?from=2026-12-01&to=2026-12-01`
    const whatsapp = async () =>
      (await get(url, sub.key)).json().channels.find((c: { channel: string }) => c.channel === "whatsapp")
    expect(await whatsapp()).toMatchObject({
      tokens_used: 240,
      raw_tokens: 200,
      message_count: 1,
      unique_users: 1,
      peak_usage_hour: 23,
    })
    const settled = await t.request({
      method: "POST",
      url: "/api/tokens/settle",
      key: sub.key,
      payload: { usage_id: consumed.json().usage_id, actual_tokens: 50 },
    })
    expect(settled.statusCode).toBe(200)
    expect(await whatsapp()).toMatchObject({ tokens_used: 60, raw_tokens: 50, message_count: 1 })
    clock.set(NOW)
  })

  it("an imported turn counts on the local day it happened", async () => {
    const sub = await t.subscription({ timezone: "America/New_York", period_start: "2025-01-01T00:00:00Z" })
    const res = await t.request({
      method: "POST",
      url: "/api/usage/import",
      headers: { "content-type": "application/x-ndjson" },
      payload: JSON.stringify({
        subscription_id: sub.id,
        channel: "api",
        created_at: "2026-01-16T04:50:00Z", // 23:50 on Jan 15 in New York
        raw_tokens: 100,
        user_identifier: "importer",
      }),
    })
    expect(res.json().imported).toBe(1)
    const body = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-01-15&to=2026-01-15&channels=api`, sub.key)
    ).json()
    expect(body.totals).toMatchObject({
      tokens_used: 90,
      message_count: 1,
      unique_users: 1,
      peak_usage_hour: 23,
    })
    const next = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-01-16&to=2026-01-16`, sub.key)
    ).json()
    expect(next.totals.message_count).toBe(0)
    expect(next.totals.peak_usage_hour).toBeNull()
  })

  it("without from and to, the period is the last 30 days ending today in the subscription's timezone", async () => {
    const sub = await t.subscription({ timezone: "Pacific/Kiritimati" })
    clock.set(new Date("2026-12-01T12:00:00Z")) // already 2026-12-02 in Kiritimati (+14)
    const body = (await get(`/api/onboarding/analytics/${sub.id}`, sub.key)).json()
    expect(body.period).toMatchObject({
      from: "2026-11-03",
      to: "2026-12-02",
      days: 30,
      complete_to: "2026-12-01",
    })
    // Today is partial, so growth compares the 29 complete days with the 29 before them.
    expect(body.previous_period).toMatchObject({ from: "2026-10-05", to: "2026-11-02", days: 29 })
    expect(body.totals.daily_trends).toHaveLength(30)
    const utc = (await get(`/api/onboarding/analytics/${sub.id}?tz=UTC`, sub.key)).json()
    expect(utc.period).toMatchObject({ from: "2026-11-02", to: "2026-12-01" })
    expect(utc.timezone).toBe("UTC")
    clock.set(NOW)
  })

  it("a user active on two days and two channels counts once in the totals", async () => {
    const sub = await t.subscription({ period_start: "2025-01-01T00:00:00Z" })
    const line = (channel: string, created_at: string, user: string) =>
      JSON.stringify({ subscription_id: sub.id, channel, created_at, raw_tokens: 10, user_identifier: user })
    const res = await t.request({
      method: "POST",
      url: "/api/usage/import",
      headers: { "content-type": "application/x-ndjson" },
      payload: [
        line("website", "2026-06-01T10:00:00Z", "ana"),
        line("website", "2026-06-03T10:00:00Z", "ana"),
        line("whatsapp", "2026-06-05T23:59:59Z", "ana"),
        line("whatsapp", "2026-06-02T00:00:00Z", "bo"),
      ].join("\n"),
    })
    expect(res.json().imported).toBe(4)
    const body = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-06-01&to=2026-06-05`, sub.key)
    ).json()
    const users = Object.fromEntries(
      body.channels.map((c: { channel: string; unique_users: number }) => [c.channel, c.unique_users]),
    )
    expect(users).toMatchObject({ website: 1, whatsapp: 2, api: 0 })
    expect(body.totals.unique_users).toBe(2)
  })
})

describe("the partial-day rule: trend and growth read only the complete days", () => {
  // Clock: 2026-12-01 12:00 UTC. Seven flat days (20 turns each) before today, the seven before them with
  // 18 a day, and today, unfinished, with one turn so far.
  const RAW = 100
  const perTurn = billed(RAW, "website")
  let sub: { id: string; key: string }
  const dayOf = (offset: number) => new Date(Date.UTC(2026, 10, 17 + offset)).toISOString().slice(0, 10)

  beforeAll(async () => {
    sub = await t.subscription({ period_start: "2025-01-01T00:00:00Z", timezone: "UTC" })
    const lines: string[] = []
    const line = (day: string, i: number, user: string) =>
      JSON.stringify({
        subscription_id: sub.id,
        channel: "website",
        created_at: `${day}T${String(1 + (i % 9)).padStart(2, "0")}:00:${String(i).padStart(2, "0")}Z`,
        raw_tokens: RAW,
        user_identifier: user,
      })
    for (let offset = 0; offset < 14; offset += 1) {
      const previous = offset < 7
      for (let i = 0; i < (previous ? 18 : 20); i += 1) {
        lines.push(line(dayOf(offset), i, previous ? `p-user-${i % 9}` : `c-user-${i % 15}`))
      }
    }
    lines.push(line("2026-12-01", 0, "today-only"))
    const res = await t.request({
      method: "POST",
      url: "/api/usage/import",
      headers: { "content-type": "application/x-ndjson" },
      payload: lines.join("\n"),
    })
    expect(res.json().imported).toBe(7 * 18 + 7 * 20 + 1)
  })

  // Recomputed here from the turns written above, not from the service's formulas.
  const percent = (now: number, before: number) => Math.round((10_000 * (now - before)) / before) / 100
  const expected = {
    completeTokens: 7 * 20 * perTurn,
    previousTokens: 7 * 18 * perTurn,
    growth: {
      tokens_used: percent(140, 126),
      message_count: percent(140, 126),
      unique_users: percent(15, 9),
    },
  }

  it("a period that includes today keeps today in its totals but out of its trend and growth", async () => {
    const res = await get(`/api/onboarding/analytics/${sub.id}?from=2026-11-24&to=2026-12-01`, sub.key)
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.period).toMatchObject({ from: "2026-11-24", to: "2026-12-01", days: 8 })
    expect(body.period.complete_to).toBe("2026-11-30")
    expect(body.previous_period).toMatchObject({ from: "2026-11-17", to: "2026-11-23", days: 7 })
    const website = body.channels.find((c: { channel: string }) => c.channel === "website")
    for (const figures of [website, body.totals]) {
      expect(figures.tokens_used).toBe(expected.completeTokens + perTurn)
      expect(figures.message_count).toBe(141)
      expect(figures.unique_users).toBe(16)
      expect(figures.complete).toEqual({
        tokens_used: expected.completeTokens,
        message_count: 140,
        unique_users: 15,
      })
      expect(figures.previous).toEqual({
        tokens_used: expected.previousTokens,
        message_count: 126,
        unique_users: 9,
      })
      expect(figures.growth).toEqual(expected.growth)
      // Seven flat days: stable. With today's one turn as the eighth point, the fitted line fell by 63%.
      expect(figures.trend_direction).toBe("stable")
      expect(figures.trend_slope).toBe(0)
    }
    expectDocumented(t.app, "GET", ROUTE, res)
  })

  it("the comparison and a channel's trends follow the same rule", async () => {
    const query = "from=2026-11-24&to=2026-12-01"
    const comparison = await get(`/api/onboarding/analytics/${sub.id}/channels/comparison?${query}`, sub.key)
    const row = comparison.json().channels.find((c: { channel: string }) => c.channel === "website")
    expect(row).toMatchObject({ trend_direction: "stable", growth: expected.growth })
    expect(comparison.json().period.complete_to).toBe("2026-11-30")
    expectDocumented(t.app, "GET", COMPARISON, comparison)
    for (const granularity of ["daily", "hourly"]) {
      const trends = await get(
        `/api/onboarding/analytics/${sub.id}/channels/website/trends?${query}&granularity=${granularity}`,
        sub.key,
      )
      expect(trends.json().summary, granularity).toMatchObject({
        trend_direction: "stable",
        growth: expected.growth,
        complete: { tokens_used: expected.completeTokens },
      })
      expectDocumented(t.app, "GET", TRENDS, trends)
    }
  })

  it("a period that is over compares all its days with the equally long period before", async () => {
    const body = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-11-24&to=2026-11-30`, sub.key)
    ).json()
    expect(body.period.complete_to).toBe("2026-11-30")
    expect(body.previous_period).toMatchObject({ from: "2026-11-17", to: "2026-11-23", days: 7 })
    expect(body.totals.tokens_used).toBe(body.totals.complete.tokens_used)
    expect(body.totals.growth).toEqual(expected.growth)
  })

  it("today alone has no complete day: growth is null everywhere and the trend stable", async () => {
    const body = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-12-01&to=2026-12-01`, sub.key)
    ).json()
    expect(body.period.complete_to).toBeNull()
    expect(body.totals.tokens_used).toBe(perTurn)
    expect(body.totals.complete).toEqual({ tokens_used: 0, message_count: 0, unique_users: 0 })
    expect(body.totals.growth).toEqual({ tokens_used: null, message_count: null, unique_users: null })
    expect(body.totals.trend_direction).toBe("stable")
  })

  it("days after today count as not yet complete, like today", async () => {
    const body = (
      await get(`/api/onboarding/analytics/${sub.id}?from=2026-11-24&to=2026-12-05`, sub.key)
    ).json()
    expect(body.period.complete_to).toBe("2026-11-30")
    expect(body.totals.growth).toEqual(expected.growth)
    expect(body.totals.trend_direction).toBe("stable")
  })
})
