/**
 * The subscription context of a turn (the subscription and its channel's overrides), kept in process
 * memory for a short while so the hot path does not read it from the database on every turn. An entry
 * holds a subscription with every channel's overrides, read at once: a subscription whose turns come over
 * several channels is read once per TTL, not once per channel.
 *
 * Design note. Goals, in order: (1) quota stays exact whatever the cache holds: the token limit a charge is
 * checked against is always read inside the charging statement, never from here; (2) a change made
 * through this instance (plan, limit, status, timezone, channel settings) applies to the very next turn:
 * the meter calls `invalidate` before it answers the change; (3) a change made through another instance
 * applies within `ttlMs` (the documented staleness bound, default 1 s); (4) memory is bounded.
 *
 * - Only found subscriptions are cached: a subscription created on another instance is seen at once.
 * - An entry is keyed by entity (type and id); a second index by subscription id lets `invalidate` drop
 *   the subscription's entries without scanning the cache.
 * - A read that raced an invalidation is not stored: `set` takes the `generation` seen before the read and
 *   drops the entry when an invalidation happened since (otherwise a lookup started just before a change
 *   could re-cache the old state for a whole TTL).
 * - Bounded at `maxEntries`: when full, the oldest entry is dropped (insertion order of the Map).
 * - Refreshed in the background, all at once (issue 18): every half TTL, the first turn to come claims a
 *   sweep (`claimSweep`), which hands the meter every entry that has served a turn since it was read; the
 *   meter reads them again in ONE query off the turns' path, and `set` replaces them while they keep
 *   answering. A subscription seen at least once per half TTL is then never read on a turn's path, and a
 *   busy deployment pays one background query per half TTL instead of one per subscription. An entry nobody
 *   used since its read is left to expire. The bound of goal 3 is unchanged: an entry answers only until
 *   `ttlMs` after the read that produced it started (`set`'s `readAt`), and a read that raced an
 *   invalidation is dropped as before.
 */
import type { Channel } from "../core/channels.js"
import type { ChannelOverrides } from "../core/decision.js"
import type { Subscription } from "../core/subscription.js"
import type { SubscriptionContexts } from "../storage/subscriptions.js"

export type { SubscriptionContexts }

export interface TurnContext {
  subscription: Subscription
  overrides: ChannelOverrides
}

const NO_OVERRIDES: ChannelOverrides = Object.freeze({})

/** The context of a turn on `channel` of a subscription read with all its channels. */
export function contextOf(contexts: SubscriptionContexts, channel: Channel): TurnContext {
  return { subscription: contexts.subscription, overrides: contexts.overrides[channel] ?? NO_OVERRIDES }
}

export interface ContextCacheOptions {
  /** How long an entry answers; 0 turns the cache off. Default 1000 ms. */
  ttlMs?: number
  /** Most entries kept. Default 100,000. */
  maxEntries?: number
  /** A monotonic clock in milliseconds (default `performance.now`): staleness is about real time. */
  now?: () => number
}

interface Entry {
  contexts: SubscriptionContexts
  expires: number
  /** It served a turn since it was read: the next sweep reads it again (see {@link ContextCache.claimSweep}). */
  used: boolean
}

/** An entity whose contexts a sweep reads again. */
export interface EntityKey {
  entityType: string
  entityId: string
}

/**
 * @example
 * ```ts
 * const cache = new ContextCache({ ttlMs: 1000 })
 * const context = cache.get("organization", "acme", "whatsapp") ?? (await loadAndRemember())
 * // loadAndRemember: read the subscription with all its channels, then cache.set("organization", "acme", all, generation)
 * cache.invalidate(subscriptionId) // after changing the subscription
 * ```
 */
export class ContextCache {
  readonly ttlMs: number
  private readonly maxEntries: number
  private readonly now: () => number
  private readonly entries = new Map<string, Entry>()
  private readonly keysBySubscription = new Map<string, Set<string>>()
  private invalidations = 0
  /** When the last sweep was claimed (the cache's creation before the first). */
  private lastSweep: number

