/** The words the dashboard uses for each alert type (Alerts page, webhook form). */
import type { AlertType } from "./api/alert-types.ts"

/** Every alert type, with the words the page uses for it. */
export const ALERT_TEXT: Record<AlertType, string> = {
  "quota.threshold_reached": "Quota threshold reached",
  "rate_limit.exceeded": "Rate limit exceeded",
  "usage.spike_detected": "Usage spike",
  "usage.spike_resolved": "Usage spike over",
  "channel.health_degraded": "Channel health degraded",
  "channel.health_recovered": "Channel health recovered",
  "capacity.shed": "Shed for higher priorities",
}
