/** Subscriptions and their per-channel overrides. */
import { type Kysely, type Selectable, sql } from "kysely"
import { hundredthsToDecimalString, multiplierToHundredths } from "../core/billing.js"
import { DEFAULT_QUOTA_RESERVE_MIN_PRIORITY } from "../core/capacity.js"
import type { Channel } from "../core/channels.js"
import type { ChannelOverrides, SubscriptionStatus } from "../core/decision.js"
import { OmnimeterError } from "../core/errors.js"
import type { Plan } from "../core/plans.js"
import type { Subscription } from "../core/subscription.js"
import type { ChannelConfigurationsTable, DB, SubscriptionsTable } from "./schema.js"

const UNIQUE_VIOLATION = "23505"

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const e = error as { code?: string; constraint?: string } | undefined
  return e?.code === UNIQUE_VIOLATION && (constraint === undefined || e.constraint === constraint)
}

function toSubscription(row: Selectable<SubscriptionsTable>): Subscription {
  return {
    id: row.id,
    entityId: row.entity_id,
    entityType: row.entity_type,
    plan: row.plan as Plan,
    tokenLimit: Number(row.token_limit),
    status: row.status as SubscriptionStatus,
    timezone: row.timezone,
    periodAnchor: row.period_anchor,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    requestsPerMinute: row.capacity_requests_per_minute ?? null,
    tokensPerMinute: row.capacity_tokens_per_minute ?? null,
    priorityCurve: row.priority_curve ? row.priority_curve.map(Number) : null,
    quotaReservePercent: Number(row.quota_reserve_percent ?? 0),
    quotaReserveMinPriority: Number(row.quota_reserve_min_priority ?? DEFAULT_QUOTA_RESERVE_MIN_PRIORITY),
  }
}

function toOverrides(row: Partial<Selectable<ChannelConfigurationsTable>>): ChannelOverrides {
  return {
    enabled: row.enabled ?? null,
    requestsPerMinute: row.requests_per_minute ?? null,
    tokensPerMinute: row.tokens_per_minute ?? null,
    maxMessageLength: row.max_message_length ?? null,
    multiplierHundredths:
      row.token_multiplier == null ? null : (multiplierToHundredths(row.token_multiplier) ?? null),
    priority: row.priority ?? null,
  }
}

/** The priority-aware admission settings of a subscription (issue 13), as stored. */
export interface AdmissionSettings {
  requestsPerMinute?: number | null
  tokensPerMinute?: number | null
  priorityCurve?: number[] | null
  quotaReservePercent?: number
  quotaReserveMinPriority?: number
}

function admissionColumns(settings: AdmissionSettings) {
  return {
    ...(settings.requestsPerMinute !== undefined
      ? { capacity_requests_per_minute: settings.requestsPerMinute }
      : {}),
    ...(settings.tokensPerMinute !== undefined
      ? { capacity_tokens_per_minute: settings.tokensPerMinute }
      : {}),
    ...(settings.priorityCurve !== undefined ? { priority_curve: settings.priorityCurve } : {}),
    ...(settings.quotaReservePercent !== undefined
      ? { quota_reserve_percent: settings.quotaReservePercent }
      : {}),
    ...(settings.quotaReserveMinPriority !== undefined
      ? { quota_reserve_min_priority: settings.quotaReserveMinPriority }
      : {}),
  }
}

export interface NewSubscription extends AdmissionSettings {
  entityId: string
  entityType: string
  plan: Plan
  tokenLimit: number
  timezone: string
  periodAnchor: Date
  status?: SubscriptionStatus
}

