/**
 * A rate limiter that keeps answering when its shared store (Redis) does not.
 *
 * Design note. Goals, in order: (1) a chat turn is never held up by Redis: every call answers within
 * `timeoutMs` plus the fallback's own time; (2) while Redis works, its exact shared limit is the one
 * enforced; (3) once Redis is back, use it again without anyone restarting anything; (4) make the state
 * visible (`status()`, `onStateChange`) for health checks and metrics.
 *
 * - Failure: any error from the primary, or no answer within `timeoutMs`, marks the limiter degraded. The
 *   call, and every call until the next probe, is answered by the `onRedisFailure` policy:
 *   "fallback" (default) consults an in-process limiter: each instance enforces the full limit on its own,
 *   so N instances may together grant up to N times the limit while Redis is away;
 *   "deny" refuses every request (fail closed), with `retryAfterMs` = the retry interval;
 *   "allow" grants every request without recording it (fail open).
 * - Recovery: while degraded, the first call at least `retryAfterMs` after the last failure probes the
 *   primary, one probe at a time; a success makes the limiter healthy again.
 * - Reservations: ids carry the limiter that granted them ("r:" primary, "f:" fallback, "a:" allowed
 *   unrecorded), so a release always reaches the window that counted the grant, even after a switch.
 * - Trade-offs: grants made by the fallback are unknown to Redis, so right after recovery a key may be
 *   granted its full limit again. A consume that timed out may still be applied by Redis later; that grant
 *   then counts against the key for one window although nobody received it (errs towards denying). A
 *   release that fails is dropped: the entry leaves the window within 60 s anyway.
 */
import { type Clock, systemClock } from "../core/clock.js"
import { InProcessRateLimiter } from "./in-process.js"
import {
  RATE_WINDOW_MS,
  type RateLimiter,
  type RateLimitRequest,
  type RateLimitResult,
} from "./rate-limiter.js"

/** What to answer while Redis fails: per-instance limits, refuse everything, or grant everything. */
export type RedisFailurePolicy = "fallback" | "deny" | "allow"

const POLICIES: readonly RedisFailurePolicy[] = ["fallback", "deny", "allow"]

export interface RateLimiterStatus {
  /** Who answers now: the shared limiter, or the failure policy ("fallback" under every policy). */
  backend: "redis" | "fallback"
  healthy: boolean
  /** When the limiter entered its current state (construction time, at first). */
  since: Date
  /** Consecutive primary failures since the limiter became degraded; 0 while healthy. */
  failures: number
  /** The latest failure's message, while degraded. */
  lastError?: string
}

export interface ResilientRateLimiterOptions {
  /** The shared limiter, usually a `RedisRateLimiter`. */
  primary: RateLimiter
  /** Answers under the "fallback" policy; defaults to an in-process limiter on `clock`. */
  fallback?: RateLimiter
  /** Defaults to "fallback". */
  onRedisFailure?: RedisFailurePolicy
  /** How long to wait for the primary before treating the call as a failure. Defaults to 250 ms. */
  timeoutMs?: number
  /** How long to leave the primary alone after a failure before probing it again. Defaults to 1000 ms. */
  retryAfterMs?: number
  /** Times the retry interval (and the default fallback's window). Defaults to the system clock. */
  clock?: Clock
  /** Called after every switch between healthy and degraded. Exceptions it throws are ignored. */
  onStateChange?: (status: RateLimiterStatus) => void
}

type Route = "primary" | "fallback" | "unrecorded"

const ROUTE_PREFIX: Record<Route, string> = { primary: "r:", fallback: "f:", unrecorded: "a:" }

/**
 * Wraps a shared (Redis) limiter with a failure policy, a call timeout and automatic recovery; see the
 * design note at the top of this file. It owns the two limiters it wraps (`close()` closes both), not the
 * Redis client beneath them.
 *
 * @example
 * ```ts
 * const redis = createRedisClient(config.redisUrl)
 * const limiter = new ResilientRateLimiter({
 *   primary: new RedisRateLimiter(redis),
 *   onRedisFailure: "fallback",
 *   onStateChange: (status) => metrics.rateLimiterHealthy.set(status.healthy ? 1 : 0),
 * })
 * const result = await limiter.consume({ key: "sub_1:web", requestsPerMinute: 60, tokensPerMinute: 1e5, tokens: 500 })
 * limiter.status() // { backend: "redis", healthy: true, since, failures: 0 }
 * ```
 */
export class ResilientRateLimiter implements RateLimiter {
  private readonly primary: RateLimiter
  private readonly fallback: RateLimiter
  private readonly policy: RedisFailurePolicy
  private readonly timeoutMs: number
  private readonly retryAfterMs: number
  private readonly clock: Clock
  private readonly onStateChange: ((status: RateLimiterStatus) => void) | undefined
  private healthy = true
  private since: number
  private failures = 0
  private lastError: string | undefined
  private nextProbeAt = 0
  private probing = false

