/**
 * Seeds the demo: three subscriptions on different plans, timezones and billing periods, `days` days of
 * traffic each, decided the way the live path decides them. The history is synthetic, but every turn is
 * admitted or denied by the product's own promises: a channel outside the plan is refused
 * (channel_not_in_plan), each channel's rolling-minute request and token limits hold (rate_limited), and once
 * a billing period's quota is spent, turns are refused (quota_exceeded) instead of being let through.
 *
 * The story it tells: acme-retail's WhatsApp broadcast six days ago (a usage spike, a burst of rate-limit
 * denials, and WhatsApp's replies slowing and failing for a while: channel health degraded, then recovered);
 * globex-support launching a second assistant when its billing period began and spending its quota about
 * three days before now (the 50%, 80% and 95% alerts at the moments they were crossed, with the figures of
 * those moments, and 100% when the last turn admitted fills the limit to the token, then quota_exceeded
 * denials); initech's end users
 * trying channels its basic plan lacks. The alerts are raised by the real detectors, run at the historical
 * instants, so each carries its own time and figures. Every allowed turn names a priced model, and some
 * end users reach goals (outcomes) and rate their sessions (feedback), so the Outcomes page has figures.
 */
import { type Insertable, sql } from "kysely"
import { HealthDetector, RateLimitDetector, SpikeDetector } from "../alerts/detectors.js"
import { DEFAULT_QUOTA_THRESHOLDS } from "../core/alerts.js"
import { billedTokens } from "../core/billing.js"
import { CHANNEL_DEFINITIONS, CHANNELS, type Channel } from "../core/channels.js"
import type { DenialReason } from "../core/decision.js"
import { billingPeriodAt } from "../core/period.js"
import { PLAN_DEFINITIONS, type Plan } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { Meter } from "../meter/meter.js"
import { insertAlert } from "../storage/alerts.js"
import type { Database } from "../storage/database.js"
import { type ImportedTurn, type ImportOptions, insertImportedTurns } from "../storage/ledger.js"
import { upsertPrice } from "../storage/outcomes.js"
import type { DB } from "../storage/schema.js"
import { drainSessionQueue } from "../storage/sessions.js"
import { DemoHistory } from "./history.js"
import { type SyntheticTurn, seededRandom, syntheticTraffic } from "./traffic.js"

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
  /** How long ago the current billing period began, in days. */
  periodAgeDays: number
  /**
   * The token limit: a fixed number, or "runs out" to set it so the current period's demand spends it
   * about `runsOutDaysAgo` days before now.
   */
  tokenLimit: number | { runsOutDaysAgo: number }
  /** A second assistant launched when the current billing period began, doubling the traffic. */
  secondAssistant?: boolean
  /** A WhatsApp broadcast this many days ago, at 18:00 local time. */
  broadcastDaysAgo?: number
}

export const DEMO_SUBSCRIPTIONS: readonly DemoSubscription[] = [
  {
    entityId: "acme-retail",
    plan: "enterprise",
    timezone: "America/New_York",
    utcOffsetMinutes: -300,
    scale: 1,
    periodAgeDays: 12,
    tokenLimit: 3 * PLAN_DEFINITIONS.enterprise.defaultTokenLimit,
    broadcastDaysAgo: 6,
  },
  {
    entityId: "globex-support",
    plan: "professional",
    timezone: "Europe/Berlin",
    utcOffsetMinutes: 60,
    scale: 0.6,
    periodAgeDays: 20,
    tokenLimit: { runsOutDaysAgo: 3 },
    secondAssistant: true,
  },
  {
    entityId: "initech",
    plan: "basic",
    timezone: "Asia/Kolkata",
    utcOffsetMinutes: 330,
    scale: 0.3,
    periodAgeDays: 5,
    tokenLimit: 20 * PLAN_DEFINITIONS.basic.defaultTokenLimit,
  },
]

/** Share of a channel's usual traffic that end users still send on a channel the plan lacks. */
const OUTSIDE_PLAN_SCALE = 0.04
const MINUTE = 60_000
const HOUR = 3_600_000
const DAY = 86_400_000

/** Rows per statement while live turns wait: each statement holds the embedded database for its length. */
const FOREGROUND_ROWS = 2000
const BACKGROUND_ROWS = 500
/** Queued turns derived per statement once the keys are out: see drainSessionQueue. */
const DRAIN_TURNS = 5000

