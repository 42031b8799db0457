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

  it("claims one background refresh per entry, from the first turn past half its TTL", () => {
    const time = clock()
    const cache = new ContextCache({ ttlMs: 1000, now: time.now })
    expect(cache.claimRefresh("org", "e-a")).toBe(false)
    cache.set("org", "e-a", context("a"), cache.generation)
    time.advance(499)
    expect(cache.claimRefresh("org", "e-a")).toBe(false)
    time.advance(1)
    expect(cache.claimRefresh("org", "e-a")).toBe(true)
    expect(cache.claimRefresh("org", "e-a")).toBe(false)
    // The entry keeps answering until its own expiry; the refreshed read replaces it with a new one.
    time.advance(499)
    expect(cache.get("org", "e-a", "website")?.subscription.plan).toBe("basic")
    cache.set("org", "e-a", context("a", "enterprise"), cache.generation)
    expect(cache.get("org", "e-a", "website")?.subscription.plan).toBe("enterprise")
    expect(cache.claimRefresh("org", "e-a")).toBe(false)
    time.advance(500)
    expect(cache.claimRefresh("org", "e-a")).toBe(true)
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
