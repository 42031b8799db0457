import { randomUUID } from "node:crypto"
import { Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { InProcessRateLimiter } from "./in-process.js"
import type { RateLimitResult } from "./rate-limiter.js"
import { RedisRateLimiter } from "./redis.js"

const url = process.env.OMNIMETER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
const request = { key: "sub:whatsapp", requestsPerMinute: 3, tokensPerMinute: 1000, tokens: 100 }

let redis: Redis
/** Unique per test, so that runs (and parallel suites) never see each other's windows. */
let keyPrefix: string

beforeAll(() => {
  redis = new Redis(url)
})

beforeEach(() => {
  keyPrefix = `omnimeter:test:${randomUUID()}:`
})

afterEach(async () => {
  const keys = await ownKeys()
  if (keys.length > 0) await redis.del(...keys)
})

afterAll(async () => {
  await redis.quit()
})

async function ownKeys(): Promise<string[]> {
  const keys: string[] = []
  let cursor = "0"
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== "0")
  return keys
}

function limiterOn(clock?: ManualClock, client: Redis = redis, batch = false): RedisRateLimiter {
  return new RedisRateLimiter(
    clock ? { redis: client, keyPrefix, clock, batch } : { redis: client, keyPrefix, batch },
  )
}

/** The same answer with the reservation id left out (each limiter numbers its own reservations). */
function withoutId(result: RateLimitResult): object {
  if (!result.granted) return result
  const { reservationId: _, ...rest } = result
  return rest
}

describe("the batched Redis rate limiter", () => {
  it("decides concurrent calls in one script, in the order asked, exactly as one at a time", async () => {
    const clock = new ManualClock(5_000)
    const batched = limiterOn(clock, redis, true)
    const reference = new InProcessRateLimiter(clock)
    const requests = Array.from({ length: 40 }, (_, i) => ({
      key: `sub-${i % 3}:website`,
      requestsPerMinute: 5 + (i % 3),
      tokensPerMinute: 900,
      tokens: 60 + ((i * 37) % 200),
    }))
    const answers = await Promise.all(requests.map((r) => batched.consume(r)))
    const expected: RateLimitResult[] = []
    for (const r of requests) expected.push(await reference.consume(r))
    expect(answers.map(withoutId)).toEqual(expected.map(withoutId))
    expect(answers.filter((a) => a.granted)).toHaveLength(expected.filter((a) => a.granted).length)
  })

  it("grants one shared limit exactly once over many concurrent calls with server time", async () => {
    const batched = limiterOn(undefined, redis, true)
    const answers = await Promise.all(
      Array.from({ length: 300 }, () =>
        batched.consume({ key: "hot:api", requestsPerMinute: 120, tokensPerMinute: 1_000_000, tokens: 10 }),
      ),
    )
    expect(answers.filter((a) => a.granted)).toHaveLength(120)
    const released = answers.find((a) => a.granted)
    if (released?.granted) await batched.release("hot:api", released.reservationId)
    expect(
      (
        await batched.consume({
          key: "hot:api",
          requestsPerMinute: 120,
          tokensPerMinute: 1_000_000,
          tokens: 10,
        })
      ).granted,
    ).toBe(true)
  })

  it("fails every call of a batch when Redis cannot answer, and records nothing", async () => {
    // Nothing listens on this port (inside this project's range): every command fails.
    const broken = new Redis("redis://127.0.0.1:18599", {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    })
    broken.on("error", () => {})
    const batched = limiterOn(undefined, broken, true)
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => batched.consume(request)))
    expect(results.every((r) => r.status === "rejected")).toBe(true)
    broken.disconnect()
    expect(await ownKeys()).toEqual([])
  })
})