/** The demo's subscriptions, ready for live turns, and the rest of their history being written. */
export interface DemoSeed {
  subscriptions: Subscription[]
  /**
   * Settles once the older billing periods, the broadcast's alerts and the outcomes are written (the
   * `DemoHistory` given to `startDemoSeed` follows its progress).
   */
  history: Promise<void>
}

/** Creates the demo subscriptions and their last `days` days of traffic, ending at `now`, all written. */
export async function seedDemo(
  meter: Meter,
  database: Database,
  now: Date,
  days = 30,
): Promise<Subscription[]> {
  const seed = await startDemoSeed(meter, database, now, days)
  await seed.history
  return seed.subscriptions
}

/** One subscription's admitted history, and where its current billing period begins in it. */
interface Planned {
  index: number
  demo: DemoSubscription
  subscription: Subscription
  /** Its turns in time order; after the foreground, only those before the current billing period. */
  turns: ImportedTurn[]
  crossings: Crossing[]
  /** The index of the first turn of the current billing period. */
  current: number
  outcomes: DemoOutcomes
}

/**
 * Creates the demo subscriptions and writes each one's current billing period (what its quota decisions
 * read, so live turns are decided right from the start; its session tables are left queued, which every
 * reader of them derives first), then answers; the older billing periods (the
 * most recent first, each in time order, in short statements that live turns interleave with), the
 * broadcast's alerts and the outcomes are written in the background (`history`). The data written in the
 * end is the same as in one pass: the ledger's triggers and rollups do not depend on the order of writing,
 * and each billing period's turns are written in time order so its quota alerts carry their own figures.
 */
export async function startDemoSeed(
  meter: Meter,
  database: Database,
  now: Date,
  days = 30,
  progress = new DemoHistory(),
): Promise<DemoSeed> {
  const start = new Date(Math.floor(now.getTime() / HOUR) * HOUR - days * DAY)
  // Prices in force from before the first turn, so every demo turn is priced.
  for (const [model, [input, output]] of Object.entries(DEMO_PRICES))
    await upsertPrice(database.db, {
      model,
      currency: meter.currency,
      effectiveFrom: start,
      inputPerMillion: input,
      outputPerMillion: output,
    })
  const planned: Planned[] = []
  for (const [index, demo] of DEMO_SUBSCRIPTIONS.entries()) {
    const plan = PLAN_DEFINITIONS[demo.plan]
    const periodStart = new Date(start.getTime() + (days - demo.periodAgeDays) * DAY)
    const traffic = demoTraffic(demo, index, start, days, now, periodStart)
    const tokenLimit =
      typeof demo.tokenLimit === "number"
        ? demo.tokenLimit
        : limitSpentBy(
            traffic,
            plan.channels,
            periodStart,
            now.getTime() - demo.tokenLimit.runsOutDaysAgo * DAY,
          )
    const subscription = await meter.createSubscription({
      entityId: demo.entityId,
      entityType: "organization",
      plan: demo.plan,
      tokenLimit,
      timezone: demo.timezone,
      periodStart: periodStart.toISOString(),
    })
    const admitted = admit(traffic, subscription, plan.channels)
    const scores = seededRandom(6000 + index)
    const turns = admitted.turns.map((turn) => priced(turn, scores))
    const currentStart = billingPeriodAt(subscription.periodAnchor, now).start.getTime()
    const current = turns.findIndex((turn) => turn.periodStart.getTime() >= currentStart)
    planned.push({
      index,
      demo,
      subscription,
      turns,
      crossings: admitted.crossings,
      current: current === -1 ? turns.length : current,
      outcomes: demoOutcomes(subscription.id, turns, seededRandom(5000 + index), now, meter.currency),
    })
  }
  progress.begin(
    planned.reduce((sum, p) => sum + p.turns.length, 0),
    start,
  )
  // Their session tables are left queued (a third of the writing): the background derives them first.
  for (const p of planned) {
    const written = await writeTurns(
      database,
      p,
      p.current,
      p.turns.length,
      meter.currency,
      FOREGROUND_ROWS,
      "queued",
    )
    progress.written(written)
  }
  const since = new Map(planned.map((p) => [p.index, p.turns[p.current]?.periodStart ?? now]))
  // Only the older turns are kept for the background (the outcomes are rows already).
  for (const p of planned) p.turns = p.turns.slice(0, p.current)
  progress.written(0, latest([...since.values()]))
  const history = writeOlderHistory(database, planned, since, now, meter.currency, progress).then(
    () => progress.finish(),
    (error: unknown) => {
      progress.fail(error)
      throw error
    },
  )
  return { subscriptions: planned.map((p) => p.subscription), history }
}

