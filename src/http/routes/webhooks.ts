/**
 * Webhook endpoints of a subscription: create (the signing secret is in that answer only), list, update,
 * delete, the delivery log, and "send a test event". The subscription's own key or the admin key.
 */
import { type Static, Type } from "typebox"
import type { Endpoint } from "../../alerts/service.js"
import { ALERT_TYPES } from "../../core/alerts.js"
import { DateTime, Nullable, Text, Uuid } from "../../core/formats.js"
import { OneOf } from "../../meter/inputs.js"
import type { DeliveryLogRow } from "../../storage/alerts.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatParameter, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const EventTypes = Type.Array(OneOf(ALERT_TYPES, "An event type."), {
  minItems: 1,
  maxItems: ALERT_TYPES.length,
  uniqueItems: true,
  description: "The events this endpoint receives.",
})
const Url = Text(2048, {
  minLength: 1,
  description:
    "Where events are POSTed: https or http, on a public address (loopback and private networks only when the operator sets OMNIMETER_WEBHOOK_ALLOW_PRIVATE).",
})
const Description = Text(200)

export const WebhookEndpointSchema = Type.Object(
  {
    id: Type.String(),
    subscription_id: Type.String(),
    url: Type.String(),
    description: Nullable(Type.String()),
    event_types: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    created_at: DateTime(),
    updated_at: DateTime(),
  },
  { $id: "WebhookEndpoint", description: "A webhook endpoint, without its secret." },
)

const CreatedEndpointSchema = Type.Object({
  ...WebhookEndpointSchema.properties,
  secret: Type.String({
    description:
      "Signs every delivery (HMAC-SHA256 over the timestamp, a dot and the raw body). Shown in this answer only: store it now.",
  }),
})

