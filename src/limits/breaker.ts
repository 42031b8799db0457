/**
 * The circuit breaker that decides when the shared limiter (Redis) is trusted: pure, no I/O, time from an
 * injected clock.
 *
 * Design note. Goals, in order: (1) a slow Redis is not a lost one: only calls that fail (the caller
 * classifies them: refused, reset, lost, past a deadline of seconds) count, and a success in between resets
 * the count; (2) do not flap: after opening, leave Redis alone for `openMs`, then let ONE call at a time
 * probe it, and trust it again only after `probeSuccesses` probes in a row succeed (one failed probe opens
 * the circuit again); (3) every change between "shared" and "fallback" is reported once, with its reason,
 * so that it can be logged and counted.
 *
 * States: closed (calls go to Redis) -> open (after `failureThreshold` consecutive failures; calls go to the
 * fallback) -> half-open (after `openMs`; one probe at a time goes to Redis, the others to the fallback) ->
 * closed (after `probeSuccesses` probes in a row succeed) or open (a probe fails).
 * Only closed -> open and half-open -> closed switch the limiter in use; open <-> half-open does not.
 */
import type { Clock } from "../core/clock.js"

export type BreakerState = "closed" | "open" | "half-open"

/** Why a call to Redis counted as a failure; the `reason` of a switch to the fallback. */
export type FailureReason = "connection_refused" | "connection_lost" | "deadline" | "redis_error"

/** Who enforces the limits: the shared limiter (Redis) or the failure policy of this instance. */
export type LimiterMode = "shared" | "fallback"

/** A change of the limiter in use: reported once per change, for the log and the switch counter. */
export interface BreakerSwitch {
  from: LimiterMode
  to: LimiterMode
  /** The failure that opened the circuit, or "recovered" when the probes closed it. */
  reason: FailureReason | "recovered"
  /** Clock time of the switch, in ms. */
  at: number
}

/** Where one call goes: Redis (closed), Redis as the one probe (half-open), or the fallback. */
export type BreakerRoute = "primary" | "probe" | "fallback"

export interface CircuitBreakerOptions {
  clock: Clock
  /** Consecutive failed calls that open the circuit. Default 3. */
  failureThreshold?: number
  /** How long the circuit stays open before the first probe, in ms. Default 1000. */
  openMs?: number
  /** Consecutive successful probes that close the circuit again. Default 3. */
  probeSuccesses?: number
}

/**
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ clock: systemClock })
 * const route = breaker.route()
 * if (route === "fallback") return answerLocally()
 * try {
 *   const answer = await redisCall()
 *   breaker.succeeded(route) // a BreakerSwitch when this probe closed the circuit
 *   return answer
 * } catch (error) {
 *   const change = breaker.failed(route, "connection_lost") // a BreakerSwitch when this failure opened it
 *   return answerLocally()
 * }
 * ```
 */
export class CircuitBreaker {
  private readonly clock: Clock
  private readonly failureThreshold: number
  private readonly openMs: number
  private readonly probeSuccesses: number
  private current: BreakerState = "closed"
  private failures = 0
  private successes = 0
  private probeAt = 0
  private probing = false
  private changedAt: number
  private reason: FailureReason | undefined

  constructor(options: CircuitBreakerOptions) {
    const failureThreshold = options.failureThreshold ?? 3
    const openMs = options.openMs ?? 1_000
    const probeSuccesses = options.probeSuccesses ?? 3
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1)
      throw new RangeError(`failureThreshold must be a positive integer (got ${failureThreshold})`)
    if (!Number.isFinite(openMs) || openMs < 0)
      throw new RangeError(`openMs must be zero or more milliseconds (got ${openMs})`)
    if (!Number.isInteger(probeSuccesses) || probeSuccesses < 1)
      throw new RangeError(`probeSuccesses must be a positive integer (got ${probeSuccesses})`)
    this.clock = options.clock
    this.failureThreshold = failureThreshold
    this.openMs = openMs
    this.probeSuccesses = probeSuccesses
    this.changedAt = this.clock.now()
  }

  get state(): BreakerState {
    return this.current
  }

  /** The limiter in use: shared while closed, the fallback while open or half-open. */
  get mode(): LimiterMode {
    return this.current === "closed" ? "shared" : "fallback"
  }

  /** When the current mode began (construction time, at first). */
  get since(): number {
    return this.changedAt
  }

  /** Consecutive failures while closed; once open, the failures that opened it plus every failed probe. */
  get failureCount(): number {
    return this.failures
  }

  /** The failure that opened the circuit, while it is not closed. */
  get openedBy(): FailureReason | undefined {
    return this.current === "closed" ? undefined : this.reason
  }

  /** Decides where the next call goes; a "probe" must be reported back by succeeded or failed. */
  route(): BreakerRoute {
    if (this.current === "closed") return "primary"
    if (this.current === "open") {
      if (this.clock.now() < this.probeAt) return "fallback"
      this.current = "half-open"
      this.successes = 0
    }
    if (this.probing) return "fallback"
    this.probing = true
    return "probe"
  }

  /** Reports a call that Redis answered in time. */
  succeeded(route: BreakerRoute): BreakerSwitch | undefined {
    if (route === "primary") {
      // A late answer to a call routed before the circuit opened tells nothing about Redis now.
      if (this.current === "closed") this.failures = 0
      return undefined
    }
    if (route !== "probe") return undefined
    this.probing = false
    if (this.current !== "half-open") return undefined
    this.successes += 1
    if (this.successes < this.probeSuccesses) return undefined
    this.current = "closed"
    this.failures = 0
    this.reason = undefined
    this.changedAt = this.clock.now()
    return { from: "fallback", to: "shared", reason: "recovered", at: this.changedAt }
  }

  /** Reports a call that failed: Redis unreachable, past the deadline, or an error reply. */
  failed(route: BreakerRoute, reason: FailureReason): BreakerSwitch | undefined {
    const now = this.clock.now()
    if (route === "probe") {
      this.probing = false
      this.failures += 1
      this.current = "open"
      this.probeAt = now + this.openMs
      return undefined
    }
    if (route !== "primary" || this.current !== "closed") return undefined
    this.failures += 1
    if (this.failures < this.failureThreshold) return undefined
    this.current = "open"
    this.reason = reason
    this.probeAt = now + this.openMs
    this.changedAt = now
    return { from: "shared", to: "fallback", reason, at: now }
  }
}
