/**
 * The in-process load the meter benchmarks share: enterprise subscriptions with rate limits raised out of the
 * way, and `concurrency` callers consuming turns in a loop for `seconds`, spread over the subscriptions and
 * three channels.
 */
import { performance } from "node:perf_hooks"
import type { Meter } from "../../src/index.js"

const CHANNELS = ["website", "whatsapp", "api"] as const

/** Creates `count` subscriptions (entity ids `bench-<i>`) and returns their entity ids. */
export async function prepareSubscriptions(
  meter: Meter,
  count = 100,
  tokenLimit: (index: number) => number = () => 1e14,
): Promise<string[]> {
  const entities: string[] = []
  for (let i = 0; i < count; i += 1) {
    const entityId = `bench-${i}`
    const sub = await meter.createSubscription({
      entityId,
      entityType: "org",
      plan: "enterprise",
      tokenLimit: tokenLimit(i),
    })
    for (const channel of CHANNELS) {
      await meter.updateChannelConfig(sub.id, channel, {
        requestsPerMinute: 1_000_000,
        tokensPerMinute: 1_000_000_000,
      })
    }
    entities.push(entityId)
  }
  return entities
}

export interface LoadResult {
  allowed: number
  denied: number
  /** Allowed decisions per second. */
  perSecond: number
  /** Latency of one call, in ms. */
  p50: number
  p90: number
  p99: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

let turn = 0

/** Runs the load once and measures it. */
export async function driveMeter(
  meter: Meter,
  entities: string[],
  {
    seconds,
    concurrency,
    keyed = false,
    halfWithoutSession = false,
  }: {
    seconds: number
    concurrency: number
    /** Every turn carries a unique idempotency key, the path a retrying client takes. */
    keyed?: boolean
    /** Every other turn has no session id (its session comes from the inactivity gap). */
    halfWithoutSession?: boolean
  },
): Promise<LoadResult> {
  const latencies: number[] = []
  let allowed = 0
  let denied = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  async function worker() {
    while (performance.now() < deadline) {
      turn += 1
      const t0 = performance.now()
      const decision = await meter.validateAndConsumeTokens({
        entityId: entities[turn % entities.length] ?? "bench-0",
        entityType: "org",
        estimatedTokens: 50 + (turn % 200),
        operationType: "chat",
        channel: CHANNELS[turn % 3] ?? "website",
        chatbotId: "bench-bot",
        ...(halfWithoutSession && turn % 2 === 0 ? {} : { sessionId: `s-${turn % 5000}` }),
        userIdentifier: `u-${turn % 20000}`,
        messageLength: 120,
        ...(keyed ? { idempotencyKey: `bench-${turn}` } : {}),
      })
      latencies.push(performance.now() - t0)
      if (decision.allowed) allowed += 1
      else denied += 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    allowed,
    denied,
    perSecond: allowed / elapsed,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
  }
}