  constructor(options: ResilientRateLimiterOptions) {
    const policy = options.onRedisFailure ?? "fallback"
    const timeoutMs = options.timeoutMs ?? 250
    const retryAfterMs = options.retryAfterMs ?? 1_000
    if (!POLICIES.includes(policy))
      throw new TypeError(`onRedisFailure must be one of ${POLICIES.join(", ")} (got "${policy}")`)
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
      throw new RangeError(`timeoutMs must be a positive number of milliseconds (got ${timeoutMs})`)
    if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0)
      throw new RangeError(`retryAfterMs must be zero or more milliseconds (got ${retryAfterMs})`)
    this.clock = options.clock ?? systemClock
    this.primary = options.primary
    this.fallback = options.fallback ?? new InProcessRateLimiter(this.clock)
    this.policy = policy
    this.timeoutMs = timeoutMs
    this.retryAfterMs = retryAfterMs
    this.onStateChange = options.onStateChange
    this.since = this.clock.now()
  }

  async consume(request: RateLimitRequest): Promise<RateLimitResult> {
    if (!this.healthy && (this.probing || this.clock.now() < this.nextProbeAt)) return this.degraded(request)
    const probe = !this.healthy
    if (probe) this.probing = true
    try {
      const result = await withTimeout(this.primary.consume(request), this.timeoutMs)
      this.succeeded()
      return tagged(result, "primary")
    } catch (error) {
      this.failed(error)
      return this.degraded(request)
    } finally {
      if (probe) this.probing = false
    }
  }

  /** Never throws: a release that cannot reach its limiter is dropped (see the design note). */
  async release(key: string, reservationId: string): Promise<void> {
    const reservation = parseReservation(reservationId)
    if (reservation === undefined || reservation.route === "unrecorded") return
    if (reservation.route === "fallback") return this.fallback.release(key, reservation.id)
    try {
      await withTimeout(this.primary.release(key, reservation.id), this.timeoutMs)
    } catch (error) {
      this.failed(error)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()])
  }

  /** For health checks and metrics. */
  status(): RateLimiterStatus {
    return {
      backend: this.healthy ? "redis" : "fallback",
      healthy: this.healthy,
      since: new Date(this.since),
      failures: this.failures,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    }
  }

  private async degraded(request: RateLimitRequest): Promise<RateLimitResult> {
    const limit = request.requestsPerMinute
    switch (this.policy) {
      case "fallback":
        return tagged(await this.fallback.consume(request), "fallback")
      case "deny": {
        const retryAfterMs = Math.max(1, this.retryAfterMs)
        return {
          granted: false,
          exceeded: "requests_per_minute",
          retryAfterMs,
          limit,
          remaining: 0,
          resetMs: retryAfterMs,
        }
      }
      case "allow":
        // Nothing is counted, so report the window as if this were its only request.
        return {
          granted: true,
          reservationId: ROUTE_PREFIX.unrecorded,
          limit,
          remaining: Math.max(0, limit - 1),
          resetMs: RATE_WINDOW_MS,
        }
    }
  }

  private succeeded(): void {
    if (this.healthy) return
    this.healthy = true
    this.since = this.clock.now()
    this.failures = 0
    this.lastError = undefined
    this.notify()
  }

  private failed(error: unknown): void {
    const now = this.clock.now()
    this.failures += 1
    this.lastError = error instanceof Error ? error.message : String(error)
    this.nextProbeAt = now + this.retryAfterMs
    if (!this.healthy) return
    this.healthy = false
    this.since = now
    this.notify()
  }

  private notify(): void {
    try {
      this.onStateChange?.(this.status())
    } catch {
      // A broken metrics hook must not turn a rate-limit answer into an error.
    }
  }
}

/** Raised when the primary does not answer in time; its message becomes `status().lastError`. */
class RateLimiterTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the rate limiter did not answer within ${timeoutMs} ms`)
    this.name = "RateLimiterTimeoutError"
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new RateLimiterTimeoutError(timeoutMs)), timeoutMs)
    // The late outcome of a timed-out call is settled here too, so it never becomes an unhandled rejection.
    work.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

function tagged(result: RateLimitResult, route: Route): RateLimitResult {
  return result.granted ? { ...result, reservationId: ROUTE_PREFIX[route] + result.reservationId } : result
}

/** Undefined for an id this limiter never issued: there is nothing to give back. */
function parseReservation(reservationId: string): { route: Route; id: string } | undefined {
  for (const route of ["primary", "fallback", "unrecorded"] as const) {
    const prefix = ROUTE_PREFIX[route]
    if (reservationId.startsWith(prefix)) return { route, id: reservationId.slice(prefix.length) }
  }
  return undefined
}