export async function insertSubscription(db: Kysely<DB>, input: NewSubscription): Promise<Subscription> {
  try {
    const row = await db
      .insertInto("subscriptions")
      .values({
        entity_id: input.entityId,
        entity_type: input.entityType,
        plan: input.plan,
        token_limit: input.tokenLimit,
        timezone: input.timezone,
        period_anchor: input.periodAnchor,
        status: input.status ?? "active",
        ...admissionColumns(input),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    return toSubscription(row)
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new OmnimeterError(
        "conflict",
        `A subscription for ${input.entityType} ${input.entityId} already exists.`,
        {
          entityId: input.entityId,
          entityType: input.entityType,
        },
      )
    }
    throw error
  }
}

export async function findSubscriptionById(db: Kysely<DB>, id: string): Promise<Subscription | undefined> {
  const row = await db.selectFrom("subscriptions").selectAll().where("id", "=", id).executeTakeFirst()
  return row && toSubscription(row)
}

export async function findSubscriptionByEntity(
  db: Kysely<DB>,
  entityType: string,
  entityId: string,
): Promise<Subscription | undefined> {
  const row = await db
    .selectFrom("subscriptions")
    .selectAll()
    .where("entity_type", "=", entityType)
    .where("entity_id", "=", entityId)
    .executeTakeFirst()
  return row && toSubscription(row)
}

/** A subscription with the overrides of each channel it has configured (absent: none). */
export interface SubscriptionContexts {
  subscription: Subscription
  overrides: Partial<Record<Channel, ChannelOverrides>>
}

/** The subscription of an entity with every channel's overrides, in one read; undefined when not found. */
export async function findSubscriptionContexts(
  db: Kysely<DB>,
  entityType: string,
  entityId: string,
): Promise<SubscriptionContexts | undefined> {
  const result = await sql<TurnContextRow>`
    select * from omnimeter_turn_contexts(${entityType}, ${entityId})
  `.execute(db)
  return contextsOf(result.rows)
}

/**
 * The contexts of many entities in one read (the same function per entity), keyed by
 * {@link entityContextsKey}; an entity without a subscription is absent.
 */
export async function findSubscriptionContextsOf(
  db: Kysely<DB>,
  entities: ReadonlyArray<{ entityType: string; entityId: string }>,
): Promise<Map<string, SubscriptionContexts>> {
  const found = new Map<string, SubscriptionContexts>()
  if (entities.length === 0) return found
  const list = JSON.stringify(entities.map((e) => ({ t: e.entityType, i: e.entityId })))
  const result = await sql<TurnContextRow>`
    select c.* from jsonb_to_recordset(${list}::jsonb) as e(t text, i text)
    cross join lateral omnimeter_turn_contexts(e.t, e.i) as c
  `.execute(db)
  const rowsByEntity = new Map<string, TurnContextRow[]>()
  for (const row of result.rows) {
    const key = entityContextsKey(row.entity_type, row.entity_id)
    const rows = rowsByEntity.get(key) ?? []
    rows.push(row)
    rowsByEntity.set(key, rows)
  }
  for (const [key, rows] of rowsByEntity) {
    const contexts = contextsOf(rows)
    if (contexts) found.set(key, contexts)
  }
  return found
}

/** The key of {@link findSubscriptionContextsOf}'s answer. */
export function entityContextsKey(entityType: string, entityId: string): string {
  return `${entityType}\u0000${entityId}`
}

type TurnContextRow = Selectable<SubscriptionsTable> &
  Omit<Selectable<ChannelConfigurationsTable>, "channel"> & { channel: Channel | null }

function contextsOf(rows: readonly TurnContextRow[]): SubscriptionContexts | undefined {
  const [first] = rows
  if (!first) return undefined
  const overrides: Partial<Record<Channel, ChannelOverrides>> = {}
  for (const { channel, ...row } of rows) if (channel !== null) overrides[channel] = toOverrides(row)
  return { subscription: toSubscription(first), overrides }
}

export interface SubscriptionPatch extends AdmissionSettings {
  plan?: Plan
  tokenLimit?: number
  status?: SubscriptionStatus
  timezone?: string
}

export async function updateSubscription(
  db: Kysely<DB>,
  id: string,
  patch: SubscriptionPatch,
  now: Date,
): Promise<Subscription | undefined> {
  const row = await db
    .updateTable("subscriptions")
    .set({
      ...(patch.plan !== undefined ? { plan: patch.plan } : {}),
      ...(patch.tokenLimit !== undefined ? { token_limit: patch.tokenLimit } : {}),
      ...(patch.status !== undefined ? { status: patch.status } : {}),
      ...(patch.timezone !== undefined ? { timezone: patch.timezone } : {}),
      ...admissionColumns(patch),
      updated_at: now,
    })
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst()
  return row && toSubscription(row)
}

export async function listChannelOverrides(
  db: Kysely<DB>,
  subscriptionId: string,
): Promise<Partial<Record<Channel, ChannelOverrides>>> {
  const rows = await db
    .selectFrom("channel_configurations")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .execute()
  return Object.fromEntries(rows.map((row) => [row.channel, toOverrides(row)]))
}

/** Sets the given overrides (a null clears one back to the default); untouched fields keep their value. */
export async function upsertChannelOverrides(
  db: Kysely<DB>,
  subscriptionId: string,
  channel: Channel,
  patch: ChannelOverrides,
  now: Date,
): Promise<void> {
  const values: Partial<Record<keyof ChannelConfigurationsTable, unknown>> = {}
  if (patch.enabled !== undefined) values.enabled = patch.enabled
  if (patch.requestsPerMinute !== undefined) values.requests_per_minute = patch.requestsPerMinute
  if (patch.tokensPerMinute !== undefined) values.tokens_per_minute = patch.tokensPerMinute
  if (patch.maxMessageLength !== undefined) values.max_message_length = patch.maxMessageLength
  if (patch.multiplierHundredths !== undefined) {
    values.token_multiplier =
      patch.multiplierHundredths === null ? null : hundredthsToDecimalString(patch.multiplierHundredths)
  }
  if (patch.priority !== undefined) values.priority = patch.priority
  const set = { ...values, updated_at: now } as Partial<Selectable<ChannelConfigurationsTable>>
  await db
    .insertInto("channel_configurations")
    .values({ subscription_id: subscriptionId, channel, ...set } as never)
    .onConflict((oc) => oc.columns(["subscription_id", "channel"]).doUpdateSet(set as never))
    .execute()
}

/** Subscriptions in id order, `limit` at a time, after the `after` id (keyset pagination). */
export async function listSubscriptions(
  db: Kysely<DB>,
  limit: number,
  after?: string,
): Promise<Subscription[]> {
  let query = db.selectFrom("subscriptions").selectAll().orderBy("id").limit(limit)
  if (after) query = query.where("id", ">", after)
  return (await query.execute()).map(toSubscription)
}
