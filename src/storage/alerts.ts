/**
 * The alerts repository: alerts (events), webhook endpoints, the delivery outbox and alert settings.
 * Every function takes the Kysely instance it runs on, so callers choose the tenant scope (row level
 * security) and the transaction.
 */
import { type Kysely, sql } from "kysely"
import type { DB } from "./schema.js"

export interface AlertRow {
  id: string
  seq: number
  subscriptionId: string
  type: string
  channel: string | null
  data: Record<string, unknown>
  occurredAt: Date
}

export interface NewAlert {
  subscriptionId: string
  type: string
  channel: string | null
  dedupeKey: string
  data: Record<string, unknown>
  occurredAt: Date
}

/** Inserts an alert unless one with its dedupe key exists; returns the new id, or null for a duplicate. */
export async function insertAlert(db: Kysely<DB>, alert: NewAlert): Promise<string | null> {
  const row = await db
    .insertInto("alerts")
    .values({
      subscription_id: alert.subscriptionId,
      type: alert.type,
      channel: alert.channel,
      dedupe_key: alert.dedupeKey,
      data: JSON.stringify(alert.data),
      occurred_at: alert.occurredAt,
    })
    .onConflict((oc) => oc.columns(["subscription_id", "dedupe_key"]).doNothing())
    .returning("id")
    .executeTakeFirst()
  return row?.id ?? null
}

function toAlert(row: {
  id: string
  seq: number
  subscription_id: string
  type: string
  channel: string | null
  data: Record<string, unknown>
  occurred_at: Date
}): AlertRow {
  return {
    id: row.id,
    seq: Number(row.seq),
    subscriptionId: row.subscription_id,
    type: row.type,
    channel: row.channel,
    data: row.data,
    occurredAt: row.occurred_at,
  }
}

/** A subscription's alerts, newest first, excluding test events; `beforeSeq` pages backwards. */
export async function listAlerts(
  db: Kysely<DB>,
  subscriptionId: string,
  options: { limit: number; beforeSeq?: number | undefined; type?: string | undefined },
): Promise<AlertRow[]> {
  let query = db
    .selectFrom("alerts")
    .select(["id", "seq", "subscription_id", "type", "channel", "data", "occurred_at"])
    .where("subscription_id", "=", subscriptionId)
    .where("type", "<>", "webhook.test")
  if (options.beforeSeq !== undefined) query = query.where("seq", "<", options.beforeSeq)
  if (options.type !== undefined) query = query.where("type", "=", options.type)
  const rows = await query.orderBy("seq", "desc").limit(options.limit).execute()
  return rows.map(toAlert)
}

/** The most recent alert of one of `types` for a subscription's channel: the open/closed state of a pair. */
export async function latestAlertOf(
  db: Kysely<DB>,
  subscriptionId: string,
  channel: string,
  types: readonly string[],
): Promise<AlertRow | undefined> {
  const row = await db
    .selectFrom("alerts")
    .select(["id", "seq", "subscription_id", "type", "channel", "data", "occurred_at"])
    .where("subscription_id", "=", subscriptionId)
    .where("channel", "=", channel)
    .where("type", "in", [...types])
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst()
  return row ? toAlert(row) : undefined
}

export interface EndpointRow {
  id: string
  subscriptionId: string
  url: string
  description: string | null
  eventTypes: string[]
  secret: string
  enabled: boolean
  createdAt: Date
  updatedAt: Date
}

const ENDPOINT_COLUMNS = [
  "id",
  "subscription_id",
  "url",
  "description",
  "event_types",
  "secret",
  "enabled",
  "created_at",
  "updated_at",
] as const

