/**
 * An experiment's results: per variant its people, turns, tokens and primary metric with a 95% interval,
 * the difference from the control (the first variant) with its p-value, the sample ratio check and the
 * verdict. Pure: takes per-person figures, assigns each person by the same hash consume uses.
 */
import {
  assignVariant,
  type Experiment,
  type ExperimentMetric,
  MIN_PEOPLE_PER_VARIANT,
} from "../core/experiments.js"
import {
  type Interval,
  meanInterval,
  normalCdf,
  proportionInterval,
  type RatioCheck,
  sampleRatioMismatch,
  summarize,
  type TestResult,
  twoProportionZTest,
  welchTTest,
  zCritical,
} from "../core/statistics.js"

/** One person's figures over the experiment's window, on its channels. */
export interface PersonFigures {
  person: string
  /** Allowed turns. */
  turns: number
  rawTokens: number
  billedTokens: number
  /** Money cost of the person's priced turns, in micro-units of the operator's currency; null: none priced. */
  costMicros: number | null
  /** Mean sentiment of the person's turns (-1 to 1); null: none scored. */
  sentiment: number | null
  /** Mean CSAT (1-5) of the feedback on the person's turns and sessions; null: none. */
  csat: number | null
  /** Whether the person converted in the window; null when outcomes are not known. */
  converted: boolean | null
}

export interface VariantResult {
  name: string
  weight: number
  label: string | null
  people: number
  turns: number
  rawTokens: number
  billedTokens: number
  /** Money cost of the variant's priced turns, micro-units of the operator's currency; null: none priced. */
  costMicros: number | null
  /** rawTokens / turns over the variant; null without turns. */
  tokensPerTurn: number | null
  conversions: number | null
  /** The primary metric (see README "Experiments"), null when it cannot be computed. */
  metric: { value: number | null; interval: Interval | null; sampleSize: number }
  /**
   * Against the control, the difference's interval at 1 - alpha (95% with two variants); null for the
   * control itself and when the test cannot run.
   */
  comparison: (TestResult & { significant: boolean }) | null
}

export interface ExperimentResults {
  experimentId: string
  primaryMetric: ExperimentMetric
  /** Whether the primary metric can be computed from what is recorded. */
  metricAvailable: boolean
  window: { start: Date; end: Date }
  variants: VariantResult[]
  sampleRatio: RatioCheck
  /**
   * The p-value a difference must be below: 0.05, Bonferroni-divided by the number of comparisons; the
   * differences' intervals are at 1 - alpha.
   */
  alpha: number
  minPeoplePerVariant: number
  verdict: { decided: boolean; winner: string | null; text: string }
}

const LOWER_IS_BETTER: Record<ExperimentMetric, boolean> = {
  conversion_rate: false,
  tokens_per_turn: true,
  cost_per_conversion: true,
  sentiment_avg: false,
  csat_avg: false,
}

const METRIC_WORDS: Record<ExperimentMetric, string> = {
  conversion_rate: "conversion rate",
  tokens_per_turn: "tokens per turn",
  cost_per_conversion: "cost per conversion",
  sentiment_avg: "average sentiment",
  csat_avg: "average CSAT",
}

/** What a metric needs beyond the ledger: the unavailable metric's verdict names it. */
const METRIC_NEEDS: Record<ExperimentMetric, string> = {
  conversion_rate: "recorded outcomes (POST /api/outcomes)",
  tokens_per_turn: "allowed turns",
  cost_per_conversion: "people who converted (POST /api/outcomes)",
  sentiment_avg: "turns with a sentiment (a message or a sentiment score at consume)",
  csat_avg: "CSAT ratings of its people's turns or sessions (POST /api/feedback)",
}

/** Whether the metric can be computed from the ledger alone (the others need recorded outcomes). */
export function metricFromLedger(metric: ExperimentMetric): boolean {
  return metric === "tokens_per_turn"
}

/** A person's value of a mean metric (null: the person has none and is left out of the mean). */
function perPersonValue(metric: ExperimentMetric, person: PersonFigures): number | null {
  switch (metric) {
    case "tokens_per_turn":
      return person.turns > 0 ? person.rawTokens / person.turns : null
    case "sentiment_avg":
      return person.sentiment
    case "csat_avg":
      return person.csat
    default:
      return null
  }
}

