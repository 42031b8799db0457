/** Seeds the demo: three subscriptions on different plans and timezones, 30 days of traffic each. */
import { billedTokens } from "../core/billing.js"
import { CHANNEL_DEFINITIONS, type Channel } from "../core/channels.js"
import { billingPeriodAt } from "../core/period.js"
import { PLAN_DEFINITIONS, type Plan } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { Meter } from "../meter/meter.js"
import type { Database } from "../storage/database.js"
import { type ImportedTurn, insertImportedTurns } from "../storage/ledger.js"
import { syntheticTraffic } from "./traffic.js"

export interface DemoSubscription {
  entityId: string
  plan: Plan
  timezone: string
  utcOffsetMinutes: number
  scale: number
}

export const DEMO_SUBSCRIPTIONS: readonly DemoSubscription[] = [
  {
    entityId: "acme-retail",
    plan: "enterprise",
    timezone: "America/New_York",
    utcOffsetMinutes: -300,
    scale: 1,
  },
  {
    entityId: "globex-support",
    plan: "professional",
    timezone: "Europe/Berlin",
    utcOffsetMinutes: 60,
    scale: 0.6,
  },
  { entityId: "initech", plan: "basic", timezone: "Asia/Kolkata", utcOffsetMinutes: 330, scale: 0.3 },
]

/** Creates the demo subscriptions and their last `days` days of traffic, ending at `now`. */
export async function seedDemo(
  meter: Meter,
  database: Database,
  now: Date,
  days = 30,
): Promise<Subscription[]> {
  const start = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 - days * 86_400_000)
  const created: Subscription[] = []
  for (const [index, demo] of DEMO_SUBSCRIPTIONS.entries()) {
    const subscription = await meter.createSubscription({
      entityId: demo.entityId,
      entityType: "organization",
      plan: demo.plan,
      tokenLimit: PLAN_DEFINITIONS[demo.plan].defaultTokenLimit * (demo.plan === "basic" ? 20 : 3),
      timezone: demo.timezone,
      periodStart: new Date(now.getTime() - 12 * 86_400_000).toISOString(),
    })
    created.push(subscription)
    const channels = PLAN_DEFINITIONS[demo.plan].channels
    let batch: ImportedTurn[] = []
    const traffic = syntheticTraffic({
      start,
      days,
      utcOffsetMinutes: demo.utcOffsetMinutes,
      channels,
      seed: 1000 + index,
      scale: demo.scale,
    })
    for (const turn of traffic) {
      if (turn.createdAt.getTime() > now.getTime()) continue
      const multiplier = CHANNEL_DEFINITIONS[turn.channel as Channel].defaults.multiplierHundredths
      batch.push({
        subscriptionId: subscription.id,
        channel: turn.channel,
        chatbotId: turn.chatbotId,
        sessionId: turn.sessionId,
        userIdentifier: turn.userIdentifier,
        operationType: "chat",
        rawTokens: turn.rawTokens,
        billedTokens: billedTokens(turn.rawTokens, multiplier),
        multiplierHundredths: multiplier,
        idempotencyKey: null,
        createdAt: turn.createdAt,
        periodStart: billingPeriodAt(subscription.periodAnchor, turn.createdAt).start,
        ...(turn.denialReason ? { denialReason: turn.denialReason } : {}),
      })
      if (batch.length >= 2000) {
        await insertImportedTurns(database.db, batch)
        batch = []
      }
    }
    await insertImportedTurns(database.db, batch)
  }
  return created
}
