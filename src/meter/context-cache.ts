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
 * - Refreshed ahead (issue 18): a turn served by an entry past half its TTL claims a refresh
 *   (`claimRefresh`), and the meter reads the subscription again in the background while the entry keeps
 *   answering. A subscription seen more often than once per half TTL is then never read on a turn's path;
 *   the bound of goal 3 is unchanged, since an entry still answers only until its own expiry.
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
  /** A refresh was claimed for this entry (see {@link ContextCache.claimRefresh}). */
  refreshing: boolean
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

  constructor(options: ContextCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? 1000
    this.maxEntries = options.maxEntries ?? 100_000
    this.now = options.now ?? (() => performance.now())
    if (!Number.isFinite(this.ttlMs) || this.ttlMs < 0)
      throw new RangeError(`ttlMs must be zero or more milliseconds (got ${this.ttlMs})`)
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer (got ${this.maxEntries})`)
  }

  get(entityType: string, entityId: string, channel: Channel): TurnContext | undefined {
    const key = cacheKey(entityType, entityId)
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expires > this.now()) return contextOf(entry.contexts, channel)
    this.remove(key, entry.contexts.subscription.id)
    return undefined
  }

  /**
   * Whether the caller should read the entity's contexts again in the background: true once per entry,
   * for the first turn it serves past half its time-to-live. The entry keeps answering until it expires;
   * the read's {@link set} replaces it.
   */
  claimRefresh(entityType: string, entityId: string): boolean {
    const entry = this.entries.get(cacheKey(entityType, entityId))
    if (!entry || entry.refreshing || entry.expires - this.now() > this.ttlMs / 2) return false
    entry.refreshing = true
    return true
  }

  /** Take this before reading a context from the database; pass it to {@link set}. */
  get generation(): number {
    return this.invalidations
  }

  set(entityType: string, entityId: string, contexts: SubscriptionContexts, generation: number): void {
    if (this.ttlMs === 0 || generation !== this.invalidations) return
    const key = cacheKey(entityType, entityId)
    const previous = this.entries.get(key)
    if (previous) this.remove(key, previous.contexts.subscription.id)
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.entries().next().value
      if (!oldest) break
      this.remove(oldest[0], oldest[1].contexts.subscription.id)
    }
    this.entries.set(key, { contexts, expires: this.now() + this.ttlMs, refreshing: false })
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
