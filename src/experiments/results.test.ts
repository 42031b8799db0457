/**
 * experimentResults over hand-made people: every metric, interval, difference, p-value and verdict is
 * recomputed here from the people by the textbook formulas written out, with the distributions integrated
 * numerically (test/support/reference-statistics.ts), not with the code's jStat.
 */
import { mean } from "simple-statistics"
import { describe, expect, it } from "vitest"
import {
  referenceChiSquareP,
  referenceCritical,
  referenceMean,
  referenceNormalP,
  referenceRatio,
  referenceWelch,
} from "../../test/support/reference-statistics.js"
import { assignVariant, type Experiment, type ExperimentMetric } from "../core/experiments.js"
import { experimentResults, type PersonFigures } from "./results.js"

const window = { start: new Date("2026-03-01T00:00:00Z"), end: new Date("2026-03-08T00:00:00Z") }

function experiment(metric: ExperimentMetric, names: string[], weights = names.map(() => 1)): Experiment {
  return {
    id: "0190a0b0-0000-7000-8000-0000000000e1",
    subscriptionId: "0190a0b0-0000-7000-8000-0000000000f1",
    name: "hand-made",
    channels: ["website"],
    variants: names.map((name, i) => ({ name, weight: weights[i] ?? 1, overrides: {}, label: null })),
    primaryMetric: metric,
    status: "running",
    createdAt: window.start,
    updatedAt: window.start,
    startedAt: window.start,
    stoppedAt: null,
  }
}

/** A reproducible stream in [0, 1). */
function stream(seed: number) {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state / 2 ** 31
  }
}

const plain: Omit<PersonFigures, "person"> = {
  turns: 1,
  rawTokens: 100,
  billedTokens: 100,
  costMicros: null,
  sentiment: null,
  csat: null,
  converted: null,
}

/**
 * `count` people the hash puts in variant `index`, each made by `make`. The person keys are searched for,
 * so the groups are exactly the sizes asked.
 */
function peopleIn(
  exp: Experiment,
  index: number,
  count: number,
  make: (k: number) => Partial<PersonFigures>,
): PersonFigures[] {
  const weights = exp.variants.map((variant) => variant.weight)
  const people: PersonFigures[] = []
  for (let n = 0; people.length < count; n++) {
    const person = `i:website:v${index}-${n}`
    if (assignVariant(exp.id, person, weights) === index)
      people.push({ ...plain, ...make(people.length), person })
  }
  return people
}

/** Tokens per turn drawn around `centre`: 1-4 turns, each centre +- 80 tokens. */
function tokensAround(random: () => number, centre: number) {
  return () => {
    const turns = 1 + Math.floor(random() * 4)
    let rawTokens = 0
    for (let i = 0; i < turns; i++) rawTokens += Math.round(centre - 80 + random() * 160)
    return { turns, rawTokens, billedTokens: rawTokens }
  }
}

