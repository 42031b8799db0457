import { describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { InProcessRateLimiter } from "./in-process.js"
import type { RateLimiter, RateLimitRequest, RateLimitResult } from "./rate-limiter.js"
import {
  classifyFailure,
  fairShare,
  type RateLimiterSwitch,
  ResilientRateLimiter,
  type ResilientRateLimiterOptions,
} from "./resilient.js"

/**
 * A shared limiter whose store can be taken away: "up" answers from a real in-process window, "slow"
 * answers the same after `delayMs` of real time, "down" refuses like a dead Redis, "hung" never answers.
 * The Redis suites repeat these cases on a real server.
 */
class OutageLimiter implements RateLimiter {
  state: "up" | "slow" | "down" | "hung" = "up"
  delayMs = 0
  attempts = 0
  readonly window: InProcessRateLimiter

  constructor(clock: ManualClock) {
    this.window = new InProcessRateLimiter(clock)
  }

  async consume(request: RateLimitRequest): Promise<RateLimitResult> {
    this.attempts += 1
    if (this.state === "down")
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" })
    if (this.state === "hung") return new Promise(() => {})
    if (this.state === "slow") await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    return this.window.consume(request)
  }

  release(key: string, reservationId: string): Promise<void> {
    return this.window.release(key, reservationId)
  }

  async close(): Promise<void> {}
}

const request = { key: "sub:whatsapp", requestsPerMinute: 1, tokensPerMinute: 1000, tokens: 100 }

function setup(options: Partial<ResilientRateLimiterOptions> = {}) {
  const clock = new ManualClock(0)
  const primary = new OutageLimiter(clock)
  const fallback = new InProcessRateLimiter(clock)
  const switches: RateLimiterSwitch[] = []
  const limiter = new ResilientRateLimiter({
    primary,
    fallback,
    clock,
    onSwitch: (change) => switches.push(change),
    ...options,
  })
  return { clock, primary, fallback, switches, limiter }
}

/** Takes the primary down and fails enough calls (on fresh keys) to open the circuit. */
async function open(limiter: ResilientRateLimiter, primary: OutageLimiter, failures = 3) {
  primary.state = "down"
  for (let i = 0; i < failures; i += 1) await limiter.consume({ ...request, key: `opening-${i}` })
}

describe("the resilient rate limiter", () => {
  it("answers from the primary while it works and marks its reservations as the primary's", async () => {
    const { limiter } = setup()
    // "1|1": the shadow's id in the fallback window, then Redis's.
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "r:1|1" })
    expect(limiter.status()).toMatchObject({ backend: "redis", healthy: true, state: "closed", failures: 0 })
  })

  it("keeps using a slow primary that answers within the deadline: no switch, no fallback grant", async () => {
    const { primary, switches, limiter } = setup({ deadlineMs: 500 })
    primary.state = "slow"
    primary.delayMs = 60
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => limiter.consume({ ...request, requestsPerMinute: 3 })),
    )
    expect(answers.map((a) => (a.granted ? a.reservationId.slice(0, 2) : "denied"))).toEqual([
      "r:",
      "r:",
      "r:",
      "denied",
      "denied",
    ])
    expect(switches).toEqual([])
    expect(limiter.status()).toMatchObject({ healthy: true, failures: 0 })
  })

  it("answers a failed call from the fallback but switches only after three failures in a row", async () => {
    const { primary, switches, limiter } = setup()
    primary.state = "down"
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "f:1" })
    await limiter.consume({ ...request, key: "other" })
    expect(switches).toEqual([])
    expect(limiter.status()).toMatchObject({ healthy: true, failures: 2 })
    await limiter.consume({ ...request, key: "third" })
    expect(switches).toEqual([
      {
        from: "shared",
        to: "fallback",
        reason: "connection_refused",
        at: new Date(0),
        error: "connect ECONNREFUSED 127.0.0.1:6379",
        instances: 1,
      },
    ])
    expect(limiter.status()).toMatchObject({
      backend: "fallback",
      healthy: false,
      state: "open",
      failures: 3,
      lastError: "connect ECONNREFUSED 127.0.0.1:6379",
    })
  })

  it("leaves the primary alone until the retry interval has passed, then probes one call at a time", async () => {
    const { clock, primary, limiter } = setup({ retryAfterMs: 1_000, deadlineMs: 50 })
    await open(limiter, primary)
    expect(primary.attempts).toBe(3)
    clock.advance(999)
    await limiter.consume(request)
    expect(primary.attempts).toBe(3)
    clock.advance(1)
    primary.state = "hung"
    const probing = limiter.consume(request)
    await Promise.all([limiter.consume(request), limiter.consume(request)])
    expect(primary.attempts).toBe(4)
    expect(limiter.status().state).toBe("half-open")
    primary.state = "up"
    void probing
  })

  it("returns to the primary after three successful probes and reports the switch as recovered", async () => {
    const { clock, primary, switches, limiter } = setup({ retryAfterMs: 1_000 })
    await open(limiter, primary)
    primary.state = "up"
    clock.advance(1_000)
    const keys = ["a", "b", "c"]
    const answers = []
    for (const key of keys) answers.push(await limiter.consume({ ...request, key }))
    expect(answers.map((a) => a.granted && a.reservationId)).toEqual(["r:4|1", "r:5|2", "r:6|3"])
    expect(limiter.status()).toEqual({
      backend: "redis",
      healthy: true,
      state: "closed",
      since: new Date(1_000),
      failures: 0,
      instances: 1,
    })
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ["shared", "fallback", "connection_refused"],
      ["fallback", "shared", "recovered"],
    ])
  })

  it("goes back to the fallback when one probe fails, and waits a full interval again", async () => {
    const { clock, primary, switches, limiter } = setup({ retryAfterMs: 1_000 })
    await open(limiter, primary)
    primary.state = "up"
    clock.advance(1_000)
    await limiter.consume(request)
    primary.state = "down"
    await limiter.consume(request)
    expect(limiter.status()).toMatchObject({ state: "open", failures: 4 })
    primary.state = "up"
    clock.advance(999)
    await limiter.consume({ ...request, key: "x" })
    expect(primary.attempts).toBe(5)
    expect(switches).toHaveLength(1)
  })

  it("enforces the instance's fair share of each limit while in fallback", async () => {
    let instances = 3
    const { primary, limiter } = setup({ instances: () => instances })
    await open(limiter, primary)
    const turn = { key: "shared", requestsPerMinute: 100, tokensPerMinute: 1_000_000, tokens: 10 }
    const answers = []
    for (let i = 0; i < 40; i += 1) answers.push(await limiter.consume(turn))
    expect(answers.filter((a) => a.granted)).toHaveLength(33)
    expect(answers[0]).toMatchObject({ limit: 33, remaining: 32 })
    expect(answers[39]).toMatchObject({ granted: false, exceeded: "requests_per_minute", limit: 33 })
    expect(limiter.status().instances).toBe(3)

    instances = 1
    expect((await limiter.consume(turn)).granted).toBe(true)
    const tokens = { ...turn, key: "tokens", tokensPerMinute: 90 }
    instances = 3
    expect(await limiter.consume(tokens)).toMatchObject({ granted: true })
    expect(await limiter.consume(tokens)).toMatchObject({ granted: true })
    expect(await limiter.consume(tokens)).toMatchObject({ granted: true })
    expect(await limiter.consume(tokens)).toMatchObject({ granted: false, exceeded: "tokens_per_minute" })
  })

  it("divides a shared window's threshold by the instances too while in fallback, and gives back from it", async () => {
    const { primary, limiter } = setup({ instances: () => 3 })
    await open(limiter, primary)
    const turn = (key: string) => ({
      key,
      requestsPerMinute: 1000,
      tokensPerMinute: 1_000_000,
      tokens: 10,
      shared: [{ key: "subscription:s", requestsPerMinute: 30, tokensPerMinute: null }],
    })
    const answers = []
    for (let i = 0; i < 12; i += 1) answers.push(await limiter.consume(turn(i % 2 === 0 ? "s:api" : "s:web")))
    // 30 shared requests across three instances: 10 here, whichever channel sends them.
    expect(answers.filter((a) => a.granted)).toHaveLength(10)
    expect(answers[10]).toMatchObject({ granted: false, sharedIndex: 0 })
    const first = answers[0]
    if (first?.granted) await limiter.release("s:api", first.reservationId, ["subscription:s"])
    expect((await limiter.consume(turn("s:web"))).granted).toBe(true)
  })

  it("treats a nonsense instance count as one instance", async () => {
    const { primary, limiter } = setup({ instances: () => Number.NaN })
    await open(limiter, primary)
    expect(limiter.status().instances).toBe(1)
  })

  it("gives a reservation back to the limiters that counted it, even after a switch", async () => {
    const { primary, fallback, limiter } = setup({ retryAfterMs: 0, failureThreshold: 1, probeSuccesses: 1 })
    const two = { ...request, requestsPerMinute: 2 }
    const fromPrimary = await limiter.consume(two)
    primary.state = "down"
    const fromFallback = await limiter.consume(two)
    primary.state = "up"
    if (!fromPrimary.granted || !fromFallback.granted) throw new Error("both should be granted")
    expect([fromPrimary.reservationId, fromFallback.reservationId]).toEqual(["r:1|1", "f:2"])
    // The fallback window holds the shadow of the Redis grant and its own grant: full.
    expect((await fallback.consume(two)).granted).toBe(false)

    await limiter.release(two.key, fromFallback.reservationId)
    expect((await fallback.consume(two)).granted).toBe(true)
    expect((await primary.window.consume(request)).granted).toBe(false)
    await limiter.release(two.key, fromPrimary.reservationId)
    expect((await primary.window.consume(request)).granted).toBe(true)
    expect((await fallback.consume(two)).granted).toBe(true)
  })

  it("counts the instance's own grants through Redis against its share after a switch", async () => {
    const { primary, limiter } = setup({ instances: () => 3, failureThreshold: 1 })
    const turn = { key: "balanced", requestsPerMinute: 90, tokensPerMinute: 1_000_000, tokens: 1 }
    for (let i = 0; i < 20; i += 1) expect((await limiter.consume(turn)).granted).toBe(true)
    primary.state = "down"
    const answers = []
    for (let i = 0; i < 20; i += 1) answers.push(await limiter.consume(turn))
    // Share 30, of which this instance already used 20 through Redis in the window: 10 more, not 30.
    expect(answers.filter((a) => a.granted)).toHaveLength(10)
  })

  it("keeps no shadow under the deny and allow policies, whose fallback never counts", async () => {
    const { limiter } = setup({ onRedisFailure: "deny" })
    expect(await limiter.consume(request)).toMatchObject({ reservationId: "r:1" })
  })

  it("answers within the deadline when the primary hangs, naming the deadline as the reason", async () => {
    const { primary, switches, limiter } = setup({ deadlineMs: 30, failureThreshold: 1 })
    primary.state = "hung"
    expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "f:1" })
    expect(limiter.status().lastError).toBe("the shared rate limiter did not answer within 30 ms")
    expect(switches.map((s) => s.reason)).toEqual(["deadline"])
  })

  it("probes an idle primary on request, so that recovery needs no traffic", async () => {
    const { clock, primary, limiter } = setup({ retryAfterMs: 1_000 })
    await open(limiter, primary)
    let pings = 0
    const ping = async () => {
      pings += 1
    }
    await limiter.probe(ping)
    expect(pings).toBe(0)
    clock.advance(1_000)
    for (let i = 0; i < 3; i += 1) await limiter.probe(ping)
    expect(pings).toBe(3)
    expect(limiter.status().healthy).toBe(true)
    await limiter.probe(ping)
    expect(pings).toBe(3)
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
    await open(limiter, primary)
    for (let i = 0; i < 3; i += 1)
      expect(await limiter.consume(request)).toMatchObject({ granted: true, reservationId: "a:" })
    await limiter.release(request.key, "a:")
    expect((await fallback.consume(request)).granted).toBe(true)
    expect(limiter.status()).toMatchObject({ backend: "fallback", healthy: false, failures: 3 })
  })

  it("ignores the release of a reservation it never issued", async () => {
    const { primary, limiter } = setup()
    await limiter.consume(request)
    await limiter.release(request.key, "1")
    expect((await primary.window.consume(request)).granted).toBe(false)
  })

  it("survives an onSwitch hook that throws", async () => {
    const { primary, limiter } = setup({
      failureThreshold: 1,
      onSwitch: () => {
        throw new Error("metrics are down too")
      },
    })
    primary.state = "down"
    expect((await limiter.consume(request)).granted).toBe(true)
    expect(limiter.status().healthy).toBe(false)
  })

  it("rejects options it cannot honour when it is built", () => {
    const primary = new InProcessRateLimiter(new ManualClock(0))
    expect(() => new ResilientRateLimiter({ primary, deadlineMs: 0 })).toThrow(RangeError)
    expect(() => new ResilientRateLimiter({ primary, retryAfterMs: Number.NaN })).toThrow(RangeError)
    expect(() => new ResilientRateLimiter({ primary, failureThreshold: 0 })).toThrow(RangeError)
    // @ts-expect-error: a policy from untyped configuration
    expect(() => new ResilientRateLimiter({ primary, onRedisFailure: "ignore" })).toThrow(TypeError)
  })
})

