/**
 * The shapes of the journeys, people and experiments answers (issue 15), inferred from the server's
 * TypeBox schemas with type-only imports (erased at build), like types.ts.
 */
import type { ExperimentBody } from "../../../src/http/routes/experiments.js"
import type { JourneysBody } from "../../../src/http/routes/journeys.js"

export type { ExperimentBody, JourneysBody }
export type Transition = JourneysBody["transitions"][number]
export type JourneyPath = JourneysBody["top_paths"][number]

/** GET /api/subscriptions/{id}/experiments */
export interface ExperimentList {
  experiments: ExperimentBody[]
}

interface Interval {
  low: number
  high: number
}

/** GET .../experiments/{experiment_id}/results (the schema is registered by $id, spelled here). */
export interface ExperimentResultsBody {
  experiment_id: string
  primary_metric: ExperimentBody["primary_metric"]
  metric_available: boolean
  window: { start: string; end: string }
  variants: {
    name: string
    weight: number
    label: string | null
    people: number
    turns: number
    raw_tokens: number
    billed_tokens: number
    cost_micros: number | null
    tokens_per_turn: number | null
    conversions: number | null
    metric: { value: number | null; interval: Interval | null; sample_size: number }
    comparison: {
      difference: number
      interval: Interval
      statistic: number
      p_value: number
      degrees_of_freedom?: number
      significant: boolean
    } | null
  }[]
  sample_ratio: { chi_square: number; p_value: number; mismatch: boolean }
  alpha: number
  min_people_per_variant: number
  verdict: { decided: boolean; winner: string | null; text: string }
}

export type { RecommendationsBody } from "../../../src/http/routes/recommendations.js"