function latest(instants: readonly Date[]): Date {
  return new Date(Math.max(...instants.map((at) => at.getTime())))
}

/**
 * First the session tables of the current billing periods, which the foreground left queued; then the
 * history before each subscription's current billing period, one billing period at a time, the most
 * recent first (so the dashboard's recent days fill first); then the broadcast's replay through the
 * detectors (which read the weeks before it) and the outcomes.
 */
async function writeOlderHistory(
  database: Database,
  planned: readonly Planned[],
  since: Map<number, Date>,
  now: Date,
  currency: string,
  progress: DemoHistory,
): Promise<void> {
  const periods: { p: Planned; from: number; to: number }[] = []
  for (const p of planned) {
    let from = 0
    for (let i = 1; i <= p.current; i += 1) {
      if (i === p.current || p.turns[i]?.periodStart.getTime() !== p.turns[from]?.periodStart.getTime()) {
        periods.push({ p, from, to: i })
        from = i
      }
    }
  }
  // The current periods' session tables, which the foreground queued, in statements of 5,000 turns (about
  // 0.4 s each on the embedded database, which live turns wait for).
  await drainSessionQueue(database.db, DRAIN_TURNS)
  const startOf = (period: { p: Planned; from: number }) =>
    period.p.turns[period.from]?.periodStart.getTime() ?? 0
  periods.sort((a, b) => startOf(b) - startOf(a) || a.p.index - b.p.index)
  for (const period of periods) {
    const written = await writeTurns(database, period.p, period.from, period.to, currency, BACKGROUND_ROWS)
    // A subscription's first period reaches back past the history's start: all of it is written then.
    since.set(period.p.index, new Date(period.from === 0 ? 0 : startOf(period)))
    progress.written(written, latest([...since.values(), progress.status().startsAt ?? new Date(0)]))
  }
  for (const p of planned) {
    if (p.demo.broadcastDaysAgo !== undefined)
      await replayBroadcast(database, p.subscription.id, broadcastStart(p.demo, now))
  }
  for (const p of planned) await writeOutcomes(database, p.outcomes)
}

/** Every turn end users sent, in time order: the plan's channels, a trickle on the others, a broadcast. */
function demoTraffic(
  demo: DemoSubscription,
  index: number,
  start: Date,
  days: number,
  now: Date,
  periodStart: Date,
): SyntheticTurn[] {
  const inPlan = PLAN_DEFINITIONS[demo.plan].channels
  const base = { start, days, utcOffsetMinutes: demo.utcOffsetMinutes }
  const launched =
    demo.secondAssistant === true
      ? syntheticTraffic({
          ...base,
          start: periodStart,
          days: Math.ceil((now.getTime() - periodStart.getTime()) / DAY),
          channels: inPlan,
          seed: 4000 + index,
          scale: demo.scale,
        })
      : []
  const turns = [
    ...syntheticTraffic({ ...base, channels: inPlan, seed: 1000 + index, scale: demo.scale }),
    ...[...launched].map((turn) => ({ ...turn, chatbotId: "returns-bot" })),
    ...syntheticTraffic({
      ...base,
      channels: CHANNELS.filter((channel) => !inPlan.includes(channel)),
      seed: 2000 + index,
      scale: demo.scale * OUTSIDE_PLAN_SCALE,
    }),
  ]
  if (demo.broadcastDaysAgo !== undefined) turns.push(...broadcastTraffic(broadcastStart(demo, now), index))
  return turns
    .filter((turn) => turn.createdAt.getTime() <= now.getTime())
    .map((turn) =>
      // The traffic model's own rate_limited denials are random; here the limits themselves decide.
      turn.denialReason === "rate_limited" ? { ...turn, denialReason: undefined } : turn,
    )
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
}

