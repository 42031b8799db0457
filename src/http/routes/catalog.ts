/** The public catalogs: supported channels with their defaults, and plans. */
import { hundredthsToMultiplier } from "../../core/billing.js"
import { CHANNEL_DEFINITIONS, CHANNELS } from "../../core/channels.js"
import { cheapestPlanIncluding, PLAN_DEFINITIONS, PLANS, plansIncluding } from "../../core/plans.js"
import { ChannelCatalogSchema, PlanCatalogSchema } from "../schemas.js"
import type { RouteModule } from "../types.js"

const channels = {
  channels: CHANNELS.map((channel) => {
    const definition = CHANNEL_DEFINITIONS[channel]
    return {
      channel,
      label: definition.label,
      plans: plansIncluding(channel),
      cheapest_plan: cheapestPlanIncluding(channel),
      length_limit_source: definition.lengthLimitSource,
      defaults: {
        requests_per_minute: definition.defaults.requestsPerMinute,
        tokens_per_minute: definition.defaults.tokensPerMinute,
        max_message_length: definition.defaults.maxMessageLength,
        token_multiplier: hundredthsToMultiplier(definition.defaults.multiplierHundredths),
        priority: definition.defaults.priority,
      },
    }
  }),
}

const plans = {
  plans: PLANS.map((plan) => ({
    plan,
    label: PLAN_DEFINITIONS[plan].label,
    channels: [...PLAN_DEFINITIONS[plan].channels],
    default_token_limit: PLAN_DEFINITIONS[plan].defaultTokenLimit,
  })),
}

export const catalogRoutes: RouteModule = (app) => {
  app.get(
    "/api/onboarding/channels",
    {
      schema: {
        operationId: "listChannels",
        tags: ["catalog"],
        summary: "Supported channels, their defaults, and which plans include each (public)",
        response: { 200: ChannelCatalogSchema },
      },
    },
    async () => channels,
  )
  app.get(
    "/api/plans",
    {
      schema: {
        operationId: "listPlans",
        tags: ["catalog"],
        summary: "Plans, their channels and default token limits (public)",
        response: { 200: PlanCatalogSchema },
      },
    },
    async () => plans,
  )
}
