/**
 * A rate limiter that keeps answering when its shared store (Redis) does not.
 *
 * Design note. Goals, in order: (1) while Redis is reachable, its exact shared limit is the one enforced,
 * however slow it is: a slow Redis is not a lost one; (2) a chat turn is never held up for long: every call
 * answers within `deadlineMs` (seconds, not the milliseconds of a busy host) plus the fallback's own time;
 * (3) while Redis is lost, the N instances together stay near the limit (fair share); (4) every switch is
 * loud (`onSwitch`: logged and counted by the container) and visible (`status()`); (5) once Redis is back,
 * use it again without anyone restarting anything, but only after probes show it is back.
 *
 * - Failure: a call fails when Redis refuses or drops the connection, answers with an error, or gives no
 *   answer within `deadlineMs` (`classifyFailure` names the reason). A failed call is answered by the
 *   `onRedisFailure` policy. A `CircuitBreaker` (see `breaker.ts`) counts failures: after
 *   `failureThreshold` in a row it opens and every call goes to the policy; after `retryAfterMs` one call
 *   at a time probes Redis, and `probeSuccesses` probes in a row close it again.
 * - Policies: "fallback" (default) consults an in-process limiter that enforces this instance's fair share,
 *   max(1, floor(limit / N)) of each limit, where N is `instances()` (a heartbeat in Redis, the last count
 *   kept through the outage, or configuration); "deny" refuses every request (fail closed), with
 *   `retryAfterMs`; "allow" grants every request without recording it (fail open).
 * - Shadow: under "fallback", every grant Redis makes through this instance is also counted in the
 *   fallback's window (without checking it), so that at a switch each instance's own grants of the last
 *   60 s already count against its share: with balanced traffic a window spanning the switch stays near
 *   the limit instead of limit + N x share.
 * - Bound: a 60 s window lying wholly inside an outage grants at most N x max(1, floor(limit / N)) per key
 *   (at most the limit when N <= limit). A window that spans a switch adds what Redis granted in it: at
 *   most the limit on each side of the outage, so at most limit + N x share when Redis keeps its data
 *   (reached only when the instances that granted through Redis are not those that grant in fallback), and
 *   2 x limit + N x share when it comes back empty (its windows restart).
 * - Reservations: ids carry the limiter that granted them ("r:" primary, with the shadow's id before a
 *   "|", "f:" fallback, "a:" allowed unrecorded), so a release always reaches the windows that counted
 *   the grant, even after a switch.
 * - Trade-offs: grants made by the fallback are unknown to Redis, and Redis's grants to the fallback. A
 *   consume that passed its deadline may still be applied by Redis later; that grant then counts against
 *   the key for one window although nobody received it (errs towards denying). A release that fails is
 *   dropped: the entry leaves the window within 60 s anyway.
 */
import { type Clock, systemClock } from "../core/clock.js"
import {
  type BreakerRoute,
  type BreakerState,
  type BreakerSwitch,
  CircuitBreaker,
  type FailureReason,
} from "./breaker.js"
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

/** The default deadline of one Redis call: long enough for a busy host, short enough for a chat turn. */
export const DEFAULT_REDIS_DEADLINE_MS = 3_000

export interface RateLimiterStatus {
  /** Who answers now: the shared limiter, or the failure policy ("fallback" under every policy). */
  backend: "redis" | "fallback"
  healthy: boolean
  /** The circuit breaker: closed (Redis), open (policy), half-open (policy, one call probing Redis). */
  state: BreakerState
  /** When the limiter entered its current mode (construction time, at first). */
  since: Date
  /** Consecutive failures while healthy; once degraded, those that opened the circuit plus failed probes. */
  failures: number
  /** The latest failure's message, while degraded. */
  lastError?: string
  /** The instance count N that the fallback divides each limit by. */
  instances: number
}

/** One switch between the shared limiter and the failure policy, as reported to `onSwitch`. */
export interface RateLimiterSwitch extends Omit<BreakerSwitch, "at"> {
  at: Date
  /** The failure's message, for a switch to the fallback. */
  error?: string
  /** The instance count N in force for the fair share. */
  instances: number
}

export interface ResilientRateLimiterOptions {
  /** The shared limiter, usually a `RedisRateLimiter`. */
  primary: RateLimiter
  /** Answers under the "fallback" policy and shadows Redis's grants; defaults to one on `clock`. */
  fallback?: InProcessRateLimiter
  /** Defaults to "fallback". */
  onRedisFailure?: RedisFailurePolicy
  /** A call to the primary that has not answered after this long counts as a failure. Defaults to 3000 ms. */
  deadlineMs?: number
  /** How long to leave the primary alone after the circuit opens before probing it. Defaults to 1000 ms. */
  retryAfterMs?: number
  /** Consecutive failed calls that switch to the policy. Defaults to 3. */
  failureThreshold?: number
  /** Consecutive successful probes that switch back to the primary. Defaults to 3. */
  probeSuccesses?: number
  /** How many instances share the limits (N of the fair share); read at each fallback decision. Default 1. */
  instances?: () => number
  /** Times the breaker (and the default fallback's window). Defaults to the system clock. */
  clock?: Clock
  /** Called after every switch between the primary and the policy. Exceptions it throws are ignored. */
  onSwitch?: (change: RateLimiterSwitch) => void
}