/** 18:00 local time, `broadcastDaysAgo` days before now, as an instant. */
function broadcastStart(demo: DemoSubscription, now: Date): Date {
  // 18:00 on the local day `broadcastDaysAgo` before the subscription's local today (not the UTC day's:
  // just after midnight UTC that would put it a day later, less than five days ago in the Americas).
  const offset = demo.utcOffsetMinutes * MINUTE
  const localToday = Math.floor((now.getTime() + offset) / DAY) * DAY
  return new Date(localToday - (demo.broadcastDaysAgo ?? 0) * DAY + 18 * HOUR - offset)
}

/**
 * A WhatsApp broadcast's replies: 90 turns a minute for 12 minutes (over WhatsApp's 60 a minute), then 40 a
 * minute for the next 40, from recipients who mostly never wrote before.
 */
function broadcastTraffic(at: Date, seed: number): SyntheticTurn[] {
  const random = seededRandom(3000 + seed)
  const turns: SyntheticTurn[] = []
  for (let minute = 0; minute < 52; minute += 1) {
    const perMinute = minute < 12 ? 90 : 40
    for (let i = 0; i < perMinute; i += 1) {
      const user = Math.floor(random() * 2500)
      turns.push({
        channel: "whatsapp",
        createdAt: new Date(at.getTime() + minute * MINUTE + Math.floor(random() * MINUTE)),
        rawTokens: Math.max(1, Math.round(180 * Math.exp((random() - 0.5) * 0.8))),
        userIdentifier: `whatsapp-broadcast-${user}`,
        sessionId: `whatsapp-broadcast-${user}`,
        chatbotId: "sales-bot",
      })
    }
  }
  return turns
}

/** The billed demand of the plan's channels from `periodStart` to `until`, rounded down to 10,000 tokens. */
function limitSpentBy(
  traffic: readonly SyntheticTurn[],
  channels: readonly Channel[],
  periodStart: Date,
  until: number,
): number {
  let demand = 0
  for (const turn of traffic) {
    const at = turn.createdAt.getTime()
    if (at < periodStart.getTime() || at >= until || turn.denialReason || !channels.includes(turn.channel))
      continue
    demand += billedTokens(turn.rawTokens, CHANNEL_DEFINITIONS[turn.channel].defaults.multiplierHundredths)
  }
  return Math.max(10_000, Math.floor(demand / 10_000) * 10_000)
}

/** A quota threshold crossed by one turn: the index of the turn in the admitted list and its time. */
interface Crossing {
  index: number
  threshold: number
  at: Date
  periodStart: Date
}

/** A channel's admitted turns in the rolling minute before the latest one: their count and raw tokens. */
class RollingMinute {
  private readonly times: number[] = []
  private readonly raws: number[] = []
  private first = 0
  requests = 0
  rawTokens = 0

  /** Drops the turns `at` no longer sees (60 s or more before it). Times only move forward. */
  advanceTo(at: number): void {
    while (this.first < this.times.length && (this.times[this.first] ?? 0) <= at - MINUTE) {
      this.rawTokens -= this.raws[this.first] ?? 0
      this.requests -= 1
      this.first += 1
    }
  }

  add(at: number, raw: number): void {
    this.times.push(at)
    this.raws.push(raw)
    this.requests += 1
    this.rawTokens += raw
  }
}

/**
 * Decides every turn as the live path would, in time order: the plan, the message length (the traffic's
 * own message_too_long denials), the channel's rolling 60-second request and token limits, then the
 * billing period's quota. Pure; answers the ledger rows and where each quota threshold was crossed.
 */
