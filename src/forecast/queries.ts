/**
 * The forecast's and the insights' named queries over one subscription's ledger, range reads on the
 * (subscription_id, created_at) index. Tokens are billed tokens (what the quota counts).
 */
import { type Kysely, sql } from "kysely"
import type { DB } from "../storage/schema.js"

export const DAY_MS = 86_400_000

/**
 * Demand per channel in each whole 24-hour bin [now - (k+1) days, now - k days), k < `days`, as an array
 * whose index 0 is the oldest bin: the billed tokens of allowed turns plus what the turns the quota refused
 * (`quota_exceeded`, `quota_reserved`) would have been billed, `ceil(estimate * multiplier)`. Once a quota
 * is spent its billed tokens stop, so a history of billed tokens alone would project no demand, and no
 * denied demand, a few days later; other denials (rate limits, a disabled channel) are not demand the quota
 * turned away.
 */
export async function dailyDemandTokens(
  db: Kysely<DB>,
  subscriptionId: string,
  now: Date,
  days: number,
): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>()
  if (days <= 0) return out
  const from = new Date(now.getTime() - days * DAY_MS)
  const result = await sql<{ channel: string; ago: number; tokens: string | number }>`
    select channel,
      (ceil(extract(epoch from (${now}::timestamptz - created_at)) * 1000 / ${DAY_MS}) - 1)::int as ago,
      sum(case when status <> 'denied' then billed_tokens
        else ceil(estimated_tokens * token_multiplier)::bigint end) as tokens
    from token_usage_logs
    where subscription_id = ${subscriptionId} and created_at >= ${from} and created_at < ${now}
      and (status <> 'denied' or denial_reason in ('quota_exceeded', 'quota_reserved'))
    group by 1, 2`.execute(db)
  for (const row of result.rows) {
    const series = out.get(row.channel) ?? Array.from({ length: days }, () => 0)
    const index = days - 1 - row.ago
    if (index >= 0 && index < days) series[index] = (series[index] ?? 0) + Number(row.tokens)
    out.set(row.channel, series)
  }
  return out
}

/** Billed tokens per channel of turns created in [from, to]. */
export async function billedTokensByChannel(
  db: Kysely<DB>,
  subscriptionId: string,
  from: Date,
  to: Date,
): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom("token_usage_logs")
    .select(["channel", (eb) => eb.fn.sum<string | number>("billed_tokens").as("tokens")])
    .where("subscription_id", "=", subscriptionId)
    .where("created_at", ">=", from)
    .where("created_at", "<=", to)
    .where("status", "<>", "denied")
    .groupBy("channel")
    .execute()
  return new Map(rows.map((r) => [r.channel, Number(r.tokens)]))
}

export interface ChannelActivity {
  channel: string
  /** Allowed turns and their billed tokens over the last 30 days. */
  messages: number
  tokens: number
  /** channel_not_in_plan denials over the last 30 days, and how many distinct end users hit them. */
  notInPlanDenials: number
  notInPlanUsers: number
  /** All turns and rate_limited denials in the last 7 days, and in the 7 before. */
  turnsLastWeek: number
  rateLimitedLastWeek: number
  turnsWeekBefore: number
  rateLimitedWeekBefore: number
}

/** The first turn refused with quota_exceeded in [from, to], or null. */
export async function firstQuotaRefusal(
  db: Kysely<DB>,
  subscriptionId: string,
  from: Date,
  to: Date,
): Promise<Date | null> {
  const row = await db
    .selectFrom("token_usage_logs")
    .select((eb) => eb.fn.min("created_at").as("at"))
    .where("subscription_id", "=", subscriptionId)
    .where("created_at", ">=", from)
    .where("created_at", "<=", to)
    .where("denial_reason", "=", "quota_exceeded")
    .executeTakeFirst()
  return row?.at ? new Date(row.at) : null
}

/** The instants {@link channelActivity} counts from: local midnights in the subscription's timezone. */
export interface ActivityWindow {
  /** Start of the 30 local days (today so far included). */
  from: Date
  /** Start of the last 7 local days, and of the 7 before them. */
  lastWeek: Date
  weekBefore: Date
  to: Date
}

/**
 * Per channel, the 30 local days of activity the insights rest on: the same days, counted the same way,
 * as the analytics API's default period, so an insight's figures match the Overview's for those days.
 */
export async function channelActivity(
  db: Kysely<DB>,
  subscriptionId: string,
  window: ActivityWindow,
): Promise<ChannelActivity[]> {
  const { from: d30, lastWeek: d7, weekBefore: d14, to: now } = window
  const result = await sql<Record<string, string | number>>`
    select channel,
      count(*) filter (where status <> 'denied') as messages,
      coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0) as tokens,
      count(*) filter (where denial_reason = 'channel_not_in_plan') as not_in_plan,
      count(distinct user_identifier) filter (where denial_reason = 'channel_not_in_plan') as not_in_plan_users,
      count(*) filter (where created_at >= ${d7}) as turns_last_week,
      count(*) filter (where created_at >= ${d7} and denial_reason = 'rate_limited') as rate_limited_last_week,
      count(*) filter (where created_at >= ${d14} and created_at < ${d7}) as turns_week_before,
      count(*) filter (where created_at >= ${d14} and created_at < ${d7} and denial_reason = 'rate_limited')
        as rate_limited_week_before
    from token_usage_logs
    where subscription_id = ${subscriptionId} and created_at >= ${d30} and created_at <= ${now}
    group by channel
    order by channel`.execute(db)
  return result.rows.map((r) => ({
    channel: String(r.channel),
    messages: Number(r.messages),
    tokens: Number(r.tokens),
    notInPlanDenials: Number(r.not_in_plan),
    notInPlanUsers: Number(r.not_in_plan_users),
    turnsLastWeek: Number(r.turns_last_week),
    rateLimitedLastWeek: Number(r.rate_limited_last_week),
    turnsWeekBefore: Number(r.turns_week_before),
    rateLimitedWeekBefore: Number(r.rate_limited_week_before),
  }))
}
