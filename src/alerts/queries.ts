/**
 * The detectors' named queries over the ledger (token_usage_logs), each a range read of one subscription
 * on the (subscription_id, created_at) index. Read-only; they never touch the hot path's tables' locks.
 */
import { type Kysely, sql } from "kysely"
import type { HourVolume } from "../core/alerts.js"
import type { DB } from "../storage/schema.js"

/** Active subscriptions, in id order, a page at a time. */
export async function activeSubscriptionIds(
  db: Kysely<DB>,
  after: string | null,
  limit: number,
): Promise<string[]> {
  let query = db.selectFrom("subscriptions").select("id").where("status", "=", "active")
  if (after) query = query.where("id", ">", after)
  const rows = await query.orderBy("id").limit(limit).execute()
  return rows.map((r) => r.id)
}

export interface MinuteDenials {
  channel: string
  minuteStart: Date
  denials: number
}

/** rate_limited denials per channel and whole minute in [from, to). */
export async function rateLimitDenialsByMinute(
  db: Kysely<DB>,
  subscriptionId: string,
  from: Date,
  to: Date,
): Promise<MinuteDenials[]> {
  const result = await sql<{ channel: string; minute_start: Date; denials: string | number }>`
    select channel, date_trunc('minute', created_at) as minute_start, count(*) as denials
    from token_usage_logs
    where subscription_id = ${subscriptionId} and created_at >= ${from} and created_at < ${to}
      and status = 'denied' and denial_reason = 'rate_limited'
    group by 1, 2
    order by 2, 1`.execute(db)
  return result.rows.map((r) => ({
    channel: r.channel,
    minuteStart: new Date(r.minute_start),
    denials: Number(r.denials),
  }))
}

export interface MinuteShedding {
  channel: string
  minuteStart: Date
  /** Turns refused for a higher priority's sake: capacity_shed and quota_reserved denials. */
  shed: number
  /** Every turn of the channel in the minute, allowed or denied. */
  turns: number
}

/** Shed turns and all turns per channel and whole minute in [from, to), for minutes with shedding. */
export async function sheddingByMinute(
  db: Kysely<DB>,
  subscriptionId: string,
  from: Date,
  to: Date,
): Promise<MinuteShedding[]> {
  const result = await sql<{
    channel: string
    minute_start: Date
    shed: string | number
    turns: string | number
  }>`
    select channel, date_trunc('minute', created_at) as minute_start,
      count(*) filter (where denial_reason in ('capacity_shed', 'quota_reserved')) as shed, count(*) as turns
    from token_usage_logs
    where subscription_id = ${subscriptionId} and created_at >= ${from} and created_at < ${to}
    group by 1, 2
    having count(*) filter (where denial_reason in ('capacity_shed', 'quota_reserved')) > 0
    order by 2, 1`.execute(db)
  return result.rows.map((r) => ({
    channel: r.channel,
    minuteStart: new Date(r.minute_start),
    shed: Number(r.shed),
    turns: Number(r.turns),
  }))
}

/** Allowed turns (messages) and billed tokens per channel in each of `windows` ([start, end) pairs). */
export async function volumeInWindows(
  db: Kysely<DB>,
  subscriptionId: string,
  windows: readonly { start: Date; end: Date }[],
): Promise<Map<string, HourVolume>[]> {
  const out = windows.map(() => new Map<string, HourVolume>())
  if (windows.length === 0) return out
  const parts = windows.map(
    (w, i) => sql`
      select ${i}::int as w, channel, count(*) as messages, coalesce(sum(billed_tokens), 0) as tokens
      from token_usage_logs
      where subscription_id = ${subscriptionId} and created_at >= ${w.start} and created_at < ${w.end}
        and status <> 'denied'
      group by channel`,
  )
  const result = await sql<{
    w: number
    channel: string
    messages: string | number
    tokens: string | number
  }>`${sql.join(parts, sql` union all `)}`.execute(db)
  for (const row of result.rows) {
    out[row.w]?.set(row.channel, { messages: Number(row.messages), tokens: Number(row.tokens) })
  }
  return out
}

/** When the subscription's first ledger row was written (imports included), or null. */
export async function firstTurnAt(db: Kysely<DB>, subscriptionId: string): Promise<Date | null> {
  const row = await db
    .selectFrom("token_usage_logs")
    .select("created_at")
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at")
    .limit(1)
    .executeTakeFirst()
  return row ? new Date(row.created_at) : null
}

export interface SettledOutcome {
  channel: string
  outcome: "ok" | "error"
  latencyMs: number | null
}

/**
 * Turns settled in (from, to] with a reported outcome. Settlement follows creation within minutes, so the
 * index range starts `lookbackMs` before `from`.
 */
export async function settledOutcomes(
  db: Kysely<DB>,
  subscriptionId: string,
  from: Date,
  to: Date,
  lookbackMs = 3_600_000,
): Promise<SettledOutcome[]> {
  const rows = await db
    .selectFrom("token_usage_logs")
    .select(["channel", "outcome", "latency_ms"])
    .where("subscription_id", "=", subscriptionId)
    .where("created_at", ">=", new Date(from.getTime() - lookbackMs))
    .where("created_at", "<=", to)
    .where("settled_at", ">", from)
    .where("settled_at", "<=", to)
    .where("outcome", "is not", null)
    .execute()
  return rows.map((r) => ({
    channel: r.channel,
    outcome: r.outcome as "ok" | "error",
    latencyMs: r.latency_ms,
  }))
}
