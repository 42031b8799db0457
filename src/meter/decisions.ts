import type { Channel } from "../core/channels.js"
import type { Denial } from "../core/decision.js"
import type { ExperimentAssignment } from "../core/experiments.js"
import type { RateLimitState } from "../limits/rate-limiter.js"

/** A turn that may run: it has been charged and written to the ledger before this is returned. */
export interface AllowedDecision {
  allowed: true
  usageId: string
  subscriptionId: string
  channel: Channel
  /** The channel's token multiplier, e.g. 1.2. */
  multiplier: number
  /** The estimate the turn was charged for, before the multiplier. */
  rawTokens: number
  /** `ceil(rawTokens * multiplier)`: what counts against the quota. */
  billedTokens: number
  remainingTokens: number
  tokenLimit: number
  periodStart: Date
  periodEnd: Date
  /** The channel's priority, 1 (lowest) to 10, for the caller's scheduling. */
  priority: number
  /** True when this answers a repeated idempotency key: nothing was charged this time. */
  replayed: boolean
  rateLimit?: RateLimitState
  /** The running experiments the turn is in, with its variant (issue 15); absent when in none. */
  experiments?: ExperimentAssignment[]
}

/** A turn that may not run, with why: a value, not an exception. */
export interface DeniedDecision extends Denial {
  allowed: false
  channel: Channel
  subscriptionId?: string
  rateLimit?: RateLimitState
  /** The running experiments the turn is in, with its variant (issue 15); absent when in none. */
  experiments?: ExperimentAssignment[]
}

export type Decision = AllowedDecision | DeniedDecision

/** The outcome of settling a turn. */
export interface SettleResult {
  usageId: string
  subscriptionId: string
  channel: Channel
  actualTokens: number
  /** Billed tokens before and after settlement. */
  previousBilledTokens: number
  billedTokens: number
  /** `billedTokens - previousBilledTokens`: negative is a refund. */
  adjustment: number
  remainingTokens: number
  /**
   * Tokens the period is now over its limit by. Settlement records what the LLM really used even when the
   * estimate was short; the next turn is then denied until the period ends or the limit is raised.
   */
  overageTokens: number
  /** The model the turn was priced for (sent at settle, else at consume); null when none was named. */
  model: string | null
  /**
   * The turn's money cost in `currency`, an exact decimal string of the major unit ("0.00231"); null when
   * it is unpriced (no model, no input/output split, or no price for the model at the turn's time).
   */
  cost: string | null
  currency: string
}

/** A subscription's quota in its current billing period. */
export interface QuotaStatus {
  subscriptionId: string
  periodStart: Date
  periodEnd: Date
  tokenLimit: number
  usedTokens: number
  remainingTokens: number
}

/** A channel's effective configuration for one subscription. */
export interface ChannelConfig {
  channel: Channel
  /** Whether the subscription's plan includes the channel. */
  inPlan: boolean
  /** The cheapest plan that includes the channel, when this one does not. */
  requiredPlan?: string
  enabled: boolean
  requestsPerMinute: number
  tokensPerMinute: number
  maxMessageLength: number
  tokenMultiplier: number
  priority: number
  /** The fields set for this subscription rather than inherited from the channel defaults. */
  overridden: string[]
}
