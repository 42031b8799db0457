/** The demo's saved dashboards (issue 16): one per demo subscription, so the Dashboards page is populated. */

import { CHANNEL_DEFINITIONS } from "../core/channels.js"
import { PLAN_DEFINITIONS } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { DashboardService } from "../dashboards/service.js"

/**
 * Saves a "Weekly review" view for each subscription, with widgets drawn from its plan's channels.
 * @example await seedDemoDashboards(container.dashboards, await seedDemo(meter, database, new Date(), 60))
 */
export async function seedDemoDashboards(
  dashboards: DashboardService,
  subscriptions: readonly Subscription[],
): Promise<void> {
  for (const subscription of subscriptions) {
    const [first = "website", second = "whatsapp"] = PLAN_DEFINITIONS[subscription.plan].channels
    await dashboards.create(subscription.id, {
      name: "Weekly review",
      widgets: [
        { kind: "totals", period: "last_7_days" },
        { kind: "quota" },
        { kind: "daily_tokens", period: "last_30_days", channels: [first, second] },
        {
          kind: "channel_trend",
          period: "last_14_days",
          channels: [second],
          title: `${CHANNEL_DEFINITIONS[second].label} day by day`,
        },
        { kind: "busy_hours", period: "last_7_days" },
        { kind: "channel_comparison", period: "last_30_days" },
        { kind: "denials", period: "last_30_days" },
      ],
    })
  }
}
