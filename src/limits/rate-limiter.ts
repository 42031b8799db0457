/**
 * Per-channel rate limits: requests and estimated tokens in any rolling 60-second window.
 *
 * Design note. Goals, in order: (1) never grant more than the limit in any 60 s window, across every
 * instance sharing the limiter; (2) tell a denied caller exactly when a retry can pass; (3) let a turn that
 * is denied later (by quota) give its reservation back. A sliding-window log meets all three exactly: each
 * grant is an entry (time, tokens); a request passes when the entries of the last 60 s plus itself stay
 * within both limits. Memory is bounded by requests-per-minute entries per key. Approximations such as
 * fixed windows (2x bursts at the boundary) or GCRA (R + elapsed/T per minute) were rejected because a
 * "60 per minute" limit that grants 119 in some minute is not what a channel owner configured.
 */

export const RATE_WINDOW_MS = 60_000

/**
 * A window shared by more than one channel (a subscription's capacity, the deployment's), checked and
 * recorded in the same atomic step as the channel's own limits. Its limits are the thresholds this turn's
 * priority may fill (`core/capacity.ts`), not the capacity itself: the window's use is shared by every
 * priority, the threshold is the turn's own.
 */
export interface SharedWindowRequest {
  /** The shared window's key, e.g. `subscription:<id>` or `operator`; never a channel's key. */
  key: string
  /** Requests this turn may bring the window up to; null: no request capacity. */
  requestsPerMinute: number | null
  /** Tokens this turn may bring the window up to; null: no token capacity. */
  tokensPerMinute: number | null
}

export interface RateLimitRequest {
  /** One limit per key: `${subscriptionId}:${channel}`. */
  key: string
  requestsPerMinute: number
  tokensPerMinute: number
  /** Tokens this turn asks for (the estimate, before the channel multiplier). */
  tokens: number
  /** Shared windows the turn must also fit; all or nothing is recorded. */
  shared?: readonly SharedWindowRequest[]
}

export interface RateLimitState {
  /** The requests-per-minute limit in force. */
  limit: number
  /** Requests left in the current window after this call. */
  remaining: number
  /** Milliseconds until the oldest counted request leaves the window. */
  resetMs: number
}

export type RateLimitResult =
  | ({ granted: true; reservationId: string } & RateLimitState)
  | ({
      granted: false
      exceeded: "requests_per_minute" | "tokens_per_minute"
      retryAfterMs: number
      /** Which of `request.shared` denied the turn; absent when the channel's own limit did. */
      sharedIndex?: number
    } & RateLimitState)

/** A rate limiter shared by whatever it is shared by: one process, or every process on one Redis. */
export interface RateLimiter {
  /** Checks both limits and, when they allow it, records the request in the same atomic step. */
  consume(request: RateLimitRequest): Promise<RateLimitResult>
  /**
   * Gives back a granted reservation (a turn later denied by quota does not count against the limit), from
   * the channel's window and from the shared windows (`sharedKeys`, the keys of `request.shared`).
   */
  release(key: string, reservationId: string, sharedKeys?: readonly string[]): Promise<void>
  close(): Promise<void>
}