function metricAvailable(metric: ExperimentMetric, people: readonly PersonFigures[]): boolean {
  switch (metric) {
    case "tokens_per_turn":
      return true
    case "conversion_rate":
      return people.some((person) => person.converted !== null)
    case "cost_per_conversion":
      return people.some((person) => person.converted === true)
    case "sentiment_avg":
      return people.some((person) => person.sentiment !== null)
    case "csat_avg":
      return people.some((person) => person.csat !== null)
  }
}

/**
 * Cost per conversion of a group as a ratio of means, R = mean(cost) / mean(converted), with the delta
 * method's variance Var(R) = (Var(c) - 2R Cov(c, x) + R² Var(x)) / (n mean(x)²) (cost in currency units).
 */
export function costPerConversion(
  group: readonly PersonFigures[],
): { value: number; variance: number; conversions: number } | null {
  const n = group.length
  const costs = group.map((person) => (person.costMicros ?? 0) / 1e6)
  const converted = group.map((person) => (person.converted ? 1 : 0))
  const conversions = converted.reduce((a: number, b) => a + b, 0)
  if (n < 2 || conversions === 0) return null
  const c = summarize(costs)
  const x = summarize(converted)
  let covariance = 0
  for (let i = 0; i < n; i++) covariance += ((costs[i] ?? 0) - c.mean) * ((converted[i] ?? 0) - x.mean)
  covariance /= n - 1
  const ratio = c.mean / x.mean
  const variance = (c.variance - 2 * ratio * covariance + ratio * ratio * x.variance) / (n * x.mean * x.mean)
  return { value: ratio, variance: Math.max(0, variance), conversions }
}

/** The z-test of two delta-method ratios: z = (R2 - R1) / sqrt(V1 + V2); the interval at `confidence`. */
function ratioTest(
  control: { value: number; variance: number },
  treatment: { value: number; variance: number },
  confidence: number,
): TestResult {
  const difference = treatment.value - control.value
  const se = Math.sqrt(control.variance + treatment.variance)
  const half = zCritical(confidence) * se
  const z = se === 0 ? 0 : difference / se
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    statistic: z,
    pValue: se === 0 ? 1 : 2 * (1 - normalCdf(Math.abs(z))),
  }
}

export function experimentResults(
  experiment: Experiment,
  people: readonly PersonFigures[],
  window: { start: Date; end: Date },
): ExperimentResults {
  const weights = experiment.variants.map((variant) => variant.weight)
  const groups = experiment.variants.map(() => [] as PersonFigures[])
  for (const person of people) groups[assignVariant(experiment.id, person.person, weights)]?.push(person)
  const metric = experiment.primaryMetric
  const rate = metric === "conversion_rate"
  const available = metricAvailable(metric, people)
  const alpha = 0.05 / Math.max(1, experiment.variants.length - 1)
  // The differences' intervals at 1 - alpha, so that an interval excludes 0 exactly when p < alpha: with
  // Bonferroni's correction they widen with the number of comparisons, as the p-value's bar is lowered.
  const confidence = 1 - alpha

  const samples = groups.map((group) =>
    summarize(group.map((person) => perPersonValue(metric, person)).filter((v): v is number => v !== null)),
  )
  const conversionsOf = (group: PersonFigures[]) =>
    group.some((person) => person.converted !== null)
      ? group.filter((person) => person.converted === true).length
      : null
  const control = groups[0] ?? []
  const controlConversions = conversionsOf(control) ?? 0

  const variants: VariantResult[] = experiment.variants.map((variant, i) => {
    const group = groups[i] ?? []
    const sample = samples[i] ?? summarize([])
    const turns = group.reduce((sum, person) => sum + person.turns, 0)
    const rawTokens = group.reduce((sum, person) => sum + person.rawTokens, 0)
    const billedTokens = group.reduce((sum, person) => sum + person.billedTokens, 0)
    const conversions = conversionsOf(group)
    let value: number | null = null
    let interval: Interval | null = null
    let comparison: TestResult | null = null
    if (available && metric === "cost_per_conversion") {
      const ratio = costPerConversion(group)
      const controlRatio = costPerConversion(control)
      if (ratio) {
        value = ratio.value
        const half = zCritical() * Math.sqrt(ratio.variance)
        interval = { low: Math.max(0, ratio.value - half), high: ratio.value + half }
        if (i > 0 && controlRatio) comparison = ratioTest(controlRatio, ratio, confidence)
      }
    } else if (available && rate && conversions !== null) {
      value = group.length > 0 ? conversions / group.length : null
      interval = proportionInterval(conversions, group.length)
      if (i > 0)
        comparison = twoProportionZTest(
          controlConversions,
          control.length,
          conversions,
          group.length,
          confidence,
        )
    } else if (available && !rate) {
      value = sample.n > 0 ? sample.mean : null
      interval = meanInterval(sample)
      if (i > 0) comparison = welchTTest(samples[0] ?? summarize([]), sample, confidence)
    }
    return {
      name: variant.name,
      weight: variant.weight,
      label: variant.label,
      people: group.length,
      turns,
      rawTokens,
      billedTokens,
      tokensPerTurn: turns > 0 ? rawTokens / turns : null,
      conversions,
      costMicros: group.some((person) => person.costMicros !== null)
        ? group.reduce((sum, person) => sum + (person.costMicros ?? 0), 0)
        : null,
      metric: {
        value,
        interval,
        sampleSize: rate || metric === "cost_per_conversion" ? group.length : sample.n,
      },
      comparison: comparison && { ...comparison, significant: comparison.pValue < alpha },
    }
  })

  const sampleRatio = sampleRatioMismatch(
    groups.map((group) => group.length),
    weights,
  )
  return {
    experimentId: experiment.id,
    primaryMetric: metric,
    metricAvailable: available,
    window,
    variants,
    sampleRatio,
    alpha,
    minPeoplePerVariant: MIN_PEOPLE_PER_VARIANT,
    verdict: verdictOf(metric, available, variants, sampleRatio, confidence),
  }
}

