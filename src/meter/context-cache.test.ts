import { describe, expect, it } from "vitest"
import type { Subscription } from "../core/subscription.js"
import { ContextCache, type SubscriptionContexts } from "./context-cache.js"

function context(id: string, plan: Subscription["plan"] = "basic"): SubscriptionContexts {
  return {
    subscription: {
      id,
      entityId: `e-${id}`,
      entityType: "org",
      plan,
      tokenLimit: 1000,
      status: "active",
      timezone: "UTC",
      periodAnchor: new Date("2026-01-01T00:00:00Z"),
      createdAt: new Date("2026-01-01T00:00:00Z"),
      updatedAt: new Date("2026-01-01T00:00:00Z"),
      requestsPerMinute: null,
      tokensPerMinute: null,
      priorityCurve: null,
      quotaReservePercent: 0,
      quotaReserveMinPriority: 8,
    },
    overrides: {},
  }
}

function clock() {
  let now = 0
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

describe("the subscription context cache", () => {
  it("answers within its TTL and forgets afterwards", () => {
    const time = clock()
    const cache = new ContextCache({ ttlMs: 1000, now: time.now })
    cache.set("org", "e-a", context("a"), cache.generation)
    time.advance(999)
    expect(cache.get("org", "e-a", "website")?.subscription.id).toBe("a")
    time.advance(1)
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  it("answers every channel of a subscription from one entry, each with its own overrides", () => {
    const cache = new ContextCache()
    cache.set(
      "org",
      "e-a",
      { ...context("a"), overrides: { website: { requestsPerMinute: 5 } } },
      cache.generation,
    )
    expect(cache.get("org", "e-a", "website")?.overrides).toEqual({ requestsPerMinute: 5 })
    expect(cache.get("org", "e-a", "whatsapp")?.overrides).toEqual({})
    expect(cache.get("org", "e-a", "whatsapp")?.subscription.id).toBe("a")
    expect(cache.get("org", "e-b", "website")).toBeUndefined()
    expect(cache.size).toBe(1)
  })

  it("drops every channel of a subscription on invalidate, and only that subscription", () => {
    const cache = new ContextCache()
    cache.set("org", "e-a", context("a"), cache.generation)
    cache.set("org", "e-b", context("b"), cache.generation)
    cache.invalidate("a")
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
    expect(cache.get("org", "e-a", "whatsapp")).toBeUndefined()
    expect(cache.get("org", "e-b", "website")?.subscription.id).toBe("b")
  })

  it("does not store a read that raced an invalidation", () => {
    const cache = new ContextCache()
    const before = cache.generation
    cache.invalidate("a")
    cache.set("org", "e-a", context("a", "basic"), before)
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
  })

  it("hands a sweep every entry that served a turn since its read, at most once per half its TTL", () => {
    const time = clock()
    const cache = new ContextCache({ ttlMs: 1000, now: time.now })
    cache.set("org", "e-a", context("a"), cache.generation)
    cache.set("org", "e-b", context("b"), cache.generation)
    cache.get("org", "e-a", "website")
    time.advance(499)
    expect(cache.claimSweep()).toBeUndefined()
    time.advance(1)
    // Only the entry that answered a turn; the idle one is left to expire.
    expect(cache.claimSweep()).toEqual([{ entityType: "org", entityId: "e-a" }])
    cache.set("org", "e-a", context("a"), cache.generation) // the sweep's read
    cache.get("org", "e-a", "website")
    expect(cache.claimSweep()).toBeUndefined()
    time.advance(500)
    expect(cache.claimSweep()).toEqual([{ entityType: "org", entityId: "e-a" }])
    // Each use is swept once: nothing answered a turn since the last sweep.
    time.advance(500)
    expect(cache.claimSweep()).toBeUndefined()
  })

  it("keeps a swept entry answering until its TTL after the sweep's read began, not after it ended", () => {
    const time = clock()
    const cache = new ContextCache({ ttlMs: 1000, now: time.now })
    cache.set("org", "e-a", context("a"), cache.generation)
    cache.get("org", "e-a", "website")
    time.advance(600)
    expect(cache.claimSweep()).toHaveLength(1)
    const generation = cache.generation
    const readAt = cache.time
    time.advance(300) // the read takes 300 ms
    cache.set("org", "e-a", context("a", "enterprise"), generation, readAt)
    time.advance(699)
    expect(cache.get("org", "e-a", "website")?.subscription.plan).toBe("enterprise")
    time.advance(1)
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
    // A read that took longer than the TTL stores nothing.
    cache.set("org", "e-a", context("a"), cache.generation, cache.time - 1000)
    expect(cache.size).toBe(0)
  })

  it("does not store a sweep's read that raced an invalidation", () => {
    const time = clock()
    const cache = new ContextCache({ ttlMs: 1000, now: time.now })
    cache.set("org", "e-a", context("a"), cache.generation)
    cache.get("org", "e-a", "website")
    time.advance(500)
    expect(cache.claimSweep()).toHaveLength(1)
    const generation = cache.generation
    cache.invalidate("a")
    cache.set("org", "e-a", context("a", "enterprise"), generation)
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
  })

  it("stores nothing when its TTL is 0", () => {
    const cache = new ContextCache({ ttlMs: 0 })
    cache.set("org", "e-a", context("a"), cache.generation)
    expect(cache.size).toBe(0)
  })

  it("drops the oldest entry when full", () => {
    const cache = new ContextCache({ maxEntries: 2 })
    cache.set("org", "e-a", context("a"), cache.generation)
    cache.set("org", "e-b", context("b"), cache.generation)
    cache.set("org", "e-c", context("c"), cache.generation)
    expect(cache.size).toBe(2)
    expect(cache.get("org", "e-a", "website")).toBeUndefined()
    expect(cache.get("org", "e-c", "website")?.subscription.id).toBe("c")
  })

  it("refuses nonsensical options", () => {
    expect(() => new ContextCache({ ttlMs: -1 })).toThrow(RangeError)
    expect(() => new ContextCache({ maxEntries: 0 })).toThrow(RangeError)
  })
})
