/**
 * Saved dashboards of a subscription (issue 16): list, create, read, change (name, widgets and their
 * order), delete. The subscription's own key or the admin key.
 */
import { type Static, Type } from "typebox"
import { camelCaseKeys, snakeCaseProperties, type WireForm, wireForm } from "../../core/casing.js"
import { DateTime, Nullable, Uuid } from "../../core/formats.js"
import {
  CreateDashboardSchema,
  PeriodPresetSchema,
  UpdateDashboardSchema,
  WIDGET_LIST_OPTIONS,
  WidgetInputSchema,
  WidgetKindSchema,
} from "../../dashboards/inputs.js"
import type { Dashboard } from "../../dashboards/service.js"
import { ChannelSchema } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const WidgetBody = Type.Object(snakeCaseProperties(WidgetInputSchema.properties), {
  additionalProperties: false,
})
const CreateBody = Type.Object(
  { ...CreateDashboardSchema.properties, widgets: Type.Array(WidgetBody, WIDGET_LIST_OPTIONS) },
  { additionalProperties: false },
)
const PatchBody = Type.Object(
  {
    ...UpdateDashboardSchema.properties,
    widgets: Type.Optional(Type.Array(WidgetBody, WIDGET_LIST_OPTIONS)),
  },
  { additionalProperties: false, minProperties: 1 },
)

export const SavedWidgetSchema = Type.Object({
  kind: WidgetKindSchema,
  title: Nullable(Type.String()),
  period: PeriodPresetSchema,
  channels: Type.Array(ChannelSchema, { description: "Empty: every channel." }),
  chatbot_id: Nullable(Type.String()),
  from: Type.String({ description: "First local day the period preset covers today (YYYY-MM-DD)." }),
  to: Type.String({ description: "Last local day it covers: yesterday, the last complete day." }),
})

export const DashboardSchema = Type.Object(
  {
    id: Type.String(),
    subscription_id: Type.String(),
    name: Type.String(),
    timezone: Type.String({ description: "The subscription's timezone, which from and to are in." }),
    widgets: Type.Array(SavedWidgetSchema, { description: "In display order." }),
    version: Type.Integer({ description: "Bumped by every change; send it back to refuse lost updates." }),
    created_at: DateTime(),
    updated_at: DateTime(),
  },
  { description: "A saved view: a name and an ordered list of widgets with their filters." },
)
/** A dashboard as the API answers it (the web imports this type). */
export type DashboardBody = Static<typeof DashboardSchema>
export type DashboardWidgetBody = Static<typeof SavedWidgetSchema>
export type DashboardCreateBody = Static<typeof CreateBody>

const DashboardListSchema = Type.Object({ dashboards: Type.Array(DashboardSchema) })
const DASHBOARD_COLUMNS = csvColumns(DashboardSchema)
const Params = Type.Object({ id: Uuid() })
const DashboardParams = Type.Object({ id: Uuid(), dashboard_id: Uuid() })

function dashboardBody(dashboard: Dashboard): DashboardBody {
  const body: WireForm<Dashboard> = wireForm(dashboard)
  return body
}

const widgetsInput = (widgets: Static<typeof WidgetBody>[]) => widgets.map((w) => camelCaseKeys(w))

export const dashboardRoutes: RouteModule = (app, { dashboards, keys }) => {
  const auth = authenticate(keys)
  const tags = ["dashboards"]
  const base = "/api/subscriptions/:id/dashboards"

  app.get(
    base,
    {
      onRequest: auth,
      schema: {
        operationId: "listDashboards",
        tags,
        summary: "List a subscription's saved dashboards, oldest first",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per dashboard (its widgets are in GET .../dashboards/{dashboard_id}).",
        security: bearerSecurity,
        params: Params,
        querystring: FormatQuery,
        response: { 200: DashboardListSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const list = (await dashboards.list(id, scopeFor(request, id))).map(dashboardBody)
      if (wantsCsv(request)) return sendCsv(reply, "dashboards", DASHBOARD_COLUMNS, list)
      return { dashboards: list }
    },
  )

  app.post(
    base,
    {
      onRequest: auth,
      schema: {
        operationId: "createDashboard",
        tags,
        summary: "Save a dashboard: a name and an ordered list of widgets with their filters",
        description:
          "400 names the field: an unknown widget kind (widgets.N.kind), more than 12 widgets (widgets), a name over 80 characters (name), a one-channel widget without exactly one channel (widgets.N.channels). 409: the name is taken, or the subscription already keeps 50 dashboards.",
        security: bearerSecurity,
        params: Params,
        body: CreateBody,
        response: { 201: DashboardSchema, ...errorResponses(400, 401, 404, 409, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const created = await dashboards.create(
        id,
        { name: request.body.name, widgets: widgetsInput(request.body.widgets) },
        scopeFor(request, id),
      )
      reply.status(201)
      return dashboardBody(created)
    },
  )

  app.get(
    `${base}/:dashboard_id`,
    {
      onRequest: auth,
      schema: {
        operationId: "getDashboard",
        tags,
        summary: "Read a saved dashboard, with the days each widget's period covers today",
        security: bearerSecurity,
        params: DashboardParams,
        response: { 200: DashboardSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { id, dashboard_id: dashboardId } = request.params
      return dashboardBody(await dashboards.get(id, dashboardId, scopeFor(request, id)))
    },
  )

  app.patch(
    `${base}/:dashboard_id`,
    {
      onRequest: auth,
      schema: {
        operationId: "updateDashboard",
        tags,
        summary: "Rename a dashboard or replace its widgets (their order is the display order)",
        description:
          "With `version`, the change applies only if the dashboard is still at that version (409 otherwise: reload and apply again); without it, the last write wins. Every change bumps the version.",
        security: bearerSecurity,
        params: DashboardParams,
        body: PatchBody,
        response: { 200: DashboardSchema, ...errorResponses(400, 401, 404, 409, 500) },
      },
    },
    async (request) => {
      const { id, dashboard_id: dashboardId } = request.params
      const b = request.body
      const updated = await dashboards.update(
        id,
        dashboardId,
        {
          ...(b.name !== undefined ? { name: b.name } : {}),
          ...(b.widgets !== undefined ? { widgets: widgetsInput(b.widgets) } : {}),
          ...(b.version !== undefined ? { version: b.version } : {}),
        },
        scopeFor(request, id),
      )
      return dashboardBody(updated)
    },
  )

  app.delete(
    `${base}/:dashboard_id`,
    {
      onRequest: auth,
      schema: {
        operationId: "deleteDashboard",
        tags,
        summary: "Delete a saved dashboard",
        security: bearerSecurity,
        params: DashboardParams,
        response: { 204: Type.Null(), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { id, dashboard_id: dashboardId } = request.params
      await dashboards.delete(id, dashboardId, scopeFor(request, id))
      reply.status(204)
      return null
    },
  )
}
