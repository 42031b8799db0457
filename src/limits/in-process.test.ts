import { describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { InProcessRateLimiter } from "./in-process.js"

const request = { key: "sub:whatsapp", requestsPerMinute: 3, tokensPerMinute: 1000, tokens: 100 }

describe("the in-process rate limiter", () => {
  it("grants up to the requests-per-minute limit and then says when to retry", async () => {
    const clock = new ManualClock(0)
    const limiter = new InProcessRateLimiter(clock)
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
    const limiter = new InProcessRateLimiter(clock)
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
    const limiter = new InProcessRateLimiter(clock)
    const big = { ...request, requestsPerMinute: 100, tokens: 400 }
    expect((await limiter.consume(big)).granted).toBe(true)
    clock.advance(5_000)
    expect((await limiter.consume(big)).granted).toBe(true)
    const denied = await limiter.consume(big)
    expect(denied).toMatchObject({ granted: false, exceeded: "tokens_per_minute", retryAfterMs: 55_000 })
  })

  it("gives a released reservation back", async () => {
    const limiter = new InProcessRateLimiter(new ManualClock(0))
    const first = await limiter.consume({ ...request, requestsPerMinute: 1 })
    expect(first.granted).toBe(true)
    if (first.granted) await limiter.release(request.key, first.reservationId)
    expect((await limiter.consume({ ...request, requestsPerMinute: 1 })).granted).toBe(true)
  })

  it("keeps channels and subscriptions apart", async () => {
    const limiter = new InProcessRateLimiter(new ManualClock(0))
    const one = { ...request, requestsPerMinute: 1 }
    expect((await limiter.consume(one)).granted).toBe(true)
    expect((await limiter.consume({ ...one, key: "sub:website" })).granted).toBe(true)
    expect((await limiter.consume(one)).granted).toBe(false)
  })

  it("reports the remaining requests in the window", async () => {
    const limiter = new InProcessRateLimiter(new ManualClock(0))
    const result = await limiter.consume(request)
    expect(result).toMatchObject({ limit: 3, remaining: 2 })
  })

  it("counts a grant recorded from elsewhere without checking it, and gives it back on release", async () => {
    const clock = new ManualClock(0)
    const limiter = new InProcessRateLimiter(clock)
    const ids = [
      limiter.record(request.key, 100),
      limiter.record(request.key, 100),
      limiter.record(request.key, 100),
    ]
    expect(limiter.record(request.key, 100)).toBe("4")
    expect(await limiter.consume(request)).toMatchObject({ granted: false, exceeded: "requests_per_minute" })
    for (const id of ids) await limiter.release(request.key, id)
    expect(await limiter.consume(request)).toMatchObject({ granted: true, remaining: 1 })
    clock.advance(60_000)
    expect(await limiter.consume(request)).toMatchObject({ granted: true, remaining: 2 })
  })
})

describe("shared windows in the in-process rate limiter", () => {
  const channel = (key: string, threshold: number) => ({
    key,
    requestsPerMinute: 1000,
    tokensPerMinute: 1_000_000,
    tokens: 100,
    shared: [{ key: "subscription:s", requestsPerMinute: null, tokensPerMinute: threshold }],
  })

  it("sheds the lower threshold first, and keeps the rest of the window for the higher one", async () => {
    const clock = new ManualClock(0)
    const limiter = new InProcessRateLimiter(clock)
    // A capacity of 1,000 tokens: the low priority may fill 500, the high one all of it.
    for (let i = 0; i < 5; i += 1) expect((await limiter.consume(channel("s:api", 500))).granted).toBe(true)
    const shed = await limiter.consume(channel("s:api", 500))
    expect(shed).toMatchObject({ granted: false, exceeded: "tokens_per_minute", sharedIndex: 0 })
    for (let i = 0; i < 5; i += 1)
      expect((await limiter.consume(channel("s:whatsapp", 1000))).granted).toBe(true)
    expect(await limiter.consume(channel("s:whatsapp", 1000))).toMatchObject({
      granted: false,
      sharedIndex: 0,
    })
  })

  it("records a grant in every window or in none, and gives it back from all of them", async () => {
    const clock = new ManualClock(0)
    const limiter = new InProcessRateLimiter(clock)
    const first = await limiter.consume(channel("s:api", 100))
    expect(first.granted).toBe(true)
    // The channel's own limit refuses: nothing is recorded in the shared window either.
    const refused = await limiter.consume({ ...channel("s:web", 1000), requestsPerMinute: 0 })
    expect(refused).toMatchObject({ granted: false, exceeded: "requests_per_minute" })
    expect(refused.granted ? undefined : refused.sharedIndex).toBeUndefined()
    expect(await limiter.consume(channel("s:web", 200))).toMatchObject({ granted: true })
    expect(await limiter.consume(channel("s:web", 200))).toMatchObject({ granted: false, sharedIndex: 0 })
    if (first.granted) await limiter.release("s:api", first.reservationId, ["subscription:s"])
    expect(await limiter.consume(channel("s:web", 200))).toMatchObject({ granted: true })
  })

  it("says when the shed turn can pass: when enough of the window has left for its threshold", async () => {
    const clock = new ManualClock(0)
    const limiter = new InProcessRateLimiter(clock)
    await limiter.consume(channel("s:api", 1000))
    clock.advance(10_000)
    await limiter.consume(channel("s:api", 1000))
    const shed = await limiter.consume(channel("s:api", 200))
    expect(shed).toMatchObject({ granted: false, retryAfterMs: 50_000 })
  })
})