function toEndpoint(row: {
  id: string
  subscription_id: string
  url: string
  description: string | null
  event_types: string[]
  secret: string
  enabled: boolean
  created_at: Date
  updated_at: Date
}): EndpointRow {
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    secret: row.secret,
    enabled: row.enabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

export async function insertEndpoint(
  db: Kysely<DB>,
  endpoint: {
    subscriptionId: string
    url: string
    description: string | null
    eventTypes: string[]
    secret: string
    enabled: boolean
  },
): Promise<EndpointRow> {
  const row = await db
    .insertInto("webhook_endpoints")
    .values({
      subscription_id: endpoint.subscriptionId,
      url: endpoint.url,
      description: endpoint.description,
      event_types: endpoint.eventTypes,
      secret: endpoint.secret,
      enabled: endpoint.enabled,
    })
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirstOrThrow()
  return toEndpoint(row)
}

export async function listEndpoints(db: Kysely<DB>, subscriptionId: string): Promise<EndpointRow[]> {
  const rows = await db
    .selectFrom("webhook_endpoints")
    .select(ENDPOINT_COLUMNS)
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at")
    .orderBy("id")
    .execute()
  return rows.map(toEndpoint)
}

export async function findEndpoint(
  db: Kysely<DB>,
  subscriptionId: string,
  endpointId: string,
): Promise<EndpointRow | undefined> {
  const row = await db
    .selectFrom("webhook_endpoints")
    .select(ENDPOINT_COLUMNS)
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", endpointId)
    .executeTakeFirst()
  return row ? toEndpoint(row) : undefined
}

export async function updateEndpoint(
  db: Kysely<DB>,
  subscriptionId: string,
  endpointId: string,
  patch: { url?: string; description?: string | null; eventTypes?: string[]; enabled?: boolean },
): Promise<EndpointRow | undefined> {
  const row = await db
    .updateTable("webhook_endpoints")
    .set({
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.eventTypes !== undefined ? { event_types: patch.eventTypes } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
      updated_at: sql`now()`,
    })
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", endpointId)
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirst()
  return row ? toEndpoint(row) : undefined
}

export async function deleteEndpoint(
  db: Kysely<DB>,
  subscriptionId: string,
  endpointId: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom("webhook_endpoints")
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", endpointId)
    .executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}

export async function insertDelivery(
  db: Kysely<DB>,
  delivery: { alertId: string; endpointId: string; subscriptionId: string },
): Promise<number> {
  const row = await db
    .insertInto("webhook_deliveries")
    .values({
      alert_id: delivery.alertId,
      endpoint_id: delivery.endpointId,
      subscription_id: delivery.subscriptionId,
    })
    .returning("id")
    .executeTakeFirstOrThrow()
  return Number(row.id)
}

export interface DeliveryLogRow {
  id: number
  alertId: string
  type: string
  status: string
  attempts: number
  nextAttemptAt: Date | null
  lastAttemptAt: Date | null
  lastStatusCode: number | null
  lastError: string | null
  deliveredAt: Date | null
  createdAt: Date
}

/** An endpoint's deliveries, newest first. */
export async function listDeliveries(
  db: Kysely<DB>,
  subscriptionId: string,
  endpointId: string,
  limit: number,
): Promise<DeliveryLogRow[]> {
  const rows = await db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("alerts as a", "a.id", "d.alert_id")
    .select([
      "d.id",
      "d.alert_id",
      "a.type",
      "d.status",
      "d.attempts",
      "d.next_attempt_at",
      "d.last_attempt_at",
      "d.last_status_code",
      "d.last_error",
      "d.delivered_at",
      "d.created_at",
    ])
    .where("d.subscription_id", "=", subscriptionId)
    .where("d.endpoint_id", "=", endpointId)
    .orderBy("d.id", "desc")
    .limit(limit)
    .execute()
  return rows.map((r) => ({
    id: Number(r.id),
    alertId: r.alert_id,
    type: r.type,
    status: r.status,
    attempts: r.attempts,
    // '-infinity' (due at once) comes back as -Infinity or an invalid Date, depending on the driver.
    nextAttemptAt:
      r.status === "pending" &&
      r.next_attempt_at instanceof Date &&
      Number.isFinite(r.next_attempt_at.getTime())
        ? r.next_attempt_at
        : null,
    lastAttemptAt: r.last_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    createdAt: r.created_at,
  }))
}

/** A delivery a worker has leased, with what it needs to send it. */
export interface ClaimedDelivery {
  id: number
  attempts: number
  alertId: string
  subscriptionId: string
  type: string
  channel: string | null
  data: Record<string, unknown>
  occurredAt: Date
  url: string
  secret: string
}

/**
 * Leases up to `limit` due deliveries for `owner` until `now + leaseMs`, oldest first, taking per endpoint
 * only the oldest pending one (so one endpoint's events arrive in order, and a failing one holds back the
 * ones after it until it is delivered or given up). Rows locked by another worker's claim are skipped, and
 * a leased row is invisible to other claims until its lease runs out. Increments `attempts`.
 */
export async function claimDeliveries(
  db: Kysely<DB>,
  options: { now: Date; owner: string; leaseMs: number; limit: number },
): Promise<ClaimedDelivery[]> {
  const leaseUntil = new Date(options.now.getTime() + options.leaseMs)
  const result = await sql<{
    id: string | number
    attempts: number
    alert_id: string
    subscription_id: string
    type: string
    channel: string | null
    data: Record<string, unknown>
    occurred_at: Date
    url: string
    secret: string
  }>`
    with candidates as (
      select d.id from webhook_deliveries d
      where d.status = 'pending' and d.next_attempt_at <= ${options.now}
        and (d.lease_until is null or d.lease_until <= ${options.now})
        and not exists (
          select 1 from webhook_deliveries e
          where e.endpoint_id = d.endpoint_id and e.status = 'pending' and e.id < d.id)
      order by d.id
      limit ${options.limit}
      for update skip locked
    ), claimed as (
      update webhook_deliveries d
      set lease_owner = ${options.owner}, lease_until = ${leaseUntil}, attempts = d.attempts + 1,
          last_attempt_at = ${options.now}
      from candidates where d.id = candidates.id
      returning d.id, d.attempts, d.alert_id, d.endpoint_id
    )
    select c.id, c.attempts, c.alert_id, a.subscription_id, a.type, a.channel, a.data, a.occurred_at,
      e.url, e.secret
    from claimed c
    join alerts a on a.id = c.alert_id
    join webhook_endpoints e on e.id = c.endpoint_id
    order by c.id`.execute(db)
  return result.rows.map((r) => ({
    id: Number(r.id),
    attempts: r.attempts,
    alertId: r.alert_id,
    subscriptionId: r.subscription_id,
    type: r.type,
    channel: r.channel,
    data: r.data,
    occurredAt: r.occurred_at,
    url: r.url,
    secret: r.secret,
  }))
}

/**
 * Records an attempt's result, only while `owner` still holds the lease (a worker whose lease ran out
 * must not overwrite the newer holder's result). Returns whether it was recorded.
 */
export async function recordAttempt(
  db: Kysely<DB>,
  attempt: {
    id: number
    owner: string
    status: "pending" | "delivered" | "failed"
    statusCode: number | null
    error: string | null
    now: Date
    nextAttemptAt: Date | null
  },
): Promise<boolean> {
  const result = await db
    .updateTable("webhook_deliveries")
    .set({
      status: attempt.status,
      lease_owner: null,
      lease_until: null,
      last_status_code: attempt.statusCode,
      last_error: attempt.error,
      ...(attempt.status === "delivered" ? { delivered_at: attempt.now } : {}),
      ...(attempt.nextAttemptAt ? { next_attempt_at: attempt.nextAttemptAt } : {}),
    })
    .where("id", "=", attempt.id)
    .where("lease_owner", "=", attempt.owner)
    .where("status", "=", "pending")
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}

export async function getQuotaThresholds(
  db: Kysely<DB>,
  subscriptionId: string,
): Promise<number[] | undefined> {
  const row = await db
    .selectFrom("alert_settings")
    .select("quota_thresholds")
    .where("subscription_id", "=", subscriptionId)
    .executeTakeFirst()
  return row?.quota_thresholds.map(Number)
}

export async function setQuotaThresholds(
  db: Kysely<DB>,
  subscriptionId: string,
  thresholds: number[],
): Promise<void> {
  const values = thresholds.map(String)
  await db
    .insertInto("alert_settings")
    .values({ subscription_id: subscriptionId, quota_thresholds: values })
    .onConflict((oc) =>
      oc.column("subscription_id").doUpdateSet({ quota_thresholds: values, updated_at: sql`now()` }),
    )
    .execute()
}
