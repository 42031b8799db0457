/**
 * Shared windows (a subscription's or the deployment's capacity) on a real 3-master Redis Cluster: the
 * channel's window and the shared ones live in different hash slots, so the limiter decides them window
 * by window and gives earlier grants back on a later refusal. Checked against the in-process limiter,
 * answer for answer, releases included.
 */
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { InProcessRateLimiter } from "../../src/limits/in-process.js"
import type { RateLimitResult } from "../../src/limits/rate-limiter.js"
import { createRedisClient, type RedisClient, RedisRateLimiter } from "../../src/limits/redis.js"
import { keySlot } from "../../src/limits/slot.js"
import { type RedisCluster, startRedisCluster } from "../support/redis-cluster.js"

let cluster: RedisCluster
let client: RedisClient

beforeAll(async () => {
  cluster = await startRedisCluster(3)
  client = createRedisClient(cluster.urls)
  await new Promise((resolve) => client.once("ready", resolve))
}, 120_000)

afterAll(async () => {
  await client?.quit()
  await cluster?.destroy()
})

function withoutId(result: RateLimitResult): object {
  if (!result.granted) return result
  const { reservationId: _, ...rest } = result
  return rest
}

describe("shared windows on a Redis Cluster", () => {
  it("decide exactly as the in-process limiter although their keys live in different slots", async () => {
    const keyPrefix = `omnimeter-chaos-${randomBytes(4).toString("hex")}:`
    const clock = new ManualClock(1_000)
    const limiter = new RedisRateLimiter({ redis: client, keyPrefix, clock, batch: true })
    const reference = new InProcessRateLimiter(clock)
    const sharedKeys = ["subscription:sub", "operator"]
    expect(
      new Set(["sub:api", ...sharedKeys].map((k) => keySlot(`${keyPrefix}{${k}}`))).size,
    ).toBeGreaterThan(1)
    let shed = 0
    for (let step = 0; step < 10; step += 1) {
      const requests = Array.from({ length: 8 }, (_, i) => {
        const priority = (i * 7 + step) % 10
        return {
          key: `sub:${["api", "whatsapp"][i % 2]}`,
          requestsPerMinute: 15,
          tokensPerMinute: 50_000,
          tokens: 50 + ((i * 31 + step * 17) % 300),
          shared: [
            {
              key: "subscription:sub",
              requestsPerMinute: 8 + priority * 2,
              tokensPerMinute: 2_000 + priority * 400,
            },
            { key: "operator", requestsPerMinute: null, tokensPerMinute: 5_000 + priority * 300 },
          ],
        }
      })
      // One at a time: the window-by-window path is exact when decisions do not race.
      for (const r of requests) {
        const answer = await limiter.consume(r)
        const expected = await reference.consume(r)
        expect(withoutId(answer)).toEqual(withoutId(expected))
        if (!answer.granted && answer.sharedIndex !== undefined) shed += 1
        if (answer.granted && expected.granted && step % 2 === 0) {
          await limiter.release(r.key, answer.reservationId, sharedKeys)
          await reference.release(r.key, expected.reservationId, sharedKeys)
        }
      }
      clock.advance(9_000)
    }
    // The sequence reaches the shared thresholds: some turns were refused by a shared window.
    expect(shed).toBeGreaterThan(5)
  })
})