describe("the Redis rate limiter", () => {
  it("grants up to the requests-per-minute limit and then says when to retry", async () => {
    const clock = new ManualClock(0)
    const limiter = limiterOn(clock)
    for (let i = 0; i < 3; i += 1) {
      expect((await limiter.consume(request)).granted).toBe(true)
      clock.advance(10_000)
    }
    const denied = await limiter.consume(request)
    expect(denied).toMatchObject({ granted: false, exceeded: "requests_per_minute", retryAfterMs: 30_000 })
    clock.advance(30_000)
    expect((await limiter.consume(request)).granted).toBe(true)
  })

  it("never grants more than the limit in any rolling 60 seconds", async () => {
    const clock = new ManualClock(0)
    const limiter = limiterOn(clock)
    const grants: number[] = []
    for (let t = 0; t < 300_000; t += 700) {
      clock.set(t)
      if ((await limiter.consume({ ...request, requestsPerMinute: 10 })).granted) grants.push(t)
    }
    for (const start of grants)
      expect(grants.filter((t) => t >= start && t < start + 60_000).length).toBeLessThanOrEqual(10)
    expect(grants.length).toBeGreaterThanOrEqual(45)
  })

  it("limits tokens per minute and tells when enough tokens leave the window", async () => {
    const clock = new ManualClock(0)
    const limiter = limiterOn(clock)
    const big = { ...request, requestsPerMinute: 100, tokens: 400 }
    expect((await limiter.consume(big)).granted).toBe(true)
    clock.advance(5_000)
    expect((await limiter.consume(big)).granted).toBe(true)
    const denied = await limiter.consume(big)
    expect(denied).toMatchObject({ granted: false, exceeded: "tokens_per_minute", retryAfterMs: 55_000 })
    clock.advance(55_000)
    expect((await limiter.consume(big)).granted).toBe(true)
  })

  it("gives a released reservation back", async () => {
    const limiter = limiterOn(new ManualClock(0))
    const first = await limiter.consume({ ...request, requestsPerMinute: 1 })
    expect(first.granted).toBe(true)
    if (first.granted) await limiter.release(request.key, first.reservationId)
    expect((await limiter.consume({ ...request, requestsPerMinute: 1 })).granted).toBe(true)
  })

  it("gives a reservation's tokens back only once, however often it is released", async () => {
    const limiter = limiterOn(new ManualClock(0))
    const big = { ...request, requestsPerMinute: 100, tokens: 400 }
    const first = await limiter.consume(big)
    expect((await limiter.consume(big)).granted).toBe(true)
    if (!first.granted) throw new Error("the first request should be granted")
    await limiter.release(big.key, first.reservationId)
    await limiter.release(big.key, first.reservationId)
    expect((await limiter.consume({ ...big, tokens: 600 })).granted).toBe(true)
    expect(await limiter.consume({ ...big, tokens: 1 })).toMatchObject({ exceeded: "tokens_per_minute" })
  })

  it("keeps channels and subscriptions apart", async () => {
    const limiter = limiterOn(new ManualClock(0))
    const one = { ...request, requestsPerMinute: 1 }
    expect((await limiter.consume(one)).granted).toBe(true)
    expect((await limiter.consume({ ...one, key: "sub:website" })).granted).toBe(true)
    expect((await limiter.consume(one)).granted).toBe(false)
  })

  it("reports the remaining requests in the window", async () => {
    const limiter = limiterOn(new ManualClock(0))
    const result = await limiter.consume(request)
    expect(result).toMatchObject({ limit: 3, remaining: 2 })
  })

  it("answers exactly as the in-process limiter over a long random sequence", async () => {
    const clock = new ManualClock(0)
    const shared = limiterOn(clock)
    const local = new InProcessRateLimiter(clock)
    const random = seeded(42)
    const granted: Array<{ key: string; shared: string; local: string }> = []
    const denials = new Set<string>()
    for (let step = 0; step < 600; step += 1) {
      clock.advance(Math.floor(random() * 8_000))
      const key = random() < 0.5 ? "sub:whatsapp" : "sub:website"
      const releasable = granted[Math.floor(random() * granted.length)]
      if (releasable && random() < 0.15) {
        await shared.release(releasable.key, releasable.shared)
        await local.release(releasable.key, releasable.local)
        continue
      }
      const turn = { key, requestsPerMinute: 6, tokensPerMinute: 1_500, tokens: Math.floor(random() * 500) }
      const [fromShared, fromLocal] = [await shared.consume(turn), await local.consume(turn)]
      expect(withoutId(fromShared), `step ${step}`).toEqual(withoutId(fromLocal))
      if (fromShared.granted && fromLocal.granted)
        granted.push({ key, shared: fromShared.reservationId, local: fromLocal.reservationId })
      if (!fromShared.granted) denials.add(fromShared.exceeded)
    }
    expect(granted.length).toBeGreaterThan(100)
    expect([...denials].sort()).toEqual(["requests_per_minute", "tokens_per_minute"])
  })

  it("grants exactly the limit to many instances hammering one key at once", async () => {
    const clients = [new Redis(url), new Redis(url), new Redis(url)]
    try {
      const limiters = clients.map((client) => limiterOn(undefined, client))
      const turn = { ...request, requestsPerMinute: 50, tokensPerMinute: 1_000_000, tokens: 7 }
      const results = await Promise.all(
        limiters.flatMap((limiter) => Array.from({ length: 200 }, () => limiter.consume(turn))),
      )
      expect(results.filter((result) => result.granted)).toHaveLength(50)
      const ids = results.flatMap((result) => (result.granted ? [result.reservationId] : []))
      expect(new Set(ids).size).toBe(50)
      expect(await redis.zcard(`${keyPrefix}{${turn.key}}`)).toBe(50)
      expect(await redis.hget(`${keyPrefix}{${turn.key}}:meta`, "tokens")).toBe(String(50 * 7))
    } finally {
      await Promise.all(clients.map((client) => client.quit()))
    }
  })

  it("uses the Redis server's clock when no clock is given", async () => {
    const limiter = limiterOn()
    await limiter.consume(request)
    const [seconds] = await redis.time()
    const [, score] = await redis.zrange(`${keyPrefix}{${request.key}}`, 0, 0, "WITHSCORES")
    expect(Math.abs(Number(score) - Number(seconds) * 1000)).toBeLessThan(5_000)
  })

  it("lets a key's entries expire one window after its last grant", async () => {
    const limiter = limiterOn()
    await limiter.consume(request)
    const keys = [`${keyPrefix}{${request.key}}`, `${keyPrefix}{${request.key}}:meta`]
    expect((await ownKeys()).sort()).toEqual(keys)
    for (const key of keys) {
      const ttl = await redis.pttl(key)
      expect(ttl).toBeGreaterThan(59_000)
      expect(ttl).toBeLessThanOrEqual(61_000)
    }
  })

  it("leaves nothing behind for a request denied on a quiet key", async () => {
    const limiter = limiterOn()
    const denied = await limiter.consume({ ...request, tokens: 5_000 })
    expect(denied).toMatchObject({ granted: false, exceeded: "tokens_per_minute", retryAfterMs: 60_000 })
    expect(await ownKeys()).toEqual([])
  })

  it("refuses a key prefix that would break the cluster hash tag", () => {
    expect(() => new RedisRateLimiter({ redis, keyPrefix: "rl:{x}:" })).toThrow(TypeError)
  })
})