export function admit(
  traffic: readonly SyntheticTurn[],
  subscription: Subscription,
  channels: readonly Channel[],
): { turns: ImportedTurn[]; crossings: Crossing[] } {
  const windows = new Map<Channel, RollingMinute>()
  const used = new Map<number, number>()
  const turns: ImportedTurn[] = []
  const crossings: Crossing[] = []
  const limit = subscription.tokenLimit
  let period = billingPeriodAt(subscription.periodAnchor, traffic[0]?.createdAt ?? new Date(0))
  for (const turn of traffic) {
    const settings = CHANNEL_DEFINITIONS[turn.channel].defaults
    const at = turn.createdAt.getTime()
    // The traffic is in time order, so the period changes only forward.
    if (at >= period.end.getTime()) period = billingPeriodAt(subscription.periodAnchor, turn.createdAt)
    const periodStart = period.start
    const billed = billedTokens(turn.rawTokens, settings.multiplierHundredths)
    const window = windows.get(turn.channel) ?? new RollingMinute()
    windows.set(turn.channel, window)
    window.advanceTo(at)
    const spent = used.get(periodStart.getTime()) ?? 0
    let denial: DenialReason | undefined
    if (!channels.includes(turn.channel)) denial = "channel_not_in_plan"
    else if (turn.denialReason) denial = turn.denialReason
    else if (
      window.requests + 1 > settings.requestsPerMinute ||
      window.rawTokens + turn.rawTokens > settings.tokensPerMinute
    )
      denial = "rate_limited"
    else if (spent + billed > limit) denial = "quota_exceeded"
    if (denial === undefined) {
      window.add(at, turn.rawTokens)
      used.set(periodStart.getTime(), spent + billed)
      for (const threshold of DEFAULT_QUOTA_THRESHOLDS) {
        const mark = Math.ceil(threshold * limit)
        if (spent < mark && spent + billed >= mark) {
          crossings.push({ index: turns.length, threshold, at: turn.createdAt, periodStart })
        }
      }
    }
    turns.push({
      subscriptionId: subscription.id,
      channel: turn.channel,
      chatbotId: turn.chatbotId,
      sessionId: turn.sessionId,
      userIdentifier: turn.userIdentifier,
      operationType: "chat",
      rawTokens: turn.rawTokens,
      billedTokens: billed,
      multiplierHundredths: settings.multiplierHundredths,
      idempotencyKey: null,
      createdAt: turn.createdAt,
      periodStart,
      ...(denial ? { denialReason: denial } : {}),
    })
  }
  return { turns, crossings }
}

/**
 * Writes turns `from` to `to` of a subscription's history, in statements of at most `rows` rows that end at
 * each quota crossing, so the threshold alert the counter's trigger raises carries the tokens used at that
 * moment; then dates each such alert at the turn that crossed it (the trigger stamps the time of writing,
 * which for a replayed history is now). Answers the number of turns written.
 */
async function writeTurns(
  database: Database,
  planned: Planned,
  from: number,
  to: number,
  currency: string,
  rows: number,
  sessions: ImportOptions["sessions"] = "now",
): Promise<number> {
  const crossings = planned.crossings.filter((c) => c.index >= from && c.index < to)
  const ends = new Set(crossings.map((c) => c.index))
  let batch: ImportedTurn[] = []
  for (let index = from; index < to; index += 1) {
    const turn = planned.turns[index]
    if (turn) batch.push(turn)
    if (batch.length >= rows || ends.has(index)) {
      await insertImportedTurns(database.db, batch, currency, { sessions })
      batch = []
    }
  }
  await insertImportedTurns(database.db, batch, currency, { sessions })
  for (const crossing of crossings) {
    await database.db
      .updateTable("alerts")
      .set({ occurred_at: crossing.at })
      .where("subscription_id", "=", planned.subscription.id)
      .where("type", "=", "quota.threshold_reached")
      // The trigger's key ends in the threshold as numeric text ('1.0' for 100%, where String(1) is '1'), so
      // the threshold is matched as a number.
      .where("dedupe_key", "like", `quota:${Math.floor(crossing.periodStart.getTime() / 1000)}:%`)
      .where(sql`(data->>'threshold')::numeric`, "=", crossing.threshold)
      .execute()
  }
  return to - from
}

/**
 * The broadcast's aftermath, through the real detectors at the instants they would have run: WhatsApp's
 * settled outcomes (replies slow and failing during the first 12 minutes, healthy after), then minute by
 * minute the rate-limit pass every 10 minutes, the health pass every 5 and the spike pass every hour.
 */