type Route = "primary" | "fallback" | "unrecorded"

const ROUTE_PREFIX: Record<Route, string> = { primary: "r:", fallback: "f:", unrecorded: "a:" }

/**
 * Wraps a shared (Redis) limiter with a failure policy, a call deadline, a circuit breaker and a fair share;
 * see the design note at the top of this file. It owns the two limiters it wraps (`close()` closes both),
 * not the Redis client beneath them.
 *
 * @example
 * ```ts
 * const redis = createRedisClient(config.redisUrls)
 * const heartbeat = new InstanceHeartbeat({ redis })
 * const limiter = new ResilientRateLimiter({
 *   primary: new RedisRateLimiter(redis),
 *   onRedisFailure: "fallback",
 *   instances: () => heartbeat.count(),
 *   onSwitch: (change) => console.warn(`rate limits: ${change.from} -> ${change.to} (${change.reason})`),
 * })
 * const result = await limiter.consume({ key: "sub_1:web", requestsPerMinute: 60, tokensPerMinute: 1e5, tokens: 500 })
 * limiter.status() // { backend: "redis", healthy: true, state: "closed", since, failures: 0, instances: 3 }
 * ```
 */
export class ResilientRateLimiter implements RateLimiter {
  private readonly primary: RateLimiter
  private readonly fallback: InProcessRateLimiter
  private readonly policy: RedisFailurePolicy
  private readonly deadlineMs: number
  private readonly retryAfterMs: number
  private readonly clock: Clock
  private readonly breaker: CircuitBreaker
  private readonly instances: () => number
  private readonly onSwitch: ((change: RateLimiterSwitch) => void) | undefined
  private lastError: string | undefined

