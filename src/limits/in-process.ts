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
    if (count + 1 > request.requestsPerMinute) {
      const blocker = window.entries[count - request.requestsPerMinute]
      const retryAfterMs = blocker ? blocker.at + RATE_WINDOW_MS - now : RATE_WINDOW_MS
      return {
        granted: false,
        exceeded: "requests_per_minute",
        retryAfterMs: Math.max(1, retryAfterMs),
        limit: request.requestsPerMinute,
        remaining: 0,
        resetMs,
      }
    }
    if (window.tokens + request.tokens > request.tokensPerMinute) {
      return {
        granted: false,
        exceeded: "tokens_per_minute",
        retryAfterMs: this.tokenRetryAfter(window, request, now),
        limit: request.requestsPerMinute,
        remaining: request.requestsPerMinute - count,
        resetMs,
      }
    }
    this.sequence += 1
    const entry = { id: String(this.sequence), at: now, tokens: request.tokens }
    window.entries.push(entry)
    window.tokens += request.tokens
    this.windows.set(request.key, window)
    const first = window.entries[0] ?? entry
    return {
      granted: true,
      reservationId: entry.id,
      limit: request.requestsPerMinute,
      remaining: request.requestsPerMinute - window.entries.length,
      resetMs: first.at + RATE_WINDOW_MS - now,
    }
  }

  /**
   * Counts a grant made elsewhere (by the shared limiter) in this window without checking any limit, so
   * that a later consume here sees it; returns its reservation id for `release`.
   */
  record(key: string, tokens: number): string {
    const now = this.clock.now()
    this.sweep(now)
    const window = this.prune(key, now)
    this.sequence += 1
    const id = String(this.sequence)
    window.entries.push({ id, at: now, tokens })
    window.tokens += tokens
    this.windows.set(key, window)
    return id
  }

  async release(key: string, reservationId: string): Promise<void> {
    const window = this.windows.get(key)
    if (!window) return
    const index = window.entries.findIndex((entry) => entry.id === reservationId)
    if (index < 0) return
    const [removed] = window.entries.splice(index, 1)
    window.tokens -= removed?.tokens ?? 0
  }

  async close(): Promise<void> {
    this.windows.clear()
  }

  /** When enough old entries leave the window for `request.tokens` to fit; never if it cannot ever fit. */
  private tokenRetryAfter(window: Window, request: RateLimitRequest, now: number): number {
    if (request.tokens > request.tokensPerMinute) return RATE_WINDOW_MS
    let tokens = window.tokens
    for (const entry of window.entries) {
      tokens -= entry.tokens
      if (tokens + request.tokens <= request.tokensPerMinute)
        return Math.max(1, entry.at + RATE_WINDOW_MS - now)
    }
    return RATE_WINDOW_MS
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