const CreateBody = Type.Object(
  {
    url: Url,
    description: Type.Optional(Nullable(Description)),
    event_types: EventTypes,
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
const PatchBody = Type.Object(
  {
    url: Type.Optional(Url),
    description: Type.Optional(Nullable(Description)),
    event_types: Type.Optional(EventTypes),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const DeliverySchema = Type.Object({
  id: Type.Integer(),
  event_id: Type.String(),
  event_type: Type.String(),
  status: OneOf(
    ["pending", "delivered", "failed"] as const,
    "failed: every attempt failed; no more retries.",
  ),
  attempts: Type.Integer(),
  next_attempt_at: Nullable(DateTime(), "When a pending delivery is retried; null when due at once or done."),
  last_attempt_at: Nullable(DateTime()),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  delivered_at: Nullable(DateTime()),
  created_at: DateTime(),
})

const ENDPOINT_COLUMNS = csvColumns(WebhookEndpointSchema)
const DELIVERY_COLUMNS = csvColumns(DeliverySchema)

const Params = Type.Object({ id: Uuid() })
const EndpointParams = Type.Object({ id: Uuid(), webhook_id: Uuid() })
/** A webhook endpoint as the API answers it, and one delivery-log row (the dashboard imports these). */
export type EndpointBody = Static<typeof WebhookEndpointSchema>
export type DeliveryBody = Static<typeof DeliverySchema>

function endpointBody(endpoint: Endpoint): EndpointBody {
  return {
    id: endpoint.id,
    subscription_id: endpoint.subscriptionId,
    url: endpoint.url,
    description: endpoint.description,
    event_types: endpoint.eventTypes,
    enabled: endpoint.enabled,
    created_at: endpoint.createdAt.toISOString(),
    updated_at: endpoint.updatedAt.toISOString(),
  }
}

const iso = (date: Date | null) => date?.toISOString() ?? null

function deliveryBody(row: DeliveryLogRow): DeliveryBody {
  return {
    id: row.id,
    event_id: row.alertId,
    event_type: row.type,
    status: row.status as "pending" | "delivered" | "failed",
    attempts: row.attempts,
    next_attempt_at: iso(row.nextAttemptAt),
    last_attempt_at: iso(row.lastAttemptAt),
    last_status_code: row.lastStatusCode,
    last_error: row.lastError,
    delivered_at: iso(row.deliveredAt),
    created_at: row.createdAt.toISOString(),
  }
}

export const webhookRoutes: RouteModule = (app, { alerts, keys }) => {
  const auth = authenticate(keys)
  const tags = ["webhooks"]
  const base = "/api/subscriptions/:id/webhooks"

  app.post(
    base,
    {
      onRequest: auth,
      schema: {
        operationId: "createWebhook",
        tags,
        summary: "Add a webhook endpoint; the signing secret is in this answer only",
        security: bearerSecurity,
        params: Params,
        body: CreateBody,
        response: { 201: CreatedEndpointSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const b = request.body
      const created = await alerts.createEndpoint(
        id,
        { url: b.url, description: b.description, eventTypes: b.event_types, enabled: b.enabled },
        scopeFor(request, id),
      )
      reply.status(201)
      return { ...endpointBody(created), secret: created.secret }
    },
  )

  app.get(
    base,
    {
      onRequest: auth,
      schema: {
        operationId: "listWebhooks",
        tags,
        summary: "List a subscription's webhook endpoints (without secrets)",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per endpoint (event_types joined by spaces).",
        security: bearerSecurity,
        params: Params,
        querystring: FormatQuery,
        response: {
          200: Type.Object({ webhooks: Type.Array(Type.Ref("WebhookEndpoint")) }),
          ...errorResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const webhooks = (await alerts.listEndpoints(id, scopeFor(request, id))).map(endpointBody)
      if (wantsCsv(request)) return sendCsv(reply, "webhooks", ENDPOINT_COLUMNS, webhooks)
      return { webhooks }
    },
  )

  app.patch(
    `${base}/:webhook_id`,
    {
      onRequest: auth,
      schema: {
        operationId: "updateWebhook",
        tags,
        summary: "Change an endpoint's URL, description, event types or enabled flag",
        security: bearerSecurity,
        params: EndpointParams,
        body: PatchBody,
        response: { 200: Type.Ref("WebhookEndpoint"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { id, webhook_id: endpointId } = request.params
      const b = request.body
      const updated = await alerts.updateEndpoint(
        id,
        endpointId,
        { url: b.url, description: b.description, eventTypes: b.event_types, enabled: b.enabled },
        scopeFor(request, id),
      )
      return endpointBody(updated)
    },
  )

  app.delete(
    `${base}/:webhook_id`,
    {
      onRequest: auth,
      schema: {
        operationId: "deleteWebhook",
        tags,
        summary: "Delete an endpoint, its delivery log and its undelivered events",
        security: bearerSecurity,
        params: EndpointParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { id, webhook_id: endpointId } = request.params
      await alerts.deleteEndpoint(id, endpointId, scopeFor(request, id))
      reply.status(204)
      return null
    },
  )

  app.get(
    `${base}/:webhook_id/deliveries`,
    {
      onRequest: auth,
      schema: {
        operationId: "listWebhookDeliveries",
        tags,
        summary: "The endpoint's delivery log, newest first: status, attempts, last error",
        description:
          "`format=csv` or `Accept: text/csv` answers the same deliveries as CSV, one row per delivery.",
        security: bearerSecurity,
        params: EndpointParams,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            ...FormatParameter,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ deliveries: Type.Array(DeliverySchema) }),
          ...errorResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const { id, webhook_id: endpointId } = request.params
      const rows = await alerts.listDeliveries(
        id,
        endpointId,
        request.query.limit ?? 100,
        scopeFor(request, id),
      )
      const deliveries = rows.map(deliveryBody)
      if (wantsCsv(request)) return sendCsv(reply, "webhook-deliveries", DELIVERY_COLUMNS, deliveries)
      return { deliveries }
    },
  )

  app.post(
    `${base}/:webhook_id/test`,
    {
      onRequest: auth,
      schema: {
        operationId: "testWebhook",
        tags,
        summary: "Queue a signed webhook.test event for this endpoint",
        description:
          "The event goes through the same outbox, worker, retries and delivery log as real events.",
        security: bearerSecurity,
        params: EndpointParams,
        response: { 202: Type.Object({ event_id: Type.String() }), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { id, webhook_id: endpointId } = request.params
      const eventId = await alerts.sendTestEvent(id, endpointId, scopeFor(request, id))
      reply.status(202)
      return { event_id: eventId }
    },
  )
}
