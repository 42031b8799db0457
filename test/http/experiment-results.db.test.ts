/**
 * Experiment results through the HTTP API on both databases (issue 15): for each primary metric, the
 * results endpoint's metric, interval, test against the control and verdict against a recomputation from
 * the turns, ratings and outcomes the test generated, with textbook formulas written out and distributions
 * integrated numerically (test/support/reference-statistics.ts). The SQL that gathers each person's figures
 * (src/experiments/service.ts, experimentPeople) is what these tests check end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { components } from "../../src/client/schema.js"
import { ManualClock } from "../../src/core/clock.js"
import { assignVariant } from "../../src/core/experiments.js"
import { startTestApp, type TestApp } from "../support/http.js"
import {
  referenceChiSquareP,
  referenceCritical,
  referenceMean,
  referenceNormalP,
  referenceRatio,
  referenceWelch,
} from "../support/reference-statistics.js"

type Sub = Awaited<ReturnType<TestApp["subscription"]>>
/** The results body as the OpenAPI document declares it (src/client/schema.ts, generated from it). */
type ResultsBody = components["schemas"]["ExperimentResults"]

const clock = new ManualClock(Date.parse("2026-04-01T08:00:00Z"))
let t: TestApp

beforeAll(async () => {
  t = await startTestApp({ clock })
})
afterAll(async () => t.close())

/** A reproducible stream in [0, 1). */
function stream(seed: number) {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state / 2 ** 31
  }
}

async function startExperiment(
  sub: Sub,
  metric: string,
  variants: { name: string; weight: number; label?: string }[],
): Promise<string> {
  const created = await t.request({
    method: "POST",
    url: `/api/subscriptions/${sub.id}/experiments`,
    key: sub.key,
    payload: { name: metric, channels: ["api"], primary_metric: metric, status: "running", variants },
  })
  expect(created.statusCode, created.body).toBe(201)
  return created.json().id
}

/** One allowed turn on the api channel, half a second after the last. */
async function turn(sub: Sub, user: string, extra: Record<string, unknown> = {}) {
  clock.advance(500)
  const res = await t.request({
    method: "POST",
    url: "/api/tokens/consume",
    key: sub.key,
    payload: {
      entity_id: sub.entityId,
      entity_type: "organization",
      channel: "api",
      user_identifier: user,
      estimated_tokens: 100,
      ...extra,
    },
  })
  expect(res.statusCode, res.body).toBe(200)
  const decision = res.json()
  expect(decision.allowed, res.body).toBe(true)
  return decision as { usage_id: string; experiments: { variant: string }[] }
}

async function results(sub: Sub, id: string): Promise<ResultsBody> {
  const res = await t.request({ url: `/api/subscriptions/${sub.id}/experiments/${id}/results`, key: sub.key })
  expect(res.statusCode, res.body).toBe(200)
  return res.json()
}

/** The metric and interval of each variant, and Welch's test of the second against the first, recomputed. */
function expectMeanMetric(body: ResultsBody, values: [number[], number[]]) {
  values.forEach((list, i) => {
    const expected = referenceMean(list)
    const metric = body.variants[i]?.metric
    expect(metric?.sample_size).toBe(list.length)
    expect(metric?.value).toBeCloseTo(expected.mean, 9)
    expect(metric?.interval?.low).toBeCloseTo(expected.low, 6)
    expect(metric?.interval?.high).toBeCloseTo(expected.high, 6)
  })
  const expected = referenceWelch(values[0], values[1])
  const comparison = body.variants[1]?.comparison
  expect(comparison?.difference).toBeCloseTo(expected.difference, 9)
  expect(comparison?.statistic).toBeCloseTo(expected.t, 9)
  expect(comparison?.degrees_of_freedom).toBeCloseTo(expected.df, 6)
  expect(comparison?.p_value).toBeCloseTo(expected.p, 9)
  expect(comparison?.interval.low).toBeCloseTo(expected.low, 6)
  expect(comparison?.interval.high).toBeCloseTo(expected.high, 6)
  return expected
}

/** Pearson's X² of a two-way split against 50/50, written out. */
function evenSplitChiSquare(a: number, b: number): number {
  const expected = (a + b) / 2
  return ((a - expected) ** 2 + (b - expected) ** 2) / expected
}

