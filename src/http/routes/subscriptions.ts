/** Subscriptions: create, list, read (with the current period's quota), update. */
import { Type } from "typebox"
import { camelCaseKeys } from "../../core/casing.js"
import { Nullable, Uuid } from "../../core/formats.js"
import { authenticate, requireAdmin, scopeFor } from "../auth.js"
import { csvColumns, FormatParameter, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { subscriptionBody } from "../mappers.js"
import { CreateSubscriptionBody, IdParams, SubscriptionSchema, UpdateSubscriptionBody } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

// The list carries no quota (GET /api/subscriptions/{id} does), so neither does its CSV.
const SUBSCRIPTION_COLUMNS = csvColumns(SubscriptionSchema).filter((c) => !c.name.startsWith("quota."))
const CSV_PAGE = 500

export const subscriptionRoutes: RouteModule = (app, { meter, keys }) => {
  const auth = authenticate(keys)
  const tags = ["subscriptions"]

  app.post(
    "/api/subscriptions",
    {
      onRequest: auth,
      schema: {
        operationId: "createSubscription",
        tags,
        summary: "Create a subscription (admin)",
        security: bearerSecurity,
        body: CreateSubscriptionBody,
        response: { 201: Type.Ref("Subscription"), ...errorResponses(400, 401, 403, 409, 500) },
      },
    },
    async (request, reply) => {
      requireAdmin(request)
      const subscription = await meter.createSubscription(camelCaseKeys(request.body))
      reply.status(201)
      return subscriptionBody(subscription, await meter.getQuota(subscription.id))
    },
  )

  app.get(
    "/api/subscriptions",
    {
      onRequest: auth,
      schema: {
        operationId: "listSubscriptions",
        tags,
        summary: "List subscriptions (admin), in id order",
        description:
          "`format=csv` or `Accept: text/csv` streams every subscription from `after` on (not one page), one row per subscription (lists of numbers joined by spaces).",
        security: bearerSecurity,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
          after: Type.Optional(Uuid("Return subscriptions after this id.")),
          ...FormatParameter,
        }),
        response: {
          200: Type.Object({
            subscriptions: Type.Array(Type.Ref("Subscription")),
            next_after: Nullable(Type.String(), "Pass as `after` for the next page."),
          }),
          ...errorResponses(400, 401, 403, 500),
        },
      },
    },
    async (request, reply) => {
      requireAdmin(request)
      if (wantsCsv(request)) {
        const first = await meter.listSubscriptions(CSV_PAGE, request.query.after)
        async function* all() {
          for (let page = first; ; ) {
            yield* page.map((s) => subscriptionBody(s))
            const last = page.at(-1)
            if (page.length < CSV_PAGE || last === undefined) return
            page = await meter.listSubscriptions(CSV_PAGE, last.id)
          }
        }
        return sendCsv(reply, "subscriptions", SUBSCRIPTION_COLUMNS, all())
      }
      const limit = request.query.limit ?? 100
      const page = await meter.listSubscriptions(limit, request.query.after)
      return {
        subscriptions: page.map((s) => subscriptionBody(s)),
        next_after: page.length === limit ? (page[page.length - 1]?.id ?? null) : null,
      }
    },
  )

  app.get(
    "/api/subscriptions/:id",
    {
      onRequest: auth,
      schema: {
        operationId: "getSubscription",
        tags,
        summary: "Read a subscription and its current period's quota",
        security: bearerSecurity,
        params: IdParams,
        response: { 200: Type.Ref("Subscription"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const scope = scopeFor(request, request.params.id)
      const subscription = await meter.getSubscription(request.params.id, scope)
      return subscriptionBody(subscription, await meter.getQuota(subscription.id, scope))
    },
  )

  app.patch(
    "/api/subscriptions/:id",
    {
      onRequest: auth,
      schema: {
        operationId: "updateSubscription",
        tags,
        summary: "Change plan, limit, status, timezone, shared capacity or quota reserve (admin)",
        description:
          "Effective at once. A downgrade disables the channels the new plan lacks. requests_per_minute and tokens_per_minute set a capacity shared by all the subscription's channels (null removes it); priority_curve (non-decreasing) says how much of it each priority may fill; quota_reserve_percent keeps the last part of the period's quota for channels of quota_reserve_min_priority or more.",
        security: bearerSecurity,
        params: IdParams,
        body: UpdateSubscriptionBody,
        response: { 200: Type.Ref("Subscription"), ...errorResponses(400, 401, 403, 404, 500) },
      },
    },
    async (request) => {
      scopeFor(request, request.params.id)
      requireAdmin(request)
      const subscription = await meter.updateSubscription(request.params.id, camelCaseKeys(request.body))
      return subscriptionBody(subscription, await meter.getQuota(subscription.id))
    },
  )
}
