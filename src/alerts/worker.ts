/**
 * The webhook delivery worker: leases due outbox rows, POSTs them signed, and records the result, retrying
 * failures with exponential backoff and jitter. It runs beside the service, never inside a request, so a
 * slow or dead receiver costs the consume path nothing.
 *
 * Design note (goals in priority order):
 * 1. Nothing is lost: the outbox row was committed with its cause; a row leaves `pending` only when a 2xx
 *    answer is recorded or the attempts are used up (`failed`, kept in the delivery log).
 * 2. One event id is not delivered twice: a row is leased (`lease_owner`, `lease_until`) before it is
 *    sent, claims skip leased and locked rows, and only the lease holder may record a result. The lease
 *    outlives the request timeout, so a live worker never loses a row it is sending. The one unavoidable
 *    case is a worker that dies after the receiver accepted but before the result was recorded: the row is
 *    sent again once the lease expires, with the same `Omnimeter-Event-Id`, which receivers use to dedupe.
 * 3. Order per endpoint: only the oldest pending row of an endpoint can be claimed, so a retrying event
 *    holds back the later ones of that endpoint (and only that endpoint) until it is delivered or failed.
 * 4. Several instances can run workers against one PostgreSQL database (`FOR UPDATE SKIP LOCKED`).
 */
import { randomUUID } from "node:crypto"
import type { BackgroundJob } from "../background.js"
import { type BackoffOptions, retryDelayMs } from "../core/alerts.js"
import type { Clock } from "../core/clock.js"
import { type ClaimedDelivery, claimDeliveries, recordAttempt } from "../storage/alerts.js"
import type { Database } from "../storage/database.js"
import type { WebhookSender } from "./sender.js"
import { signatureHeader } from "./signature.js"

export interface DeliveryWorkerOptions {
  database: Database
  sender: WebhookSender
  clock: Clock
  /** Jitter source; tests pass a fixed one. */
  random?: () => number
  /** Identifies this worker's leases; unique per process by default. */
  owner?: string
  /** How long a claimed row stays ours; must exceed the sender's timeout. */
  leaseMs?: number
  batchSize?: number
  /** Attempts before a delivery is marked failed. */
  maxAttempts?: number
  backoff?: BackoffOptions
  /** Pause between passes that found nothing to do. */
  pollIntervalMs?: number
  /** Told the result of every attempt (metrics). */
  onAttempt?: (result: "delivered" | "retry" | "failed") => void
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ baseMs: 5_000, maxMs: 3_600_000 })

/** The JSON body receivers get. */
export function webhookBody(delivery: ClaimedDelivery): string {
  return JSON.stringify({
    id: delivery.alertId,
    type: delivery.type,
    created_at: delivery.occurredAt.toISOString(),
    subscription_id: delivery.subscriptionId,
    channel: delivery.channel,
    data: delivery.data,
  })
}

export class DeliveryWorker implements BackgroundJob {
  private readonly owner: string
  private readonly leaseMs: number
  private readonly batchSize: number
  private readonly maxAttempts: number
  private readonly backoff: BackoffOptions
  private readonly pollIntervalMs: number
  private readonly random: () => number
  private running: Promise<void> | undefined
  private stopping = false
  private wake: (() => void) | undefined

  constructor(private readonly options: DeliveryWorkerOptions) {
    this.owner = options.owner ?? `worker-${randomUUID()}`
    this.leaseMs = options.leaseMs ?? 60_000
    this.batchSize = options.batchSize ?? 20
    this.maxAttempts = options.maxAttempts ?? 10
    this.backoff = options.backoff ?? DEFAULT_BACKOFF
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000
    this.random = options.random ?? Math.random
  }

  /** Claims what is due and sends it; resolves with the number of attempts made. */
  async runOnce(): Promise<number> {
    const now = new Date(this.options.clock.now())
    const claimed = await claimDeliveries(this.options.database.db, {
      now,
      owner: this.owner,
      leaseMs: this.leaseMs,
      limit: this.batchSize,
    })
    // One row per endpoint at most (see claimDeliveries), so these can go out side by side.
    await Promise.all(claimed.map((delivery) => this.attempt(delivery)))
    return claimed.length
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const body = webhookBody(delivery)
    const sentAt = this.options.clock.now()
    const response = await this.options.sender.send({
      url: delivery.url,
      body,
      headers: {
        "content-type": "application/json",
        "user-agent": "omnimeter-webhooks/0.1",
        "omnimeter-event-id": delivery.alertId,
        "omnimeter-event-type": delivery.type,
        "omnimeter-delivery-attempt": String(delivery.attempts),
        "omnimeter-signature": signatureHeader(delivery.secret, Math.floor(sentAt / 1000), body),
      },
    })
    const now = this.options.clock.now()
    if (response.delivered) {
      await recordAttempt(this.options.database.db, {
        id: delivery.id,
        owner: this.owner,
        status: "delivered",
        statusCode: response.status,
        error: null,
        now: new Date(now),
        nextAttemptAt: null,
      })
      this.options.onAttempt?.("delivered")
      return
    }
    const exhausted = delivery.attempts >= this.maxAttempts
    await recordAttempt(this.options.database.db, {
      id: delivery.id,
      owner: this.owner,
      status: exhausted ? "failed" : "pending",
      statusCode: response.status,
      error: response.error.slice(0, 1000),
      now: new Date(now),
      nextAttemptAt: exhausted
        ? null
        : new Date(now + retryDelayMs(delivery.attempts, this.backoff, this.random)),
    })
    this.options.onAttempt?.(exhausted ? "failed" : "retry")
  }

  /** Runs passes until stopped: back to back while there is work, every `pollIntervalMs` otherwise. */
  start(onError?: (error: unknown) => void): void {
    if (this.running) return
    this.stopping = false
    this.running = (async () => {
      while (!this.stopping) {
        let worked = 0
        try {
          worked = await this.runOnce()
        } catch (error) {
          onError?.(error)
        }
        if (worked === 0 && !this.stopping) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.pollIntervalMs)
            this.wake = () => {
              clearTimeout(timer)
              resolve()
            }
          })
          this.wake = undefined
        }
      }
    })()
  }

  /** Finishes the pass in progress (its results are recorded) and stops. */
  async stop(): Promise<void> {
    this.stopping = true
    this.wake?.()
    await this.running
    this.running = undefined
  }
}