describe("experiment results against a recomputation from the generated data", () => {
  it("tokens per turn: the metric, its interval and Welch's test match, and with 100+ people each the leaner variant wins", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const id = await startExperiment(sub, "tokens_per_turn", [
      { name: "control", weight: 1 },
      { name: "lean", weight: 1, label: "short prompt" },
    ])
    const random = stream(5)
    const perTurn: [number[], number[]] = [[], []]
    const raw = [0, 0]
    const turns = [0, 0]
    // People arrive until each variant has 105: the backend applies the label, and the lean variant's
    // turns use about 60 fewer tokens.
    for (let n = 0; Math.min(perTurn[0].length, perTurn[1].length) < 105; n++) {
      const user = `tpt-${n}`
      const variant = assignVariant(id, `i:api:${user}`, [1, 1])
      const count = 1 + Math.floor(random() * 2)
      let tokens = 0
      for (let k = 0; k < count; k++) {
        const estimate = Math.round((variant === 0 ? 500 : 440) - 80 + random() * 160)
        const decision = await turn(sub, user, { estimated_tokens: estimate })
        expect(decision.experiments[0]?.variant).toBe(variant === 0 ? "control" : "lean")
        tokens += estimate
      }
      perTurn[variant]?.push(tokens / count)
      raw[variant] = (raw[variant] ?? 0) + tokens
      turns[variant] = (turns[variant] ?? 0) + count
    }
    const body = await results(sub, id)
    expect(body.metric_available).toBe(true)
    expect(body.variants.map((v) => v.people)).toEqual(perTurn.map((list) => list.length))
    expect(body.variants.map((v) => v.turns)).toEqual(turns)
    expect(body.variants.map((v) => v.raw_tokens)).toEqual(raw)
    const welch = expectMeanMetric(body, perTurn)

    // The verdict's rule applied here to the recomputed figures: no mismatch, 100 people each, p < 0.05.
    const chiSquare = evenSplitChiSquare(perTurn[0].length, perTurn[1].length)
    expect(body.sample_ratio.chi_square).toBeCloseTo(chiSquare, 9)
    expect(body.sample_ratio.p_value).toBeCloseTo(referenceChiSquareP(chiSquare, 1), 9)
    expect(referenceChiSquareP(chiSquare, 1) >= 0.001 && welch.p < 0.05 && welch.difference < 0).toBe(true)
    expect(body.verdict.decided).toBe(true)
    expect(body.verdict.winner).toBe("lean")
    expect(body.verdict.text).toMatch(/^lean beats control on tokens per turn/)
  })

  it("a split the weights do not explain withholds the verdict end to end, however clear the difference", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const id = await startExperiment(sub, "tokens_per_turn", [
      { name: "control", weight: 1 },
      { name: "lean", weight: 1 },
    ])
    // A broken integration: the experiment sees 200 of the control's people but only 100 of lean's.
    const wanted = [200, 100]
    const perTurn: [number[], number[]] = [[], []]
    const random = stream(6)
    for (let n = 0; perTurn[0].length < 200 || perTurn[1].length < 100; n++) {
      const user = `srm-${n}`
      const variant = assignVariant(id, `i:api:${user}`, [1, 1])
      if ((perTurn[variant]?.length ?? 0) >= (wanted[variant] ?? 0)) continue
      const estimate = Math.round((variant === 0 ? 500 : 300) + random() * 100)
      await turn(sub, user, { estimated_tokens: estimate })
      perTurn[variant]?.push(estimate)
    }
    const body = await results(sub, id)
    const chiSquare = evenSplitChiSquare(200, 100)
    expect(body.sample_ratio.chi_square).toBeCloseTo(chiSquare, 9)
    const p = referenceChiSquareP(chiSquare, 1)
    expect(p).toBeLessThan(0.001)
    // p is 7.7e-9: compared relatively, the tails' subtraction from 1 leaves a few digits in either.
    expect(Math.abs(body.sample_ratio.p_value / p - 1)).toBeLessThan(1e-4)
    expect(body.sample_ratio.mismatch).toBe(true)
    // Every other condition of a verdict holds.
    expect(referenceWelch(perTurn[0], perTurn[1]).p).toBeLessThan(0.05)
    expect(body.variants[1]?.comparison?.significant).toBe(true)
    expect(body.verdict.decided).toBe(false)
    expect(body.verdict.winner).toBeNull()
    expect(body.verdict.text).toContain("the people are not split as the weights say")
  })

  it("average sentiment: the mean of each person's scored turns, unavailable until a turn is scored", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const id = await startExperiment(sub, "sentiment_avg", [
      { name: "control", weight: 1 },
      { name: "warm", weight: 1, label: "friendlier prompt" },
    ])
    const people = [0, 0]
    const early = assignVariant(id, "i:api:early", [1, 1])
    people[early] = 1
    await turn(sub, "early")
    const before = await results(sub, id)
    expect(before.metric_available).toBe(false)
    expect(before.variants.map((v) => v.metric.value)).toEqual([null, null])
    expect(before.verdict.text).toContain("the average sentiment needs turns with a sentiment")

    const random = stream(7)
    const scores: [number[], number[]] = [[], []]
    for (let n = 0; n < 70; n++) {
      const user = `sent-${n}`
      const variant = assignVariant(id, `i:api:${user}`, [1, 1])
      people[variant] = (people[variant] ?? 0) + 1
      const own: number[] = []
      for (let k = 0; k < 1 + Math.floor(random() * 3); k++) {
        // One turn in five has no score: it is left out of the person's mean.
        if (random() < 0.2) {
          await turn(sub, user)
          continue
        }
        const score =
          Math.round(Math.max(-1, Math.min(1, (variant === 0 ? -0.1 : 0.25) + random() - 0.5)) * 1e4) / 1e4
        await turn(sub, user, { sentiment: score })
        own.push(score)
      }
      if (own.length > 0) scores[variant]?.push(own.reduce((a, b) => a + b, 0) / own.length)
    }
    const body = await results(sub, id)
    expect(body.metric_available).toBe(true)
    expect(body.variants.map((v) => v.people)).toEqual(people)
    expectMeanMetric(body, scores)
    expect(body.verdict.text).toContain("at least 100 people measured on average sentiment")
  })

  it("average CSAT: the mean of the ratings of each person's turns and sessions", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const id = await startExperiment(sub, "csat_avg", [
      { name: "control", weight: 1 },
      { name: "kind", weight: 1 },
    ])
    const random = stream(8)
    const ratings: [number[], number[]] = [[], []]
    let asked = 0
    for (let n = 0; n < 70; n++) {
      const user = `csat-${n}`
      const session = `session-${n}`
      const variant = assignVariant(id, `i:api:${user}`, [1, 1])
      const own: number[] = []
      const rate = async (payload: Record<string, unknown>) => {
        const csat = Math.min(5, 1 + variant + Math.floor(random() * 4))
        asked += 1
        const res = await t.request({
          method: "POST",
          url: "/api/feedback",
          key: sub.key,
          payload: { ...payload, csat, idempotency_key: `csat-${asked}` },
        })
        expect(res.statusCode, res.body).toBe(201)
        own.push(csat)
      }
      for (let k = 0; k < 1 + Math.floor(random() * 2); k++) {
        const decision = await turn(sub, user, { session_id: session })
        if (random() < 0.5) await rate({ usage_id: decision.usage_id })
      }
      if (random() < 0.4) await rate({ session_id: session, channel: "api" })
      if (own.length > 0) ratings[variant]?.push(own.reduce((a, b) => a + b, 0) / own.length)
    }
    const body = await results(sub, id)
    expect(body.metric_available).toBe(true)
    expectMeanMetric(body, ratings)
  })

  it("cost per conversion: total cost over converted people, with the linearised variance and the z-test of the two ratios", async () => {
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const model = `omni-exp-${Math.random().toString(36).slice(2, 8)}`
    const price = await t.request({
      method: "PUT",
      url: `/api/prices/${model}`,
      payload: { input_per_million: "1.5", output_per_million: "6", effective_from: "2026-01-01T00:00:00Z" },
    })
    expect(price.statusCode, price.body).toBe(200)
    const id = await startExperiment(sub, "cost_per_conversion", [
      { name: "control", weight: 1 },
      { name: "cheap", weight: 1, label: "smaller model" },
    ])
    const random = stream(9)
    const people: { user: string; variant: number; micros: number; converted: boolean }[] = []
    for (let n = 0; n < 70; n++) {
      const user = `cost-${n}`
      const variant = assignVariant(id, `i:api:${user}`, [1, 1])
      let micros = 0
      for (let k = 0; k < 1 + Math.floor(random() * 2); k++) {
        const decision = await turn(sub, user, { model })
        const input = Math.floor(random() * 4000)
        const output = Math.floor(random() * (variant === 0 ? 2000 : 1200))
        const settled = await t.request({
          method: "POST",
          url: "/api/tokens/settle",
          key: sub.key,
          payload: { usage_id: decision.usage_id, input_tokens: input, output_tokens: output },
        })
        expect(settled.statusCode, settled.body).toBe(200)
        // 1.5 and 6 per million tokens: micro-units per token.
        micros += input * 1.5 + output * 6
      }
      people.push({ user, variant, micros, converted: false })
    }
    const before = await results(sub, id)
    expect(before.metric_available).toBe(false)
    expect(before.verdict.text).toContain("the cost per conversion needs people who converted")

    for (const person of people) {
      if (random() >= 0.35) continue
      clock.advance(1000)
      const res = await t.request({
        method: "POST",
        url: "/api/outcomes",
        key: sub.key,
        payload: {
          name: "purchase",
          user_identifier: person.user,
          channel: "api",
          idempotency_key: `buy-${person.user}`,
        },
      })
      expect(res.statusCode, res.body).toBe(201)
      person.converted = true
    }
    const body = await results(sub, id)
    expect(body.metric_available).toBe(true)
    const z95 = referenceCritical(0.95)
    const ratios = [0, 1].map((variant) => {
      const group = people.filter((person) => person.variant === variant)
      const expected = referenceRatio(
        group.map((person) => person.micros / 1e6),
        group.map((person) => (person.converted ? 1 : 0)),
      )
      const figures = body.variants[variant]
      expect(figures?.conversions).toBe(group.filter((person) => person.converted).length)
      expect(figures?.cost_micros).toBeCloseTo(
        group.reduce((sum, person) => sum + person.micros, 0),
        6,
      )
      expect(figures?.metric.sample_size).toBe(group.length)
      expect(figures?.metric.value).toBeCloseTo(expected.ratio, 9)
      const half = z95 * Math.sqrt(expected.variance)
      expect(figures?.metric.interval?.low).toBeCloseTo(Math.max(0, expected.ratio - half), 9)
      expect(figures?.metric.interval?.high).toBeCloseTo(expected.ratio + half, 9)
      return expected
    })
    const [a, b] = ratios as [(typeof ratios)[0], (typeof ratios)[0]]
    const se = Math.sqrt(a.variance + b.variance)
    const comparison = body.variants[1]?.comparison
    expect(comparison?.difference).toBeCloseTo(b.ratio - a.ratio, 9)
    expect(comparison?.statistic).toBeCloseTo((b.ratio - a.ratio) / se, 9)
    expect(comparison?.p_value).toBeCloseTo(referenceNormalP((b.ratio - a.ratio) / se), 9)
    expect(comparison?.interval.high).toBeCloseTo(b.ratio - a.ratio + z95 * se, 9)
  })

  it("counts a person linked mid-experiment, all their turns, in their person's variant, not the one that served the earlier turns", async () => {
    // The ledger does not record which variant served a turn: results assign each person by the hash of
    // their key as linked when the results are read (README: link identifiers before starting).
    const sub = await t.subscription({ token_limit: 100_000_000 })
    const id = await startExperiment(sub, "tokens_per_turn", [
      { name: "a", weight: 1 },
      { name: "b", weight: 1 },
    ])
    let n = 0
    while (assignVariant(id, `i:api:mover-${n}`, [1, 1]) === assignVariant(id, `p:crm-${n}`, [1, 1])) n += 1
    const [user, personId] = [`mover-${n}`, `crm-${n}`]
    const served = (await turn(sub, user, { estimated_tokens: 300 })).experiments[0]?.variant
    const linked = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/people/${personId}`,
      key: sub.key,
      payload: { identifiers: [{ channel: "api", user_identifier: user }] },
    })
    expect(linked.statusCode, linked.body).toBe(200)
    const now = (await turn(sub, user, { estimated_tokens: 500 })).experiments[0]?.variant
    expect(now).not.toBe(served)
    const body = await results(sub, id)
    const of = (name: string | undefined) => body.variants.find((variant) => variant.name === name)
    expect(of(now)).toMatchObject({ people: 1, turns: 2, raw_tokens: 800 })
    expect(of(served)).toMatchObject({ people: 0, turns: 0, raw_tokens: 0 })
  })
})