describe("the fair share", () => {
  it("rounds down so that N shares never exceed the limit, and never goes below one", () => {
    expect(fairShare(100, 3)).toBe(33)
    expect(fairShare(100, 1)).toBe(100)
    expect(fairShare(100, 100)).toBe(1)
    expect(fairShare(2, 5)).toBe(1)
    expect(fairShare(100, 0)).toBe(100)
    for (let limit = 1; limit <= 60; limit += 1)
      for (let n = 1; n <= limit; n += 1) expect(n * fairShare(limit, n)).toBeLessThanOrEqual(limit)
  })
})

describe("the classification of Redis failures", () => {
  const error = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {})

  it("tells a refused connection, a lost one, a missed deadline and an error reply apart", () => {
    expect(classifyFailure(error("connect ECONNREFUSED 127.0.0.1:6379", "ECONNREFUSED"))).toBe(
      "connection_refused",
    )
    expect(classifyFailure(error("read ECONNRESET", "ECONNRESET"))).toBe("connection_lost")
    expect(classifyFailure(error("Connection is closed."))).toBe("connection_lost")
    expect(classifyFailure(error("Stream isn't writeable and enableOfflineQueue options is false"))).toBe(
      "connection_lost",
    )
    expect(classifyFailure(error("Cluster isn't ready and enableOfflineQueue options is false"))).toBe(
      "connection_lost",
    )
    expect(classifyFailure(error("Command timed out"))).toBe("deadline")
    expect(classifyFailure(error("OOM command not allowed when used memory > 'maxmemory'"))).toBe(
      "redis_error",
    )
    expect(classifyFailure("a string")).toBe("redis_error")
  })
})
