/**
 * Experiments on channels (issue 15): the pure part. A running experiment splits the people of its
 * channels between its variants by weight; a variant may override some of the channel's settings for the
 * turns of its people, and carries a free label the chat backend applies itself (a prompt, a model).
 *
 * Assignment is a function of the experiment id and the person key only (no state, no randomness): the same
 * person gets the same variant on every instance, after every restart, and in the results, which recompute
 * it when they are read.
 */
import type { Channel, ChannelSettings } from "./channels.js"
import type { ChannelOverrides } from "./decision.js"

export const EXPERIMENT_STATUSES = ["draft", "running", "stopped"] as const
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number]

export const EXPERIMENT_METRICS = [
  "conversion_rate",
  "tokens_per_turn",
  "cost_per_conversion",
  "sentiment_avg",
  "csat_avg",
] as const
export type ExperimentMetric = (typeof EXPERIMENT_METRICS)[number]

/** The channel settings a variant may override (never `enabled`: a variant cannot open a channel). */
export type VariantOverrides = Partial<Omit<ChannelSettings, "enabled">>

export interface Variant {
  name: string
  weight: number
  overrides: VariantOverrides
  label: string | null
}

export interface Experiment {
  id: string
  subscriptionId: string
  name: string
  channels: Channel[]
  variants: Variant[]
  primaryMetric: ExperimentMetric
  status: ExperimentStatus
  createdAt: Date
  updatedAt: Date
  startedAt: Date | null
  stoppedAt: Date | null
}

/** What a decision says about the experiments its turn is in. */
export interface ExperimentAssignment {
  id: string
  variant: string
  label: string | null
}

/**
 * The person key a turn is assigned by: the linked person's id, else the identifier itself on its channel
 * (an unlinked identifier is a person of its own). The prefixes keep the two kinds apart.
 */
export function personKey(
  personId: string | null | undefined,
  channel: Channel,
  userIdentifier: string,
): string {
  return personId ? `p:${personId}` : `i:${channel}:${userIdentifier}`
}

/**
 * cyrb53 (a public-domain 53-bit string hash by bryc): two 32-bit multiply-xorshift lanes, well mixed, fast
 * in JavaScript, and an exact integer below 2^53, so the bucket below is uniform to 2^-53.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed
  let h2 = 0x41c6ce57 ^ seed
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507)
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507)
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return 4294967296 * (2097151 & h2) + (h1 >>> 0)
}

/**
 * The variant index of `person` in the experiment: u = hash53(id + person) / 2^53 is uniform on [0, 1);
 * the variant is the first whose cumulative weight share exceeds u. Variants of weight 0 get nobody.
 */
export function assignVariant(experimentId: string, person: string, weights: readonly number[]): number {
  const total = weights.reduce((sum, weight) => sum + weight, 0)
  const u = hash53(`${experimentId}\u0000${person}`) / 2 ** 53
  let cumulative = 0
  for (let i = 0; i < weights.length; i++) {
    cumulative += (weights[i] ?? 0) / total
    if (u < cumulative) return i
  }
  // Rounding may leave the last sliver of [0, 1) past the sum: it belongs to the last weighted variant.
  for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] ?? 0) > 0) return i
  return 0
}

/** The channel overrides with a variant's on top: what the turn's settings are resolved from. */
export function withVariantOverrides(
  overrides: ChannelOverrides | undefined,
  variant: VariantOverrides,
): ChannelOverrides {
  // On every turn of a running experiment: a variant without overrides copies nothing.
  let merged: ChannelOverrides | undefined
  for (const key in variant) {
    const value = variant[key as keyof VariantOverrides]
    if (value === undefined) continue
    merged ??= { ...overrides }
    merged[key as keyof VariantOverrides] = value
  }
  return merged ?? overrides ?? {}
}

/** Whether a rate metric (people who converted / people) or a mean of per-person values. */
export function isRateMetric(metric: ExperimentMetric): boolean {
  return metric === "conversion_rate"
}

/**
 * Fewest people per variant before a verdict is given: below it the normal approximations behind the
 * z- and t-tests are unreliable and early peeking inflates false positives. 100 people per variant.
 */
export const MIN_PEOPLE_PER_VARIANT = 100
