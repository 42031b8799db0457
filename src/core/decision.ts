/**
 * The pure part of a metering decision: everything that can be decided from the subscription and its channel
 * settings without touching shared state. Rate limits and quota are decided atomically by the limiter and the
 * ledger; their denials are built here too, so every denial reads the same.
 */
import { CHANNEL_DEFINITIONS, type Channel, type ChannelSettings } from "./channels.js"
import { cheapestPlanIncluding, PLAN_DEFINITIONS, type Plan, planIncludes } from "./plans.js"

/** Why a turn may not run: a closed set. */
export const DENIAL_REASONS = [
  "subscription_not_found",
  "subscription_inactive",
  "channel_not_in_plan",
  "channel_disabled",
  "message_too_long",
  "turn_too_large",
  "rate_limited",
  "quota_exceeded",
  "capacity_shed",
] as const

export type DenialReason = (typeof DENIAL_REASONS)[number]

/**
 * What a denied ledger row may record: every denial reason, and `quota_reserved` for a `quota_exceeded`
 * decision that only the quota reserve caused (so analytics can tell the reserve's work apart).
 */
export const LEDGER_DENIAL_REASONS = [...DENIAL_REASONS, "quota_reserved"] as const
export type LedgerDenialReason = (typeof LEDGER_DENIAL_REASONS)[number]

/** Which shared capacity shed a turn: its subscription's, or the whole deployment's. */
export type CapacityScope = "subscription" | "operator"

export const SUBSCRIPTION_STATUSES = ["active", "suspended", "cancelled"] as const
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number]

/** A denial with its human message and the facts that explain it. */
export interface Denial {
  reason: DenialReason
  message: string
  /** For `channel_not_in_plan`: the cheapest plan that includes the channel. */
  requiredPlan?: Plan
  /** For `message_too_long`: the limit and what was sent. */
  maxMessageLength?: number
  messageLength?: number
  /** For `rate_limited`: when a retry can succeed, and which limit was hit (also for `turn_too_large`). */
  retryAfterMs?: number
  limit?: "requests_per_minute" | "tokens_per_minute"
  /** For `turn_too_large`: the channel's tokens-per-minute limit the estimate alone exceeds. */
  tokensPerMinute?: number
  /** For `quota_exceeded`: what is left in the period (for this turn's priority, when `reserved`). */
  remainingTokens?: number
  /** For `quota_exceeded`: true when the turn fits the quota but not without the high-priority reserve. */
  reserved?: boolean
  /** For `capacity_shed`: whose shared capacity shed the turn. */
  capacity?: CapacityScope
  /** For `capacity_shed`: the priority being shed (this turn's channel's). */
  shedPriority?: number
  /** For `capacity_shed` and a `reserved` `quota_exceeded`: the channel's priority, 1 to 10. */
  priority?: number
  /** For `capacity_shed`: the percent of the shared capacity this priority may fill. */
  admitPercent?: number
  /** For `subscription_inactive`. */
  status?: SubscriptionStatus
}

/** Per-channel overrides as stored: `undefined`/`null` means "use the default". */
export type ChannelOverrides = { [K in keyof ChannelSettings]?: ChannelSettings[K] | null }

/**
 * Effective settings of `channel` for a subscription on `plan`: defaults, then overrides. A channel outside
 * the plan is never enabled, whatever the overrides say.
 */
export function resolveChannelSettings(
  plan: Plan,
  channel: Channel,
  overrides?: ChannelOverrides,
): ChannelSettings {
  const defaults = CHANNEL_DEFINITIONS[channel].defaults
  const inPlan = planIncludes(plan, channel)
  return {
    enabled: inPlan && (overrides?.enabled ?? true),
    requestsPerMinute: overrides?.requestsPerMinute ?? defaults.requestsPerMinute,
    tokensPerMinute: overrides?.tokensPerMinute ?? defaults.tokensPerMinute,
    maxMessageLength: overrides?.maxMessageLength ?? defaults.maxMessageLength,
    multiplierHundredths: overrides?.multiplierHundredths ?? defaults.multiplierHundredths,
    priority: overrides?.priority ?? defaults.priority,
  }
}

/** Message length as people and the platforms count it: Unicode code points, so an emoji is one. */
export function messageLengthOf(message: string): number {
  let length = 0
  for (const _ of message) length += 1
  return length
}

export interface PreflightInput {
  plan: Plan
  status: SubscriptionStatus
  channel: Channel
  settings: ChannelSettings
  messageLength?: number | undefined
  /** The turn's estimate as the rate limiter counts it (raw tokens, before the multiplier). */
  estimatedTokens?: number
}

/**
 * The checks that need no shared state, in the order the product promises: status, plan, enabled, length,
 * and whether the estimate could ever fit the channel's tokens-per-minute window. Returns the first denial,
 * or undefined when the turn may go on to the rate limit and quota.
 */
export function preflight(input: PreflightInput): Denial | undefined {
  if (input.status !== "active") return subscriptionInactive(input.status)
  if (!planIncludes(input.plan, input.channel)) return channelNotInPlan(input.plan, input.channel)
  if (!input.settings.enabled) return channelDisabled(input.channel)
  if (input.messageLength !== undefined && input.messageLength > input.settings.maxMessageLength) {
    return messageTooLong(input.channel, input.messageLength, input.settings.maxMessageLength)
  }
  // Decided here, not by the limiter: an empty window would deny it too, and "retry in 60 s" would be a lie.
  if (input.estimatedTokens !== undefined && input.estimatedTokens > input.settings.tokensPerMinute) {
    return turnTooLarge(input.channel, input.estimatedTokens, input.settings.tokensPerMinute)
  }
  return undefined
}

