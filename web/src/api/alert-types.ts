/**
 * The shapes of the alerts, webhooks, forecast and insights answers (issue 7), inferred from the server's
 * TypeBox schemas. Type-only imports, like types.ts. The list answers reference their items by $ref, which
 * Static cannot follow, so their envelopes are spelled here around the exported item types.
 */
import type { AlertBody } from "../../../src/http/routes/alerts.js"
import type { ForecastBody, InsightBody } from "../../../src/http/routes/forecast.js"
import type { DeliveryBody, EndpointBody } from "../../../src/http/routes/webhooks.js"

export type { AlertBody, DeliveryBody, EndpointBody, ForecastBody, InsightBody }
export type AlertType = AlertBody["type"]
export type ProjectionBody = ForecastBody["channels"][number]
export type ForecastMethod = ProjectionBody["method"]

/** GET /api/subscriptions/{id}/alerts */
export interface AlertPage {
  alerts: AlertBody[]
  next_before: number | null
}

/** GET /api/onboarding/analytics/{id}/insights: the ranked insights and the forecast they read. */
export interface InsightsAnswer {
  subscription_id: string
  generated_at: string
  insights: InsightBody[]
  forecast: ForecastBody
}

/** GET /api/subscriptions/{id}/webhooks */
export interface WebhookList {
  webhooks: EndpointBody[]
}

/** GET /api/subscriptions/{id}/webhooks/{webhook_id}/deliveries */
export interface DeliveryLog {
  deliveries: DeliveryBody[]
}
