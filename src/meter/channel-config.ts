/** Channel configuration: each channel's effective settings for a subscription, and partial updates. */
import { hundredthsToMultiplier, multiplierToHundredths } from "../core/billing.js"
import { CHANNELS, type Channel } from "../core/channels.js"
import { type ChannelOverrides, channelNotInPlan, resolveChannelSettings } from "../core/decision.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { cheapestPlanIncluding, planIncludes } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import { validate } from "../core/validate.js"
import { withScope } from "../storage/scoped.js"
import { listChannelOverrides, upsertChannelOverrides } from "../storage/subscriptions.js"
import type { ChannelConfig } from "./decisions.js"
import { type ChannelConfigPatch, ChannelConfigPatchSchema } from "./inputs.js"
import { type ManagementDependencies, requireSubscription } from "./subscriptions.js"

export class ChannelConfigService {
  constructor(private readonly deps: ManagementDependencies) {}

  /** Every channel's effective configuration for the subscription. */
  async list(subscriptionId: string, scope?: TenantScope): Promise<ChannelConfig[]> {
    return withScope(this.deps.database, scope, async (db) => {
      const subscription = await requireSubscription(db, subscriptionId)
      const overrides = await listChannelOverrides(db, subscriptionId)
      return CHANNELS.map((channel) => channelConfig(subscription, channel, overrides[channel]))
    })
  }

  /**
   * Updates some of a channel's settings for one subscription. Enabling a channel the plan lacks throws
   * `channel_not_in_plan` naming the plan that unlocks it.
   */
  async update(
    subscriptionId: string,
    channel: Channel,
    input: ChannelConfigPatch,
    scope?: TenantScope,
  ): Promise<ChannelConfig> {
    if (!CHANNELS.includes(channel)) throw new ValidationError("channel", `unknown channel "${channel}"`)
    const patch = validate(ChannelConfigPatchSchema, input)
    let multiplierHundredths: number | undefined
    if (patch.tokenMultiplier !== undefined) {
      multiplierHundredths = multiplierToHundredths(patch.tokenMultiplier)
      if (multiplierHundredths === undefined)
        throw new ValidationError("token_multiplier", "must have at most two decimals")
    }
    const updated = await withScope(this.deps.database, scope, async (db) => {
      const subscription = await requireSubscription(db, subscriptionId)
      if (patch.enabled === true && !planIncludes(subscription.plan, channel)) {
        const denial = channelNotInPlan(subscription.plan, channel)
        throw new OmnimeterError("channel_not_in_plan", `enabled: ${denial.message}`, {
          field: "enabled",
          requiredPlan: denial.requiredPlan,
        })
      }
      const overrides: ChannelOverrides = {
        ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
        ...(patch.requestsPerMinute !== undefined ? { requestsPerMinute: patch.requestsPerMinute } : {}),
        ...(patch.tokensPerMinute !== undefined ? { tokensPerMinute: patch.tokensPerMinute } : {}),
        ...(patch.maxMessageLength !== undefined ? { maxMessageLength: patch.maxMessageLength } : {}),
        ...(multiplierHundredths !== undefined ? { multiplierHundredths } : {}),
        ...(patch.priority !== undefined ? { priority: patch.priority } : {}),
      }
      await upsertChannelOverrides(db, subscriptionId, channel, overrides, new Date(this.deps.clock.now()))
      const all = await listChannelOverrides(db, subscriptionId)
      return channelConfig(subscription, channel, all[channel])
    })
    // After the commit: a turn reading between an earlier invalidation and the commit would re-cache the old row.
    this.deps.invalidate(subscriptionId)
    return updated
  }
}

/** The API's name of each overridable setting, for `overridden`. */
const OVERRIDE_FIELDS = {
  enabled: "enabled",
  requestsPerMinute: "requests_per_minute",
  tokensPerMinute: "tokens_per_minute",
  maxMessageLength: "max_message_length",
  multiplierHundredths: "token_multiplier",
  priority: "priority",
} as const

function channelConfig(
  subscription: Subscription,
  channel: Channel,
  overrides?: ChannelOverrides,
): ChannelConfig {
  const settings = resolveChannelSettings(subscription.plan, channel, overrides)
  const inPlan = planIncludes(subscription.plan, channel)
  return {
    channel,
    inPlan,
    ...(inPlan ? {} : { requiredPlan: cheapestPlanIncluding(channel) }),
    enabled: settings.enabled,
    requestsPerMinute: settings.requestsPerMinute,
    tokensPerMinute: settings.tokensPerMinute,
    maxMessageLength: settings.maxMessageLength,
    tokenMultiplier: hundredthsToMultiplier(settings.multiplierHundredths),
    priority: settings.priority,
    overridden: Object.entries(OVERRIDE_FIELDS)
      .filter(([key]) => overrides?.[key as keyof ChannelOverrides] != null)
      .map(([, name]) => name),
  }
}
