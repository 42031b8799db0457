/** The public catalogs: supported channels with their defaults, and plans. */
import { hundredthsToMultiplier } from "../../core/billing.js"
import { CHANNEL_DEFINITIONS, CHANNELS } from "../../core/channels.js"
import { cheapestPlanIncluding, PLAN_DEFINITIONS, PLANS, plansIncluding } from "../../core/plans.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
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

const CHANNEL_COLUMNS = csvColumns(ChannelCatalogSchema.properties.channels.items)
const PLAN_COLUMNS = csvColumns(PlanCatalogSchema.properties.plans.items)

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
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per channel (plans joined by spaces).",
        querystring: FormatQuery,
        response: { 200: ChannelCatalogSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) =>
      wantsCsv(request) ? sendCsv(reply, "channels", CHANNEL_COLUMNS, channels.channels) : channels,
  )
  app.get(
    "/api/plans",
    {
      schema: {
        operationId: "listPlans",
        tags: ["catalog"],
        summary: "Plans, their channels and default token limits (public)",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per plan (channels joined by spaces).",
        querystring: FormatQuery,
        response: { 200: PlanCatalogSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) =>
      wantsCsv(request) ? sendCsv(reply, "plans", PLAN_COLUMNS, plans.plans) : plans,
  )
}