export function subscriptionNotFound(): Denial {
  return { reason: "subscription_not_found", message: "No subscription exists for this entity." }
}

export function subscriptionInactive(status: SubscriptionStatus): Denial {
  return {
    reason: "subscription_inactive",
    status,
    message: `The subscription is ${status}; only active subscriptions can use tokens.`,
  }
}

export function channelNotInPlan(plan: Plan, channel: Channel): Denial {
  const requiredPlan = cheapestPlanIncluding(channel)
  return {
    reason: "channel_not_in_plan",
    requiredPlan,
    message: `The ${PLAN_DEFINITIONS[plan].label} plan does not include ${CHANNEL_DEFINITIONS[channel].label}; upgrade to ${PLAN_DEFINITIONS[requiredPlan].label} to unlock it.`,
  }
}

export function channelDisabled(channel: Channel): Denial {
  return {
    reason: "channel_disabled",
    message: `${CHANNEL_DEFINITIONS[channel].label} is disabled for this subscription.`,
  }
}

export function messageTooLong(channel: Channel, messageLength: number, maxMessageLength: number): Denial {
  return {
    reason: "message_too_long",
    messageLength,
    maxMessageLength,
    message: `The message is ${messageLength} characters; ${CHANNEL_DEFINITIONS[channel].label} accepts at most ${maxMessageLength}.`,
  }
}

/** A turn whose estimate alone exceeds the channel's tokens per minute: no wait makes it pass. */
export function turnTooLarge(channel: Channel, estimatedTokens: number, tokensPerMinute: number): Denial {
  return {
    reason: "turn_too_large",
    limit: "tokens_per_minute",
    tokensPerMinute,
    message: `This turn's estimate of ${estimatedTokens} tokens exceeds the ${CHANNEL_DEFINITIONS[channel].label} tokens-per-minute limit of ${tokensPerMinute}, so it can never pass; retrying will not help. Lower the estimate or raise the channel's tokens_per_minute.`,
  }
}

/**
 * A turn whose estimate alone exceeds what its priority may fill of a shared capacity: no wait makes it
 * pass, so it is not shed with a retry time.
 */
export function turnTooLargeForCapacity(
  capacity: CapacityScope,
  estimatedTokens: number,
  threshold: number,
  priority: number,
): Denial {
  const whose = capacity === "subscription" ? "subscription's" : "deployment's"
  return {
    reason: "turn_too_large",
    limit: "tokens_per_minute",
    tokensPerMinute: threshold,
    capacity,
    priority,
    message: `This turn's estimate of ${estimatedTokens} tokens exceeds the ${threshold} tokens per minute that priority ${priority} may fill of the ${whose} shared capacity, so it can never pass; retrying will not help. Lower the estimate, raise the channel's priority or the capacity.`,
  }
}

export function rateLimited(
  channel: Channel,
  limit: "requests_per_minute" | "tokens_per_minute",
  retryAfterMs: number,
): Denial {
  const what = limit === "requests_per_minute" ? "requests" : "tokens"
  return {
    reason: "rate_limited",
    limit,
    retryAfterMs,
    message: `The ${CHANNEL_DEFINITIONS[channel].label} ${what}-per-minute limit is reached; retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
  }
}

/**
 * A turn shed because the shared capacity's window is past what its channel's priority may fill.
 * `retryAfterMs` is when enough of the window has passed for the turn to fit its priority's threshold.
 */
export function capacityShed(
  channel: Channel,
  capacity: CapacityScope,
  limit: "requests_per_minute" | "tokens_per_minute",
  priority: number,
  admitPercent: number,
  retryAfterMs: number,
): Denial {
  const whose = capacity === "subscription" ? "The subscription's shared" : "The deployment's shared"
  const what = limit === "requests_per_minute" ? "requests" : "tokens"
  return {
    reason: "capacity_shed",
    capacity,
    limit,
    shedPriority: priority,
    priority,
    admitPercent,
    retryAfterMs,
    message: `${whose} ${what}-per-minute capacity is in use beyond the ${admitPercent}% that priority ${priority} may fill, so ${CHANNEL_DEFINITIONS[channel].label} turns of priority ${priority} are being shed to keep the rest for higher priorities; retry in ${Math.ceil(retryAfterMs / 1000)} s.`,
  }
}

/** A turn that fits the period's quota only by using the reserve kept for higher priorities. */
export function quotaReserved(
  billedTokens: number,
  remainingTokens: number,
  priority: number,
  minPriority: number,
): Denial {
  return {
    reason: "quota_exceeded",
    reserved: true,
    priority,
    remainingTokens,
    message: `This turn needs ${billedTokens} billed tokens; ${remainingTokens} remain for priority ${priority} because the rest of the period's quota is reserved for channels of priority ${minPriority} or more.`,
  }
}

export function quotaExceeded(billedTokens: number, remainingTokens: number): Denial {
  return {
    reason: "quota_exceeded",
    remainingTokens,
    message: `This turn needs ${billedTokens} billed tokens but only ${remainingTokens} remain in the billing period.`,
  }
}
