/**
 * The alerts service: webhook endpoints (create with a secret shown once, list, update, delete), their
 * delivery logs, test events, the alert list and per-subscription alert settings. Handlers call it with
 * the caller's tenant scope; row level security holds the line beneath.
 */
import type { Kysely } from "kysely"
import {
  ALERT_TYPES,
  type AlertType,
  DEFAULT_QUOTA_THRESHOLDS,
  normaliseThresholds,
  WEBHOOK_TEST_TYPE,
} from "../core/alerts.js"
import type { Clock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import type { Subscription } from "../core/subscription.js"
import type { TenantScope } from "../core/tenant.js"
import {
  type AlertRow,
  type DeliveryLogRow,
  deleteEndpoint,
  type EndpointRow,
  findEndpoint,
  getQuotaThresholds,
  insertAlert,
  insertDelivery,
  insertEndpoint,
  listAlerts,
  listDeliveries,
  listEndpoints,
  setQuotaThresholds,
  updateEndpoint,
} from "../storage/alerts.js"
import type { Database } from "../storage/database.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import { newWebhookSecret } from "./signature.js"
import { webhookUrlProblem } from "./url-guard.js"

export interface EndpointInput {
  url: string
  description?: string | null | undefined
  eventTypes: readonly string[]
  enabled?: boolean | undefined
}

export interface EndpointPatch {
  url?: string | undefined
  description?: string | null | undefined
  eventTypes?: readonly string[] | undefined
  enabled?: boolean | undefined
}

/** An endpoint without its secret: what lists and updates show. */
export type Endpoint = Omit<EndpointRow, "secret">

export interface AlertServiceOptions {
  database: Database
  clock: Clock
  /** Whether receivers on loopback and private networks are allowed (OMNIMETER_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivateNetworks: boolean
}

function withoutSecret(row: EndpointRow): Endpoint {
  const { secret: _secret, ...rest } = row
  return rest
}

export class AlertService {
  constructor(private readonly options: AlertServiceOptions) {}

  /** Creates an endpoint; the answer holds the signing secret, which is never shown again. */
  async createEndpoint(
    subscriptionId: string,
    input: EndpointInput,
    scope?: TenantScope,
  ): Promise<EndpointRow> {
    const url = this.checkUrl(input.url)
    const eventTypes = this.checkEventTypes(input.eventTypes)
    return this.inScope(scope, subscriptionId, (db) =>
      insertEndpoint(db, {
        subscriptionId,
        url,
        description: input.description ?? null,
        eventTypes,
        secret: newWebhookSecret(),
        enabled: input.enabled ?? true,
      }),
    )
  }

  async listEndpoints(subscriptionId: string, scope?: TenantScope): Promise<Endpoint[]> {
    return this.inScope(scope, subscriptionId, async (db) =>
      (await listEndpoints(db, subscriptionId)).map(withoutSecret),
    )
  }

  async updateEndpoint(
    subscriptionId: string,
    endpointId: string,
    patch: EndpointPatch,
    scope?: TenantScope,
  ): Promise<Endpoint> {
    const url = patch.url !== undefined ? this.checkUrl(patch.url) : undefined
    const eventTypes = patch.eventTypes !== undefined ? this.checkEventTypes(patch.eventTypes) : undefined
    return this.inScope(scope, subscriptionId, async (db) => {
      const row = await updateEndpoint(db, subscriptionId, endpointId, {
        ...(url !== undefined ? { url } : {}),
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(eventTypes !== undefined ? { eventTypes } : {}),
        ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
      })
      if (!row) throw endpointNotFound(endpointId)
      return withoutSecret(row)
    })
  }

  /** Deletes an endpoint and its delivery log; undelivered events for it are dropped. */
  async deleteEndpoint(subscriptionId: string, endpointId: string, scope?: TenantScope): Promise<void> {
    await this.inScope(scope, subscriptionId, async (db) => {
      if (!(await deleteEndpoint(db, subscriptionId, endpointId))) throw endpointNotFound(endpointId)
    })
  }

  async listDeliveries(
    subscriptionId: string,
    endpointId: string,
    limit: number,
    scope?: TenantScope,
  ): Promise<DeliveryLogRow[]> {
    return this.inScope(scope, subscriptionId, async (db) => {
      if (!(await findEndpoint(db, subscriptionId, endpointId))) throw endpointNotFound(endpointId)
      return listDeliveries(db, subscriptionId, endpointId, limit)
    })
  }

  /**
   * Queues a `webhook.test` event for one endpoint (enabled or not), through the same outbox and worker as
   * real events. Returns the event id.
   */
  async sendTestEvent(subscriptionId: string, endpointId: string, scope?: TenantScope): Promise<string> {
    const now = this.options.clock.now()
    return this.inScope(scope, subscriptionId, async (db) => {
      if (!(await findEndpoint(db, subscriptionId, endpointId))) throw endpointNotFound(endpointId)
      const alertId = await insertAlert(db, {
        subscriptionId,
        type: WEBHOOK_TEST_TYPE,
        channel: null,
        dedupeKey: `test:${endpointId}:${now}:${Math.random().toString(36).slice(2, 10)}`,
        data: { message: "A test event from omnimeter. Verify its signature, then answer 2xx." },
        occurredAt: new Date(now),
      })
      if (!alertId) throw new OmnimeterError("conflict", "A test event was just queued; try again.")
      await insertDelivery(db, { alertId, endpointId, subscriptionId })
      return alertId
    })
  }

  async listAlerts(
    subscriptionId: string,
    options: { limit: number; beforeSeq?: number | undefined; type?: AlertType | undefined },
    scope?: TenantScope,
  ): Promise<AlertRow[]> {
    return this.inScope(scope, subscriptionId, (db) => listAlerts(db, subscriptionId, options))
  }

  async getQuotaThresholds(subscriptionId: string, scope?: TenantScope): Promise<number[]> {
    return this.inScope(
      scope,
      subscriptionId,
      async (db) => (await getQuotaThresholds(db, subscriptionId)) ?? [...DEFAULT_QUOTA_THRESHOLDS],
    )
  }

  /** Replaces the quota thresholds; they apply from the next counter change. */
  async setQuotaThresholds(
    subscriptionId: string,
    thresholds: readonly number[],
    scope?: TenantScope,
  ): Promise<number[]> {
    const normalised = normaliseThresholds(thresholds)
    if (typeof normalised === "string") throw new ValidationError("quota_thresholds", normalised)
    return this.inScope(scope, subscriptionId, async (db) => {
      await setQuotaThresholds(db, subscriptionId, normalised)
      return normalised
    })
  }

  private checkUrl(url: string): string {
    const problem = webhookUrlProblem(url, this.options.allowPrivateNetworks)
    if (problem) throw new ValidationError("url", problem)
    return url
  }

  private checkEventTypes(types: readonly string[]): string[] {
    const unique = [...new Set(types)]
    if (unique.length === 0) throw new ValidationError("event_types", "name at least one event type")
    for (const type of unique) {
      if (!(ALERT_TYPES as readonly string[]).includes(type))
        throw new ValidationError("event_types", `unknown event type "${type}"`)
    }
    return unique
  }

  /** Runs `fn` in the caller's scope after checking the subscription is visible there. */
  private inScope<T>(
    scope: TenantScope | undefined,
    subscriptionId: string,
    fn: (db: Kysely<DB>, subscription: Subscription) => Promise<T>,
  ): Promise<T> {
    return withVisibleSubscription(this.options.database, scope, subscriptionId, fn)
  }
}

function endpointNotFound(endpointId: string): OmnimeterError {
  return new OmnimeterError("not_found", `No webhook endpoint ${endpointId} for this subscription.`)
}
