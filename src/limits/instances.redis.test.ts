import { randomUUID } from "node:crypto"
import { setTimeout as sleep } from "node:timers/promises"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { InstanceHeartbeat } from "./instances.js"

const url = process.env.OMNIMETER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

let redis: Redis

beforeAll(() => {
  redis = new Redis(url)
})

afterAll(async () => {
  await redis.quit()
})

/** Heartbeats under a key prefix of their own, so that runs never count each other. */
function heartbeats(count: number, options: { ttlMs?: number } = {}) {
  const keyPrefix = `omnimeter:test:${randomUUID()}:`
  return {
    key: `${keyPrefix}{instances}`,
    beats: Array.from(
      { length: count },
      (_, i) => new InstanceHeartbeat({ redis, keyPrefix, instanceId: `i${i}`, ...options }),
    ),
  }
}

describe("the instance heartbeat", () => {
  it("counts one until its first beat, then every live instance", async () => {
    const { key, beats } = heartbeats(3)
    const [first, second, third] = beats
    if (!first || !second || !third) throw new Error("three heartbeats")
    expect(first.count()).toBe(1)
    expect(await first.runOnce()).toBe(1)
    await second.runOnce()
    expect(await third.runOnce()).toBe(3)
    expect(await first.runOnce()).toBe(3)
    expect(first.count()).toBe(3)
    expect((await redis.zrange(key, 0, -1)).sort()).toEqual(["i0", "i1", "i2"])
    await redis.del(key)
  })

  it("forgets an instance that stopped beating once the time to live has passed", async () => {
    const { key, beats } = heartbeats(2, { ttlMs: 300 })
    const [first, second] = beats
    if (!first || !second) throw new Error("two heartbeats")
    await first.runOnce()
    expect(await second.runOnce()).toBe(2)
    await sleep(400)
    expect(await first.runOnce()).toBe(1)
    expect(await redis.pttl(key)).toBeLessThanOrEqual(300)
    await redis.del(key)
  })

  it("leaves the set when it stops, so the others' next beat counts one fewer", async () => {
    const { key, beats } = heartbeats(2)
    const [first, second] = beats
    if (!first || !second) throw new Error("two heartbeats")
    await first.runOnce()
    await second.runOnce()
    await second.stop()
    expect(await first.runOnce()).toBe(1)
    await redis.del(key)
  })

  it("does not dip while the instances re-register in a Redis that came back empty", async () => {
    const clock = new ManualClock(0)
    const keyPrefix = `omnimeter:test:${randomUUID()}:`
    const key = `${keyPrefix}{instances}`
    const [first, second, third] = ["a", "b", "c"].map(
      (instanceId) => new InstanceHeartbeat({ redis, keyPrefix, instanceId, ttlMs: 15_000, clock }),
    )
    if (!first || !second || !third) throw new Error("three heartbeats")
    await second.runOnce()
    await third.runOnce()
    expect(await first.runOnce()).toBe(3)
    await redis.del(key)
    clock.advance(5_000)
    expect(await first.runOnce()).toBe(1)
    expect(first.count()).toBe(3)
    clock.advance(10_000)
    expect(first.count()).toBe(1)
    await redis.del(key)
  })

  it("keeps the last count when Redis cannot be reached", async () => {
    const keyPrefix = `omnimeter:test:${randomUUID()}:`
    const client = new Redis(url, { enableOfflineQueue: false, retryStrategy: () => null })
    client.on("error", () => {})
    await new Promise((resolve) => client.once("ready", resolve))
    const other = new InstanceHeartbeat({ redis, keyPrefix, instanceId: "other" })
    const heartbeat = new InstanceHeartbeat({ redis: client, keyPrefix, instanceId: "mine" })
    await other.runOnce()
    expect(await heartbeat.runOnce()).toBe(2)
    client.disconnect()
    await expect(heartbeat.runOnce()).rejects.toThrow()
    expect(heartbeat.count()).toBe(2)
    await redis.del(`${keyPrefix}{instances}`)
  })

  it("refuses a key prefix that would break the cluster hash tag", () => {
    expect(() => new InstanceHeartbeat({ redis, keyPrefix: "x{y}" })).toThrow(TypeError)
  })
})