describe("the results of a mean metric (tokens per turn)", () => {
  it("give each variant's mean with its t interval, and Welch's test against the control, as the formulas recomputed here", () => {
    const exp = experiment("tokens_per_turn", ["control", "lean"])
    const random = stream(11)
    const control = peopleIn(exp, 0, 110, tokensAround(random, 500))
    const lean = peopleIn(exp, 1, 105, tokensAround(random, 440))
    const results = experimentResults(exp, [...lean, ...control], window)

    const perTurn = (group: PersonFigures[]) => group.map((p) => p.rawTokens / p.turns)
    const [a, b] = [perTurn(control), perTurn(lean)]
    expect(results.metricAvailable).toBe(true)
    expect(results.variants.map((v) => v.people)).toEqual([110, 105])
    expect(results.variants[1]?.turns).toBe(lean.reduce((sum, p) => sum + p.turns, 0))
    expect(results.variants[1]?.rawTokens).toBe(lean.reduce((sum, p) => sum + p.rawTokens, 0))
    for (const [i, values] of [a, b].entries()) {
      const metric = results.variants[i]?.metric
      expect(metric?.value).toBeCloseTo(mean(values), 9)
      expect(metric?.sampleSize).toBe(values.length)
      expect(metric?.interval?.low).toBeCloseTo(referenceMean(values).low, 6)
      expect(metric?.interval?.high).toBeCloseTo(referenceMean(values).high, 6)
    }
    const expected = referenceWelch(a, b)
    const comparison = results.variants[1]?.comparison
    expect(results.variants[0]?.comparison).toBeNull()
    expect(comparison?.difference).toBeCloseTo(expected.difference, 9)
    expect(comparison?.statistic).toBeCloseTo(expected.t, 9)
    expect(comparison?.degreesOfFreedom).toBeCloseTo(expected.df, 6)
    expect(comparison?.pValue).toBeCloseTo(expected.p, 9)
    expect(comparison?.interval.low).toBeCloseTo(expected.low, 6)
    expect(comparison?.interval.high).toBeCloseTo(expected.high, 6)

    // The verdict's rule, decided here: significant at 0.05, at least 100 people each, fewer tokens better.
    expect(results.alpha).toBe(0.05)
    expect(expected.p < 0.05 && expected.difference < 0).toBe(true)
    expect(results.verdict).toEqual({
      decided: true,
      winner: "lean",
      text: expect.stringMatching(/^lean beats control on tokens per turn: .*95% interval/),
    })
  })

  it("keep the control when the only significant difference is a variant doing worse", () => {
    const exp = experiment("tokens_per_turn", ["control", "verbose"])
    const random = stream(12)
    const control = peopleIn(exp, 0, 104, tokensAround(random, 400))
    const verbose = peopleIn(exp, 1, 112, tokensAround(random, 470))
    const results = experimentResults(exp, [...control, ...verbose], window)
    const perTurn = (group: PersonFigures[]) => group.map((p) => p.rawTokens / p.turns)
    const expected = referenceWelch(perTurn(control), perTurn(verbose))
    expect(expected.p < 0.05 && expected.difference > 0).toBe(true)
    expect(results.variants[1]?.comparison?.significant).toBe(true)
    expect(results.verdict.decided).toBe(true)
    expect(results.verdict.winner).toBe("control")
    expect(results.verdict.text).toBe(
      "control (the control) beats verbose on tokens per turn; keep the control.",
    )
  })

  it("give no verdict below 100 people in a variant, however clear the difference", () => {
    const exp = experiment("tokens_per_turn", ["control", "lean"])
    const random = stream(13)
    const results = experimentResults(
      exp,
      [
        ...peopleIn(exp, 0, 120, tokensAround(random, 500)),
        ...peopleIn(exp, 1, 99, tokensAround(random, 300)),
      ],
      window,
    )
    expect(results.variants[1]?.comparison?.significant).toBe(true)
    expect(results.verdict).toEqual({
      decided: false,
      winner: null,
      text: "No verdict yet: every variant needs at least 100 people measured on tokens per turn; the smallest has 99.",
    })
  })

  it("give no verdict when the people are not split as the weights say (chi-square p < 0.001)", () => {
    const exp = experiment("tokens_per_turn", ["control", "lean"])
    const random = stream(14)
    const results = experimentResults(
      exp,
      [
        ...peopleIn(exp, 0, 200, tokensAround(random, 500)),
        ...peopleIn(exp, 1, 130, tokensAround(random, 300)),
      ],
      window,
    )
    // Expected 165 each: X² = 2 * 35² / 165 with 1 degree of freedom.
    const chiSquare = (2 * 35 ** 2) / 165
    expect(results.sampleRatio.chiSquare).toBeCloseTo(chiSquare, 9)
    expect(results.sampleRatio.pValue).toBeCloseTo(referenceChiSquareP(chiSquare, 1), 9)
    expect(referenceChiSquareP(chiSquare, 1)).toBeLessThan(0.001)
    expect(results.sampleRatio.mismatch).toBe(true)
    expect(results.variants[1]?.comparison?.significant).toBe(true)
    expect(results.verdict.decided).toBe(false)
    expect(results.verdict.text).toContain("the people are not split as the weights say")
  })
})

