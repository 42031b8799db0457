/** Library values (camelCase, Dates) to API bodies (snake_case, ISO strings). One function per shape. */
import { DEFAULT_PRIORITY_CURVE } from "../core/capacity.js"
import type { Subscription } from "../core/subscription.js"
import type { ChannelConfig, Decision, QuotaStatus, SettleResult } from "../meter/decisions.js"
import type { DecisionBody, SubscriptionBody } from "./schemas.js"

function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

export function decisionBody(decision: Decision, requestId: string): DecisionBody {
  const rateLimit = decision.rateLimit && {
    limit: decision.rateLimit.limit,
    remaining: decision.rateLimit.remaining,
    reset_ms: Math.max(0, Math.round(decision.rateLimit.resetMs)),
  }
  if (decision.allowed) {
    return defined({
      allowed: true,
      channel: decision.channel,
      subscription_id: decision.subscriptionId,
      usage_id: decision.usageId,
      multiplier: decision.multiplier,
      raw_tokens: decision.rawTokens,
      billed_tokens: decision.billedTokens,
      remaining_tokens: decision.remainingTokens,
      token_limit: decision.tokenLimit,
      period_start: decision.periodStart.toISOString(),
      period_end: decision.periodEnd.toISOString(),
      priority: decision.priority,
      replayed: decision.replayed,
      rate_limit: rateLimit,
      experiments: decision.experiments,
    })
  }
  return defined({
    allowed: false,
    channel: decision.channel,
    subscription_id: decision.subscriptionId,
    reason: decision.reason,
    message: decision.message,
    required_plan: decision.requiredPlan,
    max_message_length: decision.maxMessageLength,
    message_length: decision.messageLength,
    retry_after_ms: decision.retryAfterMs === undefined ? undefined : Math.ceil(decision.retryAfterMs),
    limit: decision.limit,
    tokens_per_minute: decision.tokensPerMinute,
    remaining_tokens: decision.remainingTokens,
    reserved: decision.reserved,
    priority: decision.priority,
    capacity: decision.capacity,
    shed_priority: decision.shedPriority,
    admit_percent: decision.admitPercent,
    status: decision.status,
    rate_limit: rateLimit,
    experiments: decision.experiments,
    error: { code: decision.reason, message: decision.message, request_id: requestId },
  })
}

export function quotaBody(quota: QuotaStatus) {
  return {
    period_start: quota.periodStart.toISOString(),
    period_end: quota.periodEnd.toISOString(),
    token_limit: quota.tokenLimit,
    used_tokens: quota.usedTokens,
    remaining_tokens: quota.remainingTokens,
  }
}

export function subscriptionBody(subscription: Subscription, quota?: QuotaStatus): SubscriptionBody {
  return defined({
    id: subscription.id,
    entity_id: subscription.entityId,
    entity_type: subscription.entityType,
    plan: subscription.plan,
    token_limit: subscription.tokenLimit,
    status: subscription.status,
    timezone: subscription.timezone,
    period_anchor: subscription.periodAnchor.toISOString(),
    created_at: subscription.createdAt.toISOString(),
    updated_at: subscription.updatedAt.toISOString(),
    requests_per_minute: subscription.requestsPerMinute,
    tokens_per_minute: subscription.tokensPerMinute,
    priority_curve: subscription.priorityCurve,
    effective_priority_curve: [...(subscription.priorityCurve ?? DEFAULT_PRIORITY_CURVE)],
    quota_reserve_percent: subscription.quotaReservePercent,
    quota_reserve_min_priority: subscription.quotaReserveMinPriority,
    quota: quota && quotaBody(quota),
  })
}

export function channelConfigBody(config: ChannelConfig) {
  return defined({
    channel: config.channel,
    in_plan: config.inPlan,
    required_plan: config.requiredPlan,
    enabled: config.enabled,
    requests_per_minute: config.requestsPerMinute,
    tokens_per_minute: config.tokensPerMinute,
    max_message_length: config.maxMessageLength,
    token_multiplier: config.tokenMultiplier,
    priority: config.priority,
    overridden: config.overridden,
  })
}

export function settleBody(result: SettleResult) {
  return {
    usage_id: result.usageId,
    subscription_id: result.subscriptionId,
    channel: result.channel,
    actual_tokens: result.actualTokens,
    previous_billed_tokens: result.previousBilledTokens,
    billed_tokens: result.billedTokens,
    adjustment: result.adjustment,
    remaining_tokens: result.remainingTokens,
    overage_tokens: result.overageTokens,
    model: result.model,
    cost: result.cost,
    currency: result.currency,
  }
}