  constructor(options: ContextCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 1000
    this.maxEntries = options.maxEntries ?? 100_000
    this.now = options.now ?? (() => performance.now())
    this.lastSweep = this.now()
    if (!Number.isFinite(this.ttlMs) || this.ttlMs < 0)
      throw new RangeError(`ttlMs must be zero or more milliseconds (got ${this.ttlMs})`)
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer (got ${this.maxEntries})`)
  }

  get(entityType: string, entityId: string, channel: Channel): TurnContext | undefined {
    const key = cacheKey(entityType, entityId)
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expires > this.now()) {
      entry.used = true
      return contextOf(entry.contexts, channel)
    }
    this.remove(key, entry.contexts.subscription.id)
    return undefined
  }

  /**
   * The entities a background sweep should read again now, or undefined when no sweep is due: at most one
   * sweep per half TTL, handing every live entry that served a turn since it was read (each entry once).
   * Pass `readAt` (the time before the read) and the {@link generation} taken before it to {@link set}.
   */
  claimSweep(): EntityKey[] | undefined {
    if (this.ttlMs === 0 || this.entries.size === 0) return undefined
    const now = this.now()
    if (now - this.lastSweep < this.ttlMs / 2) return undefined
    this.lastSweep = now
    const due: EntityKey[] = []
    for (const entry of this.entries.values()) {
      if (!entry.used || entry.expires <= now) continue
      entry.used = false
      const { entityType, entityId } = entry.contexts.subscription
      due.push({ entityType, entityId })
    }
    return due.length > 0 ? due : undefined
  }

  /** The cache's clock: take it before a read, and pass it to {@link set} as `readAt`. */
  get time(): number {
    return this.now()
  }

  /** Take this before reading a context from the database; pass it to {@link set}. */
  get generation(): number {
    return this.invalidations
  }

  /**
   * Stores what a read found. `generation` is the one taken before the read (a read that raced an
   * invalidation is dropped); `readAt`, the cache's {@link time} before the read (default: now), starts
   * the entry's time-to-live, so a slow read does not stretch the staleness bound.
   */
  set(
    entityType: string,
    entityId: string,
    contexts: SubscriptionContexts,
    generation: number,
    readAt = this.now(),
  ): void {
    if (this.ttlMs === 0 || generation !== this.invalidations) return
    const expires = readAt + this.ttlMs
    if (expires <= this.now()) return
    const key = cacheKey(entityType, entityId)
    const previous = this.entries.get(key)
    if (previous) this.remove(key, previous.contexts.subscription.id)
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.entries().next().value
      if (!oldest) break
      this.remove(oldest[0], oldest[1].contexts.subscription.id)
    }
    this.entries.set(key, { contexts, expires, used: false })
    const id = contexts.subscription.id
    const keys = this.keysBySubscription.get(id) ?? new Set<string>()
    keys.add(key)
    this.keysBySubscription.set(id, keys)
  }

  /** Forgets every entry of the subscription: the next turn reads it afresh. */
  invalidate(subscriptionId: string): void {
    this.invalidations += 1
    const keys = this.keysBySubscription.get(subscriptionId)
    if (!keys) return
    for (const key of keys) this.entries.delete(key)
    this.keysBySubscription.delete(subscriptionId)
  }

  clear(): void {
    this.invalidations += 1
    this.entries.clear()
    this.keysBySubscription.clear()
  }

  get size(): number {
    return this.entries.size
  }

  private remove(key: string, subscriptionId: string): void {
    this.entries.delete(key)
    const keys = this.keysBySubscription.get(subscriptionId)
    keys?.delete(key)
    if (keys?.size === 0) this.keysBySubscription.delete(subscriptionId)
  }
}

function cacheKey(entityType: string, entityId: string): string {
  return `${entityType}\u0000${entityId}`
}
