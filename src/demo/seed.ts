/** Seeds the demo: three subscriptions on different plans and timezones, 30 days of traffic each. */

import { type Insertable, sql } from "kysely"
import { billedTokens } from "../core/billing.js"
import { CHANNEL_DEFINITIONS, type Channel } from "../core/channels.js"
import { billingPeriodAt } from "../core/period.js"
import { PLAN_DEFINITIONS, type Plan } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { Meter } from "../meter/meter.js"
import type { Database } from "../storage/database.js"
import { type ImportedTurn, insertImportedTurns } from "../storage/ledger.js"
import { upsertPrice } from "../storage/outcomes.js"
import type { DB } from "../storage/schema.js"
import { seededRandom, syntheticTraffic } from "./traffic.js"

/** The models the demo's channels answer with, and their list prices per million tokens (input, output). */
export const DEMO_PRICES: Readonly<Record<string, readonly [string, string]>> = {
  "gpt-4o-mini": ["0.15", "0.6"],
  "gpt-4o": ["2.5", "10"],
  "claude-3-5-haiku": ["0.8", "4"],
}
const DEMO_MODELS: Readonly<Record<Channel, string>> = {
  website: "gpt-4o-mini",
  whatsapp: "gpt-4o-mini",
  messenger: "claude-3-5-haiku",
  instagram: "gpt-4o-mini",
  telegram: "claude-3-5-haiku",
  api: "gpt-4o",
}
/** Goals per channel: how often a turn leads to one, and what it is worth. */
const DEMO_GOALS: Readonly<Record<Channel, { rate: number; name: string; value: number }>> = {
  website: { rate: 0.02, name: "purchase", value: 40 },
  whatsapp: { rate: 0.03, name: "purchase", value: 25 },
  messenger: { rate: 0.015, name: "lead", value: 8 },
  instagram: { rate: 0.01, name: "purchase", value: 30 },
  telegram: { rate: 0.02, name: "ticket_resolved", value: 3 },
  api: { rate: 0.005, name: "lead", value: 60 },
}

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
  // Prices in force from before the first turn, so every demo turn is priced.
  for (const [model, [input, output]] of Object.entries(DEMO_PRICES))
    await upsertPrice(database.db, {
      model,
      currency: meter.currency,
      effectiveFrom: start,
      inputPerMillion: input,
      outputPerMillion: output,
    })
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
    const random = seededRandom(5000 + index)
    const goals: Insertable<DB["outcomes"]>[] = []
    const ratings: Insertable<DB["feedback"]>[] = []
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
        // Prompts are about 70% of a turn's tokens.
        model: DEMO_MODELS[turn.channel],
        inputTokens: Math.round(turn.rawTokens * 0.7),
        outputTokens: turn.rawTokens - Math.round(turn.rawTokens * 0.7),
      })
      if (batch.length >= 2000) {
        await insertImportedTurns(database.db, batch, meter.currency)
        batch = []
      }
      if (turn.denialReason) continue
      const goal = DEMO_GOALS[turn.channel]
      const occurredAt = new Date(turn.createdAt.getTime() + 10 * 60_000)
      if (random() < goal.rate && occurredAt <= now)
        goals.push({
          subscription_id: subscription.id,
          name: goal.name,
          value: (goal.value * (0.5 + random())).toFixed(2),
          currency: meter.currency,
          user_identifier: turn.userIdentifier,
          session_id: turn.sessionId,
          occurred_at: occurredAt,
          idempotency_key: `demo-${goals.length}`,
        })
      if (random() < 0.02)
        ratings.push({
          subscription_id: subscription.id,
          session_id: turn.sessionId,
          channel: turn.channel,
          csat: Math.min(5, Math.max(1, Math.round(3.6 + (random() - 0.4) * 3))),
          created_at: occurredAt > now ? now : occurredAt,
          idempotency_key: `demo-feedback-${ratings.length}`,
        })
    }
    for (let i = 0; i < goals.length; i += 1000)
      await database.db
        .insertInto("outcomes")
        .values(goals.slice(i, i + 1000))
        .execute()
    for (let i = 0; i < ratings.length; i += 1000)
      await database.db
        .insertInto("feedback")
        .values(ratings.slice(i, i + 1000))
        .execute()
    await insertImportedTurns(database.db, batch, meter.currency)
    // A sentiment score per priced turn, from a hash of its id (the demo has no messages).
    await sql`
      update turn_details
      set sentiment = greatest(-1, least(1, round(
        (('x' || substr(md5(usage_id::text), 1, 6))::bit(24)::int / 16777215.0) * 1.6 - 0.55
        + case channel when 'whatsapp' then 0.15 when 'instagram' then -0.1 else 0 end, 4)))
      where subscription_id = ${subscription.id}
    `.execute(database.db)
  }
  return created
}