function verdictOf(
  metric: ExperimentMetric,
  available: boolean,
  variants: VariantResult[],
  sampleRatio: RatioCheck,
  confidence: number,
): ExperimentResults["verdict"] {
  const words = METRIC_WORDS[metric]
  const none = (text: string) => ({ decided: false, winner: null, text })
  if (!available)
    return none(`No verdict: the ${words} needs ${METRIC_NEEDS[metric]}, and there are none in the window.`)
  if (sampleRatio.mismatch)
    return none(
      `No verdict: the people are not split as the weights say (chi-square p = ${sampleRatio.pValue.toExponential(2)}); look for a bug in how traffic reaches the experiment before trusting any difference.`,
    )
  const smallest = Math.min(...variants.map((variant) => variant.metric.sampleSize))
  if (smallest < MIN_PEOPLE_PER_VARIANT)
    return none(
      `No verdict yet: every variant needs at least ${MIN_PEOPLE_PER_VARIANT} people measured on ${words}; the smallest has ${smallest}.`,
    )
  const control = variants[0]
  const better = variants
    .slice(1)
    .filter((variant) => variant.comparison?.significant)
    .filter((variant) => (variant.comparison?.difference ?? 0) < 0 === LOWER_IS_BETTER[metric])
    .sort((a, b) => (a.comparison?.pValue ?? 1) - (b.comparison?.pValue ?? 1))
  const worse = variants
    .slice(1)
    .filter((variant) => variant.comparison?.significant && !better.includes(variant))
  const best = better[0]
  if (best?.comparison && control)
    return {
      decided: true,
      winner: best.name,
      text: `${best.name} beats ${control.name} on ${words}: ${formatNumber(best.metric.value)} against ${formatNumber(control.metric.value)} (difference ${formatNumber(best.comparison.difference)}, ${percent(confidence)} interval ${formatNumber(best.comparison.interval.low)} to ${formatNumber(best.comparison.interval.high)}, p = ${best.comparison.pValue.toPrecision(2)}).`,
    }
  if (worse.length > 0 && control)
    return {
      decided: true,
      winner: control.name,
      text: `${control.name} (the control) beats ${worse.map((variant) => variant.name).join(" and ")} on ${words}; keep the control.`,
    }
  return none(`No significant difference in ${words} between the variants yet.`)
}

/** 0.95 as "95%", 0.975 as "97.5%". */
function percent(confidence: number): string {
  return `${Number((confidence * 100).toFixed(2))}%`
}

function formatNumber(value: number | null): string {
  if (value === null) return "n/a"
  return Math.abs(value) >= 100
    ? value.toFixed(0)
    : Math.abs(value) >= 1
      ? value.toFixed(2)
      : value.toFixed(4)
}