describe("the results of a conversion rate", () => {
  // 30 of 150 converted in the control, 45 of 150 in b: the pooled rate is 0.25, the standard error
  // sqrt(0.25 * 0.75 * 2/150) = 0.05 and z = 0.1 / 0.05 = 2, p = 0.0455: below 0.05, above 0.025.
  const converting = (share: number) => (k: number) => ({ converted: k < share * 150 })

  it("with three variants, divide alpha by the two comparisons (Bonferroni): p = 0.0455 is not significant, and the interval is at 97.5%", () => {
    const exp = experiment("conversion_rate", ["control", "b", "c"])
    const people = [
      ...peopleIn(exp, 0, 150, converting(0.2)),
      ...peopleIn(exp, 1, 150, converting(0.3)),
      ...peopleIn(exp, 2, 150, converting(0.2)),
    ]
    const results = experimentResults(exp, people, window)
    expect(results.alpha).toBe(0.025)
    expect(results.variants.map((v) => v.conversions)).toEqual([30, 45, 30])
    const b = results.variants[1]?.comparison
    expect(b?.statistic).toBeCloseTo(2, 12)
    expect(b?.pValue).toBeCloseTo(referenceNormalP(2), 9)
    expect(b?.significant).toBe(false)
    // The difference's interval at 1 - 0.025 with the unpooled standard error: it includes 0.
    const se = Math.sqrt((0.2 * 0.8) / 150 + (0.3 * 0.7) / 150)
    expect(b?.interval.low).toBeCloseTo(0.1 - referenceCritical(0.975) * se, 9)
    expect(b?.interval.high).toBeCloseTo(0.1 + referenceCritical(0.975) * se, 9)
    expect(b?.interval.low).toBeLessThan(0)
    expect(results.verdict).toEqual({
      decided: false,
      winner: null,
      text: "No significant difference in conversion rate between the variants yet.",
    })
    // Wilson's interval of the control's 30/150, written out.
    const z = referenceCritical(0.95)
    const centre = (0.2 + (z * z) / 300) / (1 + (z * z) / 150)
    const half = (z * Math.sqrt((0.2 * 0.8) / 150 + (z * z) / (4 * 150 * 150))) / (1 + (z * z) / 150)
    expect(results.variants[0]?.metric.interval?.low).toBeCloseTo(centre - half, 9)
    expect(results.variants[0]?.metric.interval?.high).toBeCloseTo(centre + half, 9)
  })

  it("with two variants, the same b is significant at 0.05, wins, and its 95% interval excludes 0", () => {
    const exp = experiment("conversion_rate", ["control", "b"])
    const results = experimentResults(
      exp,
      [...peopleIn(exp, 0, 150, converting(0.2)), ...peopleIn(exp, 1, 150, converting(0.3))],
      window,
    )
    const se = Math.sqrt((0.2 * 0.8) / 150 + (0.3 * 0.7) / 150)
    expect(results.alpha).toBe(0.05)
    expect(results.variants[1]?.comparison?.significant).toBe(true)
    expect(results.variants[1]?.comparison?.interval.low).toBeCloseTo(0.1 - referenceCritical(0.95) * se, 9)
    expect(results.variants[1]?.comparison?.interval.low).toBeGreaterThan(0)
    expect(results.verdict.winner).toBe("b")
    expect(results.verdict.text).toContain("(difference 0.1000, 95% interval")
  })
})

describe("the results of sentiment and CSAT", () => {
  for (const [metric, field, low, high] of [
    ["sentiment_avg", "sentiment", -1, 1],
    ["csat_avg", "csat", 1, 5],
  ] as const) {
    it(`${metric}: the mean of per-person values, people without one left out, higher is better`, () => {
      const exp = experiment(metric, ["control", "warm"])
      const random = stream(field.length)
      const value = (shift: number) => (k: number) => ({
        [field]:
          k % 10 === 3 ? null : Math.round((low + (high - low) * (0.25 + shift + random() / 2)) * 1e4) / 1e4,
      })
      const control = peopleIn(exp, 0, 125, value(-0.05))
      const warm = peopleIn(exp, 1, 125, value(0.05))
      const results = experimentResults(exp, [...control, ...warm], window)
      const valuesOf = (group: PersonFigures[]) =>
        group.map((p) => p[field]).filter((v): v is number => v !== null)
      const [a, b] = [valuesOf(control), valuesOf(warm)]
      expect(a.length).toBeLessThan(125)
      expect(results.variants.map((v) => v.metric.sampleSize)).toEqual([a.length, b.length])
      expect(results.variants[0]?.metric.value).toBeCloseTo(mean(a), 9)
      expect(results.variants[1]?.metric.interval?.low).toBeCloseTo(referenceMean(b).low, 6)
      const expected = referenceWelch(a, b)
      expect(results.variants[1]?.comparison?.statistic).toBeCloseTo(expected.t, 9)
      expect(results.variants[1]?.comparison?.degreesOfFreedom).toBeCloseTo(expected.df, 6)
      expect(results.variants[1]?.comparison?.pValue).toBeCloseTo(expected.p, 9)
      expect(expected.p < 0.05 && expected.difference > 0).toBe(true)
      expect(results.verdict.winner).toBe("warm")
    })
  }
})

