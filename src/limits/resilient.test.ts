import { describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { InProcessRateLimiter } from "./in-process.js"
import type { RateLimiter, RateLimitRequest, RateLimitResult } from "./rate-limiter.js"
import { type RateLimiterStatus, ResilientRateLimiter } from "./resilient.js"

/**
 * A shared limiter whose store can be taken away: "up" answers from a real in-process window, "down"
 * refuses like a dead Redis, "hung" never answers. The Redis suites repeat these cases on a real server.
 */
class OutageLimiter implements RateLimiter {
  state: "up" | "down" | "hung" = "up"
  attempts = 0
  readonly window: InProcessRateLimiter

  constructor(clock: ManualClock) {
    this.window = new InProcessRateLimiter(clock)
  }

  consume(request: RateLimitRequest): Promise<RateLimitResult> {
    this.attempts += 1
    if (this.state === "down") return Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:6379"))
    if (this.state === "hung") return new Promise(() => {})
    return this.window.consume(request)
  }

  release(key: string, reservationId: string): Promise<void> {
    return this.window.release(key, reservationId)
  }

  async close(): Promise<void> {}
}

const request = { key: "sub:whatsapp", requestsPerMinute: 1, tokensPerMinute: 1000, tokens: 100 }

function setup(options: Partial<ConstructorParameters<typeof ResilientRateLimiter>[0]> = {}) {
  const clock = new ManualClock(0)
  const primary = new OutageLimiter(clock)
  const fallback = new InProcessRateLimiter(clock)
  const changes: RateLimiterStatus[] = []
  const limiter = new ResilientRateLimiter({
    primary,
    fallback,
    clock,
    onStateChange: (status) => changes.push(status),
    ...options,
  })
  return { clock, primary, fallback, changes, limiter }
}

describe("the resilient rate limiter", () => {
  it("answers from the primary while it works and marks its reservations as the primary's", async () => {
    const { limiter } = setup()
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "r:1" })
    expect(limiter.status()).toMatchObject({ backend: "redis", healthy: true, failures: 0 })
  })

  it("falls back when the primary fails and leaves it alone until the retry interval has passed", async () => {
    const { clock, primary, changes, limiter } = setup({ retryAfterMs: 1_000 })
    primary.state = "down"
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "f:1" })
    expect(limiter.status()).toMatchObject({
      backend: "fallback",
      healthy: false,
      failures: 1,
      lastError: "connect ECONNREFUSED 127.0.0.1:6379",
    })
    expect(changes.map((status) => status.healthy)).toEqual([false])

    clock.advance(999)
    expect(await limiter.consume(request)).toMatchObject({ granted: false, exceeded: "requests_per_minute" })
    expect(primary.attempts).toBe(1)

    clock.advance(1)
    await limiter.consume(request)
    expect(primary.attempts).toBe(2)
    expect(limiter.status()).toMatchObject({ healthy: false, failures: 2 })
  })

  it("returns to the primary by itself once a probe succeeds", async () => {
    const { clock, primary, changes, limiter } = setup({ retryAfterMs: 1_000 })
    primary.state = "down"
    await limiter.consume(request)
    primary.state = "up"
    clock.advance(1_000)
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "r:1" })
    expect(limiter.status()).toEqual({ backend: "redis", healthy: true, since: new Date(1_000), failures: 0 })
    expect(changes.map((status) => status.healthy)).toEqual([false, true])
  })

  it("gives a reservation back to the limiter that granted it, even after a switch", async () => {
    const { primary, fallback, limiter } = setup({ retryAfterMs: 0 })
    const fromPrimary = await limiter.consume(request)
    primary.state = "down"
    const fromFallback = await limiter.consume(request)
    primary.state = "up"
    if (!fromPrimary.granted || !fromFallback.granted) throw new Error("both should be granted")
    expect([fromPrimary.reservationId, fromFallback.reservationId]).toEqual(["r:1", "f:1"])

    await limiter.release(request.key, fromFallback.reservationId)
    expect((await fallback.consume(request)).granted).toBe(true)
    expect((await primary.window.consume(request)).granted).toBe(false)
    await limiter.release(request.key, fromPrimary.reservationId)
    expect((await primary.window.consume(request)).granted).toBe(true)
  })

  it("answers within the timeout when the primary hangs", async () => {
    const { primary, limiter } = setup({ timeoutMs: 20 })
    primary.state = "hung"
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "f:1" })
    expect(limiter.status().lastError).toBe("the rate limiter did not answer within 20 ms")
  })

  it("lets a single call probe the primary while the others use the policy", async () => {
    const { clock, primary, limiter } = setup({ timeoutMs: 20, retryAfterMs: 1_000 })
    primary.state = "hung"
    await limiter.consume(request)
    clock.advance(1_000)
    await Promise.all([limiter.consume(request), limiter.consume(request), limiter.consume(request)])
    expect(primary.attempts).toBe(2)
  })

  it("refuses every request under the deny policy while the primary fails", async () => {
    const { primary, fallback, limiter } = setup({ onRedisFailure: "deny", retryAfterMs: 1_500 })
    primary.state = "down"
    expect(await limiter.consume(request)).toEqual({
      granted: false,
      exceeded: "requests_per_minute",
      retryAfterMs: 1_500,
      limit: 1,
      remaining: 0,
      resetMs: 1_500,
    })
    expect((await fallback.consume(request)).granted).toBe(true)
  })

  it("grants every request without counting it under the allow policy while the primary fails", async () => {
    const { primary, fallback, limiter } = setup({ onRedisFailure: "allow" })
    primary.state = "down"
    for (let i = 0; i < 3; i += 1)
      expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "a:" })
    await limiter.release(request.key, "a:")
    expect((await fallback.consume(request)).granted).toBe(true)
    expect(limiter.status()).toMatchObject({ backend: "fallback", healthy: false, failures: 1 })
  })

  it("ignores the release of a reservation it never issued", async () => {
    const { primary, limiter } = setup()
    await limiter.consume(request)
    await limiter.release(request.key, "1")
    expect((await primary.window.consume(request)).granted).toBe(false)
  })

  it("survives an onStateChange hook that throws", async () => {
    const { primary, limiter } = setup({
      onStateChange: () => {
        throw new Error("metrics are down too")
      },
    })
    primary.state = "down"
    expect((await limiter.consume(request)).granted).toBe(true)
  })

  it("rejects options it cannot honour when it is built", () => {
    const primary = new InProcessRateLimiter(new ManualClock(0))
    expect(() => new ResilientRateLimiter({ primary, timeoutMs: 0 })).toThrow(RangeError)
    expect(() => new ResilientRateLimiter({ primary, retryAfterMs: Number.NaN })).toThrow(RangeError)
    // @ts-expect-error: a policy from untyped configuration
    expect(() => new ResilientRateLimiter({ primary, onRedisFailure: "ignore" })).toThrow(TypeError)
  })
})