async function replayBroadcast(database: Database, subscriptionId: string, at: Date): Promise<void> {
  const db = database.db
  const t0 = at.getTime()
  const whatsapp = (from: number, to: number) =>
    db
      .updateTable("token_usage_logs")
      .where("subscription_id", "=", subscriptionId)
      .where("channel", "=", "whatsapp")
      .where("status", "<>", "denied")
      .where("created_at", ">=", new Date(from))
      .where("created_at", "<", new Date(to))
  // Deterministic per row: a hash of its id picks errors and latencies.
  const pick = (salt: string) =>
    sql.raw(`((('x' || substr(md5(id::text || '${salt}'), 1, 8))::bit(32)::int & 1023) / 1023.0)`)
  await whatsapp(t0 - HOUR, t0 + 2 * HOUR)
    .set({ outcome: "ok", latency_ms: sql<number>`round(600 + 900 * ${pick("l")})` })
    .execute()
  await whatsapp(t0, t0 + 12 * MINUTE)
    .set({
      outcome: sql<string>`case when ${pick("e")} < 0.22 then 'error' else 'ok' end`,
      latency_ms: sql<number>`round(6000 + 9000 * ${pick("l")})`,
    })
    .execute()
  const detectors = {
    rateLimit: new RateLimitDetector(),
    spike: new SpikeDetector(),
    health: new HealthDetector(),
  }
  for (let minute = 1; minute <= 120; minute += 1) {
    const now = t0 + minute * MINUTE
    const passes = [
      ...(minute % 10 === 0 ? [detectors.rateLimit] : []),
      ...(minute % 5 === 0 && minute <= 60 ? [detectors.health] : []),
      ...(minute % 60 === 0 ? [detectors.spike] : []),
    ]
    for (const detector of passes) {
      for (const alert of await detector.detect(db, subscriptionId, now)) await insertAlert(db, alert)
    }
  }
}

/** How end users feel on each channel, added to a uniform score: WhatsApp warmer, Instagram cooler. */
const SENTIMENT_BIAS: Partial<Record<Channel, number>> = { whatsapp: 0.15, instagram: -0.1 }

/**
 * An allowed turn with its channel's model, a token split (prompts are about 70% of a turn's tokens) and a
 * sentiment score (the demo has no messages to score): uniform from -0.55 to 1.05 plus the channel's bias,
 * within -1 to 1, to 4 decimals as consume stores it.
 */
function priced(turn: ImportedTurn, random: () => number): ImportedTurn {
  if (turn.denialReason) return turn
  const inputTokens = Math.round(turn.rawTokens * 0.7)
  const score = random() * 1.6 - 0.55 + (SENTIMENT_BIAS[turn.channel] ?? 0)
  return {
    ...turn,
    model: DEMO_MODELS[turn.channel],
    inputTokens,
    outputTokens: turn.rawTokens - inputTokens,
    sentiment: Math.round(Math.max(-1, Math.min(1, score)) * 10_000) / 10_000,
  }
}

/** A subscription's goals reached and session ratings, as rows. */
interface DemoOutcomes {
  goals: Insertable<DB["outcomes"]>[]
  ratings: Insertable<DB["feedback"]>[]
}

/**
 * Goals reached after allowed turns (each channel at its own rate and value, ten minutes after the turn)
 * and session ratings.
 */
function demoOutcomes(
  subscriptionId: string,
  turns: readonly ImportedTurn[],
  random: () => number,
  now: Date,
  currency: string,
): DemoOutcomes {
  const goals: Insertable<DB["outcomes"]>[] = []
  const ratings: Insertable<DB["feedback"]>[] = []
  for (const turn of turns) {
    if (turn.denialReason) continue
    const goal = DEMO_GOALS[turn.channel]
    const occurredAt = new Date(turn.createdAt.getTime() + 10 * MINUTE)
    if (random() < goal.rate && occurredAt <= now && turn.userIdentifier !== null)
      goals.push({
        subscription_id: subscriptionId,
        name: goal.name,
        value: (goal.value * (0.5 + random())).toFixed(2),
        currency,
        user_identifier: turn.userIdentifier,
        session_id: turn.sessionId,
        occurred_at: occurredAt,
        idempotency_key: `demo-${goals.length}`,
      })
    if (random() < 0.02)
      ratings.push({
        subscription_id: subscriptionId,
        session_id: turn.sessionId,
        channel: turn.channel,
        csat: Math.min(5, Math.max(1, Math.round(3.6 + (random() - 0.4) * 3))),
        created_at: occurredAt > now ? now : occurredAt,
        idempotency_key: `demo-feedback-${ratings.length}`,
      })
  }
  return { goals, ratings }
}

async function writeOutcomes(database: Database, { goals, ratings }: DemoOutcomes): Promise<void> {
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
}
