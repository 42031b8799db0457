import type { Clock } from "../core/clock.js"
import {
  RATE_WINDOW_MS,
  type RateLimiter,
  type RateLimitRequest,
  type RateLimitResult,
} from "./rate-limiter.js"

interface Entry {
  id: string
  at: number
  tokens: number
}

interface Window {
  entries: Entry[]
  tokens: number
}

/**
 * The sliding-window log in this process's memory: exact for one instance. Keys with no entry in the
 * window are dropped, so memory follows active channels only.
 */
export class InProcessRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, Window>()
  private sequence = 0
  private sweepAt = 0

  constructor(private readonly clock: Clock) {}

  async consume(request: RateLimitRequest): Promise<RateLimitResult> {
    const now = this.clock.now()
    this.sweep(now)
    const window = this.prune(request.key, now)
    const count = window.entries.length
    const oldest = window.entries[0]
    const resetMs = oldest ? oldest.at + RATE_WINDOW_MS - now : RATE_WINDOW_MS
    const state = { limit: request.requestsPerMinute, resetMs }
    const own = this.check(window, request.requestsPerMinute, request.tokensPerMinute, request.tokens, now)
    if (own) return { granted: false, ...own, ...state, remaining: own.remaining }
    // Shared windows after the channel's own: a turn its channel refuses never counts as shed.
    const shared = (request.shared ?? []).map((s) => this.prune(s.key, now))
    for (const [index, limits] of (request.shared ?? []).entries()) {
      const sharedWindow = shared[index]
      if (!sharedWindow) continue
      const denied = this.check(
        sharedWindow,
        limits.requestsPerMinute ?? Number.POSITIVE_INFINITY,
        limits.tokensPerMinute ?? Number.POSITIVE_INFINITY,
        request.tokens,
        now,
      )
      if (denied)
        return {
          granted: false,
          exceeded: denied.exceeded,
          retryAfterMs: denied.retryAfterMs,
          sharedIndex: index,
          ...state,
          remaining: request.requestsPerMinute - count,
        }
    }
    this.sequence += 1
    const entry = { id: String(this.sequence), at: now, tokens: request.tokens }
    for (const [i, target] of [window, ...shared].entries()) {
      target.entries.push(entry)
      target.tokens += request.tokens
      this.windows.set(i === 0 ? request.key : (request.shared?.[i - 1]?.key ?? request.key), target)
    }
    const first = window.entries[0] ?? entry
    return {
      granted: true,
      reservationId: entry.id,
      limit: request.requestsPerMinute,
      remaining: request.requestsPerMinute - window.entries.length,
      resetMs: first.at + RATE_WINDOW_MS - now,
    }
  }

  /** Whether one more request of `tokens` fits a window under these limits; the denial when not. */
  private check(
    window: Window,
    requestsPerMinute: number,
    tokensPerMinute: number,
    tokens: number,
    now: number,
  ):
    | { exceeded: "requests_per_minute" | "tokens_per_minute"; retryAfterMs: number; remaining: number }
    | undefined {
    const count = window.entries.length
    if (count + 1 > requestsPerMinute) {
      const blocker = window.entries[count - Math.max(0, requestsPerMinute)]
      const retryAfterMs = blocker ? blocker.at + RATE_WINDOW_MS - now : RATE_WINDOW_MS
      return { exceeded: "requests_per_minute", retryAfterMs: Math.max(1, retryAfterMs), remaining: 0 }
    }
    if (window.tokens + tokens > tokensPerMinute) {
      return {
        exceeded: "tokens_per_minute",
        retryAfterMs: tokenRetryAfter(window, tokens, tokensPerMinute, now),
        remaining: requestsPerMinute - count,
      }
    }
    return undefined
  }

  /**
   * Counts a grant made elsewhere (by the shared limiter) in this window without checking any limit, so
   * that a later consume here sees it; returns its reservation id for `release`.
   */
  record(key: string, tokens: number, sharedKeys: readonly string[] = []): string {
    const now = this.clock.now()
    this.sweep(now)
    this.sequence += 1
    const entry = { id: String(this.sequence), at: now, tokens }
    for (const k of [key, ...sharedKeys]) {
      const window = this.prune(k, now)
      window.entries.push(entry)
      window.tokens += tokens
      this.windows.set(k, window)
    }
    return entry.id
  }

  async release(key: string, reservationId: string, sharedKeys: readonly string[] = []): Promise<void> {
    for (const k of [key, ...sharedKeys]) {
      const window = this.windows.get(k)
      if (!window) continue
      const index = window.entries.findIndex((entry) => entry.id === reservationId)
      if (index < 0) continue
      const [removed] = window.entries.splice(index, 1)
      window.tokens -= removed?.tokens ?? 0
    }
  }

  async close(): Promise<void> {
    this.windows.clear()
  }

  private prune(key: string, now: number): Window {
    const window = this.windows.get(key) ?? { entries: [], tokens: 0 }
    const cutoff = now - RATE_WINDOW_MS
    let drop = 0
    while (drop < window.entries.length && (window.entries[drop]?.at ?? now) <= cutoff) {
      window.tokens -= window.entries[drop]?.tokens ?? 0
      drop += 1
    }
    if (drop > 0) window.entries.splice(0, drop)
    return window
  }

  /** Once a window length, forget keys that have gone quiet. */
  private sweep(now: number): void {
    if (now < this.sweepAt) return
    this.sweepAt = now + RATE_WINDOW_MS
    for (const key of [...this.windows.keys()]) {
      if (this.prune(key, now).entries.length === 0) this.windows.delete(key)
    }
  }
}

/** When enough old entries leave the window for `tokens` to fit; a full window if it never can. */
function tokenRetryAfter(window: Window, tokens: number, tokensPerMinute: number, now: number): number {
  if (tokens > tokensPerMinute) return RATE_WINDOW_MS
  let left = window.tokens
  for (const entry of window.entries) {
    left -= entry.tokens
    if (left + tokens <= tokensPerMinute) return Math.max(1, entry.at + RATE_WINDOW_MS - now)
  }
  return RATE_WINDOW_MS
}