  constructor(options: ResilientRateLimiterOptions) {
    const policy = options.onRedisFailure ?? "fallback"
    const deadlineMs = options.deadlineMs ?? DEFAULT_REDIS_DEADLINE_MS
    const retryAfterMs = options.retryAfterMs ?? 1_000
    if (!POLICIES.includes(policy))
      throw new TypeError(`onRedisFailure must be one of ${POLICIES.join(", ")} (got "${policy}")`)
    if (!Number.isFinite(deadlineMs) || deadlineMs <= 0)
      throw new RangeError(`deadlineMs must be a positive number of milliseconds (got ${deadlineMs})`)
    if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0)
      throw new RangeError(`retryAfterMs must be zero or more milliseconds (got ${retryAfterMs})`)
    this.clock = options.clock ?? systemClock
    this.primary = options.primary
    this.fallback = options.fallback ?? new InProcessRateLimiter(this.clock)
    this.policy = policy
    this.deadlineMs = deadlineMs
    this.retryAfterMs = retryAfterMs
    this.breaker = new CircuitBreaker({
      clock: this.clock,
      openMs: retryAfterMs,
      ...(options.failureThreshold === undefined ? {} : { failureThreshold: options.failureThreshold }),
      ...(options.probeSuccesses === undefined ? {} : { probeSuccesses: options.probeSuccesses }),
    })
    this.instances = options.instances ?? (() => 1)
    this.onSwitch = options.onSwitch
  }

  async consume(request: RateLimitRequest): Promise<RateLimitResult> {
    const route = this.breaker.route()
    if (route === "fallback") return this.degraded(request)
    try {
      const result = await withDeadline(this.primary.consume(request), this.deadlineMs)
      this.report(this.breaker.succeeded(route))
      if (!result.granted || this.policy !== "fallback") return tagged(result, "primary")
      const shadow = this.fallback.record(
        request.key,
        request.tokens,
        (request.shared ?? []).map((w) => w.key),
      )
      return { ...result, reservationId: `${ROUTE_PREFIX.primary}${shadow}|${result.reservationId}` }
    } catch (error) {
      this.failed(route, error)
      return this.degraded(request)
    }
  }

  /**
   * Probes Redis with `check` (a PING) when the breaker lets a probe through, so that an instance with no
   * traffic (one that /readyz took out of a load balancer, say) still finds Redis back. Does nothing while
   * the circuit is closed or another probe is out. Never throws.
   */
  async probe(check: () => Promise<unknown>): Promise<void> {
    if (this.breaker.state === "closed") return
    const route = this.breaker.route()
    if (route !== "probe") return
    try {
      await withDeadline(check(), this.deadlineMs)
      this.report(this.breaker.succeeded(route))
    } catch (error) {
      this.failed(route, error)
    }
  }

  /** Never throws: a release that cannot reach its limiter is dropped (see the design note). */
  async release(key: string, reservationId: string, sharedKeys: readonly string[] = []): Promise<void> {
    const reservation = parseReservation(reservationId)
    if (reservation === undefined || reservation.route === "unrecorded") return
    if (reservation.route === "fallback") return this.fallback.release(key, reservation.id, sharedKeys)
    const bar = reservation.id.indexOf("|")
    if (bar >= 0) await this.fallback.release(key, reservation.id.slice(0, bar), sharedKeys)
    try {
      await withDeadline(
        this.primary.release(key, reservation.id.slice(bar + 1), sharedKeys),
        this.deadlineMs,
      )
    } catch (error) {
      // Counted like a failed consume: a lost Redis shows in releases too.
      this.failed("primary", error)
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.fallback.close()])
  }

  /** For health checks and metrics. */
  status(): RateLimiterStatus {
    const healthy = this.breaker.mode === "shared"
    return {
      backend: healthy ? "redis" : "fallback",
      healthy,
      state: this.breaker.state,
      since: new Date(this.breaker.since),
      failures: this.breaker.failureCount,
      ...(healthy || this.lastError === undefined ? {} : { lastError: this.lastError }),
      instances: this.instanceCount(),
    }
  }

  private async degraded(request: RateLimitRequest): Promise<RateLimitResult> {
    const limit = request.requestsPerMinute
    switch (this.policy) {
      case "fallback": {
        const n = this.instanceCount()
        const share = {
          ...request,
          requestsPerMinute: fairShare(request.requestsPerMinute, n),
          tokensPerMinute: fairShare(request.tokensPerMinute, n),
          ...(request.shared
            ? {
                shared: request.shared.map((w) => ({
                  key: w.key,
                  requestsPerMinute:
                    w.requestsPerMinute === null ? null : sharedShare(w.requestsPerMinute, n),
                  tokensPerMinute: w.tokensPerMinute === null ? null : sharedShare(w.tokensPerMinute, n),
                })),
              }
            : {}),
        }
        return tagged(await this.fallback.consume(share), "fallback")
      }
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

  private failed(route: BreakerRoute, error: unknown): void {
    this.lastError = error instanceof Error ? error.message : String(error)
    this.report(this.breaker.failed(route, classifyFailure(error)))
  }

  private report(change: BreakerSwitch | undefined): void {
    if (!change) return
    if (change.to === "shared") this.lastError = undefined
    try {
      this.onSwitch?.({
        ...change,
        at: new Date(change.at),
        ...(change.to === "fallback" && this.lastError !== undefined ? { error: this.lastError } : {}),
        instances: this.instanceCount(),
      })
    } catch {
      // A broken log or metrics hook must not turn a rate-limit answer into an error.
    }
  }

  private instanceCount(): number {
    const n = this.instances()
    return Number.isFinite(n) && n >= 1 ? Math.floor(n) : 1
  }
}

/**
 * One instance's part of a limit shared by `instances`: rounded down so that N shares never add up to more
 * than the limit, and at least 1 so that no instance is shut out (N shares may then pass a limit below N).
 * @example fairShare(100, 3) // 33
 */
export function fairShare(limit: number, instances: number): number {
  return Math.max(1, Math.floor(limit / Math.max(1, instances)))
}

/** A shared window's threshold per instance: a fair share, except that a threshold of 0 stays 0. */
function sharedShare(threshold: number, instances: number): number {
  return Math.min(threshold, fairShare(threshold, instances))
}

/**
 * Why a call to Redis failed, from the error ioredis (or the deadline) raised: "connection_refused" (nothing
 * listens), "connection_lost" (reset, closed, not connected, cluster unreachable), "deadline" (no answer in
 * time) or "redis_error" (Redis answered with an error, e.g. OOM, READONLY, LOADING, CLUSTERDOWN).
 */
export function classifyFailure(error: unknown): FailureReason {
  if (error instanceof RateLimiterTimeoutError) return "deadline"
  if (!(error instanceof Error)) return "redis_error"
  const code = "code" in error ? error.code : undefined
  const text = `${typeof code === "string" ? code : ""} ${error.name} ${error.message}`
  if (/ECONNREFUSED/.test(text)) return "connection_refused"
  if (/Command timed out|ETIMEDOUT/.test(text)) return "deadline"
  if (
    /ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|Connection is closed|isn't writeable|MaxRetriesPerRequest|ClusterAllFailed|Cluster isn't ready|startup nodes|Failed to refresh slots/.test(
      text,
    )
  )
    return "connection_lost"
  return "redis_error"
}

/** Raised when the primary does not answer in time; its message becomes `status().lastError`. */
class RateLimiterTimeoutError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`the shared rate limiter did not answer within ${deadlineMs} ms`)
    this.name = "RateLimiterTimeoutError"
  }
}

function withDeadline<T>(work: Promise<T>, deadlineMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new RateLimiterTimeoutError(deadlineMs)), deadlineMs)
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