describe("the results of cost per conversion", () => {
  it("are total cost over conversions, with the delta method's variance recomputed as the residuals' variance", () => {
    const exp = experiment("cost_per_conversion", ["control", "cheap"])
    const random = stream(21)
    const person = (scale: number) => (k: number) => ({
      // Some people have no priced turn: their cost is 0.
      costMicros: k % 7 === 0 ? null : Math.round(random() * scale * 1e6),
      converted: random() < 0.3,
    })
    const control = peopleIn(exp, 0, 130, person(2))
    const cheap = peopleIn(exp, 1, 120, person(1.2))
    const results = experimentResults(exp, [...control, ...cheap], window)

    const ratio = (group: PersonFigures[]) => {
      const { ratio: r, variance } = referenceRatio(
        group.map((p) => (p.costMicros ?? 0) / 1e6),
        group.map((p) => (p.converted ? 1 : 0)),
      )
      return { r, variance }
    }
    const [a, b] = [ratio(control), ratio(cheap)]
    const z95 = referenceCritical(0.95)
    for (const [i, expected] of [a, b].entries()) {
      const metric = results.variants[i]?.metric
      expect(metric?.value).toBeCloseTo(expected.r, 9)
      expect(metric?.sampleSize).toBe(i === 0 ? 130 : 120)
      expect(metric?.interval?.low).toBeCloseTo(
        Math.max(0, expected.r - z95 * Math.sqrt(expected.variance)),
        9,
      )
      expect(metric?.interval?.high).toBeCloseTo(expected.r + z95 * Math.sqrt(expected.variance), 9)
    }
    expect(results.variants[0]?.costMicros).toBe(control.reduce((s, p) => s + (p.costMicros ?? 0), 0))
    const se = Math.sqrt(a.variance + b.variance)
    const comparison = results.variants[1]?.comparison
    expect(comparison?.difference).toBeCloseTo(b.r - a.r, 9)
    expect(comparison?.statistic).toBeCloseTo((b.r - a.r) / se, 9)
    expect(comparison?.pValue).toBeCloseTo(referenceNormalP((b.r - a.r) / se), 9)
    expect(comparison?.interval.low).toBeCloseTo(b.r - a.r - z95 * se, 9)
    const decided = referenceNormalP((b.r - a.r) / se) < 0.05
    expect(results.verdict.decided).toBe(decided)
    expect(results.verdict.winner).toBe(decided ? (b.r < a.r ? "cheap" : "control") : null)
  })
})

describe("a metric that cannot be computed", () => {
  it.each([
    ["conversion_rate", {}, "the conversion rate needs recorded outcomes (POST /api/outcomes)"],
    [
      "cost_per_conversion",
      { converted: false, costMicros: 5 },
      "the cost per conversion needs people who converted",
    ],
    ["sentiment_avg", {}, "the average sentiment needs turns with a sentiment"],
    ["csat_avg", {}, "the average CSAT needs CSAT ratings"],
  ] as const)("%s names what it needs, and gives no value or verdict", (metric, figures, text) => {
    const exp = experiment(metric, ["control", "b"])
    const results = experimentResults(
      exp,
      [...peopleIn(exp, 0, 120, () => figures), ...peopleIn(exp, 1, 120, () => figures)],
      window,
    )
    expect(results.metricAvailable).toBe(false)
    expect(results.variants.map((v) => v.metric.value)).toEqual([null, null])
    expect(results.variants.map((v) => v.comparison)).toEqual([null, null])
    expect(results.verdict.decided).toBe(false)
    expect(results.verdict.text.startsWith(`No verdict: ${text}`)).toBe(true)
    expect(results.verdict.text).toMatch(/, and there are none in the window\.$/)
  })
})
