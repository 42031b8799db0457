/**
 * The shapes of saved dashboards and of the operator's overview (issue 16), inferred from the server's
 * TypeBox schemas. Type-only imports, like types.ts.
 */
import type { SubscriptionOverviewBody } from "../../../src/http/routes/admin.js"
import type { DashboardBody, DashboardWidgetBody } from "../../../src/http/routes/dashboards.js"

export type { DashboardBody, DashboardWidgetBody, SubscriptionOverviewBody }
export type WidgetKind = DashboardWidgetBody["kind"]
export type PeriodPreset = DashboardWidgetBody["period"]
export type OverviewRow = SubscriptionOverviewBody["subscriptions"][number]
export type OverviewSort = SubscriptionOverviewBody["sort"]

/** GET /api/subscriptions/{id}/dashboards */
export interface DashboardListBody {
  dashboards: DashboardBody[]
}

/** A widget as the editor sends it (POST and PATCH bodies). */
export interface WidgetDraft {
  kind: WidgetKind
  title?: string | null
  period?: PeriodPreset
  channels?: string[]
  chatbot_id?: string | null
}

/** GET /api/subscriptions/{id}/keys */
export interface KeyList {
  keys: {
    key_id: string
    prefix: string
    label: string | null
    created_at: string
    revoked_at: string | null
  }[]
}

/** POST /api/subscriptions/{id}/keys: the key itself, shown once. */
export interface IssuedKey {
  key: string
  key_id: string
  prefix: string
  label: string | null
  created_at: string
}
