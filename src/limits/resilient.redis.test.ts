/**
 * The resilient limiter against a real Redis that dies, hangs and comes back: each test runs its own
 * `redis-server` child on a random port, so it can be killed without touching the shared test server.
 */
import { setTimeout as sleep } from "node:timers/promises"
import { Redis } from "ioredis"
import { afterEach, describe, expect, it } from "vitest"
import { freePort, type RunningProcess, startRedisServer } from "../../test/support/processes.js"
import type { RateLimitResult } from "./rate-limiter.js"
import { createRedisClient, type RedisClient, RedisRateLimiter } from "./redis.js"
import {
  type RateLimiterSwitch,
  ResilientRateLimiter,
  type ResilientRateLimiterOptions,
} from "./resilient.js"

const request = { key: "sub:whatsapp", requestsPerMinute: 3, tokensPerMinute: 1_000_000, tokens: 10 }

/** A throwaway redis-server: no persistence, killed after each test. */
class RedisServer {
  private process: RunningProcess | undefined

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    await server.restart()
    return server
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** (Re)starts the server on its port and resolves once it accepts connections. */
  async restart(): Promise<void> {
    this.process = await startRedisServer(this.port)
  }

  /** Freezes the server: connections stay open but nothing is answered, like a hung host. */
  pause(): void {
    this.process?.child.kill("SIGSTOP")
  }

  /** Stops it with no grace (SIGTERM, then SIGKILL at once: a frozen server too); resolves once it exited. */
  async kill(): Promise<void> {
    const running = this.process
    this.process = undefined
    await running?.stop(0)
  }
}

let server: RedisServer | undefined
let client: RedisClient | undefined

afterEach(async () => {
  client?.disconnect()
  client = undefined
  await server?.kill()
  server = undefined
})

/** A resilient limiter over a fresh private Redis, with quick reconnects and a short retry interval. */
async function setup(options: Partial<ResilientRateLimiterOptions> = {}) {
  server = await RedisServer.start()
  const redis = createRedisClient(server.url, { overrides: { retryStrategy: () => 50 } })
  client = redis
  await new Promise((resolve) => redis.once("ready", resolve))
  const switches: RateLimiterSwitch[] = []
  const limiter = new ResilientRateLimiter({
    primary: new RedisRateLimiter(redis),
    retryAfterMs: 200,
    onSwitch: (change) => switches.push(change),
    ...options,
  })
  return { server, redis, limiter, switches }
}

/** Each answer with how long it took. */
async function timed(limiter: ResilientRateLimiter, times: number) {
  const answers: Array<{ result: RateLimitResult; ms: number }> = []
  for (let i = 0; i < times; i += 1) {
    const start = performance.now()
    const result = await limiter.consume(request)
    answers.push({ result, ms: performance.now() - start })
  }
  return answers
}

describe("the resilient rate limiter on a real Redis", () => {
  it("counts grants in Redis while Redis is healthy", async () => {
    const { redis, limiter } = await setup()
    expect(await limiter.consume(request)).toMatchObject({
      granted: true,
      reservationId: expect.stringMatching(/^r:/),
    })
    expect(await redis.zcard(`omnimeter:rl:{${request.key}}`)).toBe(1)
    expect(limiter.status()).toMatchObject({ backend: "redis", healthy: true, failures: 0 })
  })

  it("keeps answering with per-instance limits while Redis is down, then returns to Redis by itself", async () => {
    const { server, limiter, switches } = await setup()
    expect((await limiter.consume(request)).granted).toBe(true)

    await server.kill()
    const answers = await timed(limiter, 4)
    // The grant made through Redis before the outage still counts in this instance's window: 2 more of 3.
    expect(answers.map(({ result }) => result.granted)).toEqual([true, true, false, false])
    expect(answers[0]?.result).toMatchObject({ reservationId: expect.stringMatching(/^f:/) })
    expect(answers[3]?.result).toMatchObject({ exceeded: "requests_per_minute" })
    for (const { ms } of answers) expect(ms).toBeLessThan(900)
    expect(limiter.status()).toMatchObject({ backend: "fallback", healthy: false })
    expect(limiter.status().failures).toBeGreaterThanOrEqual(1)
    expect(limiter.status().lastError).toEqual(expect.any(String))

    await server.restart()
    const deadline = Date.now() + 5_000
    let result = await limiter.consume(request)
    while (!limiter.status().healthy && Date.now() < deadline) {
      await sleep(50)
      result = await limiter.consume(request)
    }
    expect(limiter.status()).toMatchObject({ backend: "redis", healthy: true, failures: 0 })
    expect(result).toMatchObject({ granted: true, reservationId: expect.stringMatching(/^r:/) })
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      ["shared", "fallback", "connection_lost"],
      ["fallback", "shared", "recovered"],
    ])
  })

  it("waits for a slow Redis within its deadline instead of falling back", async () => {
    const { server, limiter, switches } = await setup()
    const sleeper = new Redis(server.url)
    try {
      const answers = []
      for (let round = 0; round < 3; round += 1) {
        // Redis answers nothing for 300 ms, as on a busy host: every decision still comes from Redis.
        const sleeping = sleeper.call("DEBUG", "SLEEP", "0.3").catch((error: unknown) => error)
        await sleep(20)
        answers.push(...(await timed(limiter, 1)))
        await sleeping
      }
      expect(answers.map(({ result }) => result.granted)).toEqual([true, true, true])
      for (const { result } of answers)
        expect(result).toMatchObject({ reservationId: expect.stringMatching(/^r:/) })
      expect(Math.max(...answers.map(({ ms }) => ms))).toBeGreaterThan(150)
      expect(switches).toEqual([])
      expect(limiter.status()).toMatchObject({ healthy: true, failures: 0 })
    } finally {
      sleeper.disconnect()
    }
  })

  it("answers within its deadline when Redis hangs", async () => {
    const { server, limiter } = await setup({ deadlineMs: 100, failureThreshold: 1 })
    expect((await limiter.consume(request)).granted).toBe(true)
    server.pause()
    const [answer] = await timed(limiter, 1)
    expect(answer?.result).toMatchObject({ granted: true, reservationId: expect.stringMatching(/^f:/) })
    expect(answer?.ms).toBeLessThan(900)
    expect(limiter.status()).toMatchObject({ healthy: false, lastError: expect.stringMatching(/100 ms/) })
  })

  it("refuses every request under the deny policy while Redis is down", async () => {
    const { server, limiter } = await setup({ onRedisFailure: "deny", retryAfterMs: 300 })
    await server.kill()
    for (const { result } of await timed(limiter, 3))
      expect(result).toMatchObject({ granted: false, exceeded: "requests_per_minute", retryAfterMs: 300 })
    expect(limiter.status()).toMatchObject({ healthy: false })
  })

  it("grants every request without counting it under the allow policy while Redis is down", async () => {
    const { server, limiter } = await setup({ onRedisFailure: "allow" })
    await server.kill()
    const answers = await timed(limiter, 5)
    expect(answers.map(({ result }) => result.granted)).toEqual([true, true, true, true, true])
    for (const { result } of answers)
      if (result.granted) await limiter.release(request.key, result.reservationId)
    expect(limiter.status()).toMatchObject({ healthy: false })
  })
})