/** A small deterministic generator (mulberry32), so a failing sequence can be replayed. */
function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

describe("shared windows in the Redis rate limiter", () => {
  it("decides turns with shared windows exactly as the in-process limiter, batched or not, releases included", async () => {
    for (const batch of [false, true]) {
      keyPrefix = `omnimeter:test:${randomUUID()}:`
      const clock = new ManualClock(1_000)
      const shared = limiterOn(clock, redis, batch)
      const reference = new InProcessRateLimiter(clock)
      for (let step = 0; step < 12; step += 1) {
        const requests = Array.from({ length: 10 }, (_, i) => {
          const priority = (i * 7 + step) % 10
          return {
            key: `sub:${["api", "whatsapp", "web"][i % 3]}`,
            requestsPerMinute: 20,
            tokensPerMinute: 50_000,
            tokens: 50 + ((i * 31 + step * 17) % 300),
            shared: [
              {
                key: "subscription:sub",
                requestsPerMinute: 10 + priority * 3,
                tokensPerMinute: 2_000 + priority * 500,
              },
              { key: "operator", requestsPerMinute: null, tokensPerMinute: 6_000 + priority * 400 },
            ],
          }
        })
        const answers = await Promise.all(requests.map((r) => shared.consume(r)))
        const expected: RateLimitResult[] = []
        for (const r of requests) expected.push(await reference.consume(r))
        expect(answers.map(withoutId)).toEqual(expected.map(withoutId))
        // Give every third grant back in both, then move on.
        for (const [i, answer] of answers.entries()) {
          const mirror = expected[i]
          const r = requests[i]
          if (i % 3 !== 0 || !answer.granted || !mirror?.granted || !r) continue
          await shared.release(r.key, answer.reservationId, ["subscription:sub", "operator"])
          await reference.release(r.key, mirror.reservationId, ["subscription:sub", "operator"])
        }
        clock.advance(7_000)
      }
    }
  })
})
