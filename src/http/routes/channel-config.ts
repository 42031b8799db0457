/** Per-subscription channel configuration: read all, update one channel partially. */
import { Type } from "typebox"
import { camelCaseKeys } from "../../core/casing.js"
import { isChannel } from "../../core/channels.js"
import { ValidationError } from "../../core/errors.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { channelConfigBody } from "../mappers.js"
import {
  ChannelConfigListSchema,
  ChannelConfigPatchBody,
  ChannelConfigSchema,
  ChannelParams,
  SubscriptionIdParams,
} from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const CONFIG_COLUMNS = csvColumns(ChannelConfigSchema)

export const channelConfigRoutes: RouteModule = (app, { meter, keys }) => {
  const auth = authenticate(keys)
  const tags = ["channels"]

  app.get(
    "/api/onboarding/subscription/:subscription_id/channels/config",
    {
      onRequest: auth,
      schema: {
        operationId: "listChannelConfigs",
        tags,
        summary: "Every channel's effective configuration for a subscription",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per channel (overridden joined by spaces).",
        security: bearerSecurity,
        params: SubscriptionIdParams,
        querystring: FormatQuery,
        response: { 200: ChannelConfigListSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const scope = scopeFor(request, id)
      const subscription = await meter.getSubscription(id, scope)
      const channels = (await meter.getChannelConfigs(id, scope)).map(channelConfigBody)
      if (wantsCsv(request)) return sendCsv(reply, "channel-config", CONFIG_COLUMNS, channels)
      return { subscription_id: id, plan: subscription.plan, channels }
    },
  )

  app.put(
    "/api/onboarding/subscription/:subscription_id/channels/:channel/config",
    {
      onRequest: auth,
      schema: {
        operationId: "updateChannelConfig",
        tags,
        summary: "Update some of one channel's settings",
        description:
          "Partial update. Enabling a channel outside the plan answers 403 channel_not_in_plan; a negative limit, a multiplier outside 0.01-10 or with more than two decimals, or an unknown field answers 400 naming the field.",
        security: bearerSecurity,
        params: ChannelParams,
        body: ChannelConfigPatchBody,
        response: { 200: Type.Ref("ChannelConfig"), ...errorResponses(400, 401, 403, 404, 500) },
      },
    },
    async (request) => {
      const { subscription_id: id, channel } = request.params
      const scope = scopeFor(request, id)
      if (!isChannel(channel)) throw new ValidationError("channel", `unknown channel "${channel}"`)
      const config = await meter.updateChannelConfig(id, channel, camelCaseKeys(request.body), scope)
      return channelConfigBody(config)
    },
  )
}
