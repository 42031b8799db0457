/** Subscription API keys (admin): issue (shown once), list, revoke. */
import { Type } from "typebox"
import { OmnimeterError } from "../../core/errors.js"
import { Text, Uuid } from "../../core/formats.js"
import { authenticate, requireAdmin, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { IssuedKeySchema, KeyListSchema } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const KEY_COLUMNS = csvColumns(KeyListSchema.properties.keys.items)

export const keyRoutes: RouteModule = (app, { meter, keys }) => {
  const auth = authenticate(keys)
  const tags = ["keys"]

  app.post(
    "/api/subscriptions/:id/keys",
    {
      onRequest: auth,
      schema: {
        operationId: "createKey",
        tags,
        summary: "Issue a subscription key (admin); the key is in this answer only",
        security: bearerSecurity,
        params: Type.Object({ id: Uuid() }),
        body: Type.Optional(
          Type.Object({ label: Type.Optional(Text(200)) }, { additionalProperties: false }),
        ),
        response: { 201: IssuedKeySchema, ...errorResponses(400, 401, 403, 404, 500) },
      },
    },
    async (request, reply) => {
      // Another subscription's key gets 404 here as everywhere; its own key, 403 (admin only).
      scopeFor(request, request.params.id)
      requireAdmin(request)
      const subscription = await meter.getSubscription(request.params.id)
      const issued = await keys.issueSubscriptionKey(subscription.id, request.body?.label ?? null)
      reply.status(201)
      return {
        key: issued.key,
        key_id: issued.keyId,
        prefix: issued.prefix,
        label: issued.label,
        created_at: issued.createdAt.toISOString(),
      }
    },
  )

  app.get(
    "/api/subscriptions/:id/keys",
    {
      onRequest: auth,
      schema: {
        operationId: "listKeys",
        tags,
        summary: "List a subscription's keys (admin), without their secrets",
        description: "`format=csv` or `Accept: text/csv` answers CSV, one row per key.",
        security: bearerSecurity,
        params: Type.Object({ id: Uuid() }),
        querystring: FormatQuery,
        response: { 200: KeyListSchema, ...errorResponses(400, 401, 403, 404, 500) },
      },
    },
    async (request, reply) => {
      // Another subscription's key gets 404 here as everywhere; its own key, 403 (admin only).
      scopeFor(request, request.params.id)
      requireAdmin(request)
      const subscription = await meter.getSubscription(request.params.id)
      const rows = await keys.listSubscriptionKeys(subscription.id)
      const body = {
        keys: rows.map((row) => ({
          key_id: row.id,
          prefix: row.prefix,
          label: row.label,
          created_at: row.createdAt.toISOString(),
          revoked_at: row.revokedAt?.toISOString() ?? null,
        })),
      }
      if (wantsCsv(request)) return sendCsv(reply, "keys", KEY_COLUMNS, body.keys)
      return body
    },
  )

  app.delete(
    "/api/subscriptions/:id/keys/:key_id",
    {
      onRequest: auth,
      schema: {
        operationId: "revokeKey",
        tags,
        summary: "Revoke a subscription key (admin)",
        security: bearerSecurity,
        params: Type.Object({ id: Uuid(), key_id: Uuid() }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 404, 500) },
      },
    },
    async (request, reply) => {
      // Another subscription's key gets 404 here as everywhere; its own key, 403 (admin only).
      scopeFor(request, request.params.id)
      requireAdmin(request)
      const revoked = await keys.revokeSubscriptionKey(request.params.id, request.params.key_id)
      if (!revoked)
        throw new OmnimeterError("not_found", `No live key ${request.params.key_id} for this subscription.`)
      reply.status(204)
      return null
    },
  )
}
