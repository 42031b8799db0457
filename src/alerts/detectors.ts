/**
 * The periodic detectors: rate_limit.exceeded and capacity.shed (per channel per minute), usage.spike_detected/resolved and
 * channel.health_degraded/recovered. Each reads one subscription's recent ledger rows with a named query,
 * decides with the pure rules in core/alerts.ts, and writes alerts whose dedupe keys make a repeated or
 * concurrent run (two instances, a restart) harmless. The alert insert fans out to the webhook outbox in
 * the same statement (trigger alerts_fan_out).
 */

import type { Kysely } from "kysely"
import { PeriodicJob } from "../background.js"
import {
  completedMinutes,
  DEFAULT_HEALTH_RULE,
  DEFAULT_SHED_RULE,
  DEFAULT_SPIKE_RULE,
  evaluateHealth,
  evaluateSpike,
  type HealthRule,
  type HourVolume,
  healthFigures,
  type ShedRule,
  type SpikeRule,
  shedAlertDue,
  spikeBaseline,
} from "../core/alerts.js"
import { CHANNELS } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { insertAlert, latestAlertOf, type NewAlert } from "../storage/alerts.js"
import type { Database } from "../storage/database.js"
import type { DB } from "../storage/schema.js"
import {
  activeSubscriptionIds,
  firstTurnAt,
  rateLimitDenialsByMinute,
  settledOutcomes,
  sheddingByMinute,
  volumeInWindows,
} from "./queries.js"

/** One kind of detection for one subscription at one instant: the alerts it would raise. */
export interface Detector {
  readonly name: string
  detect(db: Kysely<DB>, subscriptionId: string, now: number): Promise<NewAlert[]>
}

const HOUR = 3_600_000
const WEEK = 7 * 24 * HOUR

/** rate_limit.exceeded: one alert per channel and whole minute with rate-limit denials, with their count. */
export class RateLimitDetector implements Detector {
  readonly name = "rate_limit"
  /** Minutes looked back each pass; a pass that misses a minute (restart) catches up within this. */
  constructor(private readonly lookbackMinutes = 10) {}

  async detect(db: Kysely<DB>, subscriptionId: string, now: number): Promise<NewAlert[]> {
    const minutes = completedMinutes(now, this.lookbackMinutes)
    const first = minutes[0]
    if (first === undefined) return []
    const rows = await rateLimitDenialsByMinute(
      db,
      subscriptionId,
      new Date(first),
      new Date(first + minutes.length * 60_000),
    )
    return rows.map((row) => ({
      subscriptionId,
      type: "rate_limit.exceeded",
      channel: row.channel,
      dedupeKey: `rate_limit:${row.channel}:${row.minuteStart.toISOString()}`,
      data: {
        minute_start: row.minuteStart.toISOString(),
        minute_end: new Date(row.minuteStart.getTime() + 60_000).toISOString(),
        denied_turns: row.denials,
      },
      occurredAt: new Date(row.minuteStart.getTime() + 60_000),
    }))
  }
}

/**
 * capacity.shed: one alert per channel and whole minute in which a rising share of the channel's turns was
 * shed for higher priorities (core/alerts.ts shedAlertDue), with the counts and the rate. Like
 * rate_limit.exceeded, a repeated pass changes nothing (the dedupe key names the channel and minute).
 */
export class ShedDetector implements Detector {
  readonly name = "capacity_shed"
  constructor(
    private readonly lookbackMinutes = 10,
    private readonly rule: ShedRule = DEFAULT_SHED_RULE,
  ) {}

  async detect(db: Kysely<DB>, subscriptionId: string, now: number): Promise<NewAlert[]> {
    const minutes = completedMinutes(now, this.lookbackMinutes)
    const first = minutes[0]
    if (first === undefined) return []
    const rows = await sheddingByMinute(
      db,
      subscriptionId,
      new Date(first),
      new Date(first + minutes.length * 60_000),
    )
    return rows
      .filter((row) => shedAlertDue(row.shed, row.turns, this.rule))
      .map((row) => ({
        subscriptionId,
        type: "capacity.shed",
        channel: row.channel,
        dedupeKey: `capacity_shed:${row.channel}:${row.minuteStart.toISOString()}`,
        data: {
          minute_start: row.minuteStart.toISOString(),
          minute_end: new Date(row.minuteStart.getTime() + 60_000).toISOString(),
          shed_turns: row.shed,
          turns: row.turns,
          shed_rate: Math.round((row.shed / row.turns) * 10_000) / 10_000,
        },
        occurredAt: new Date(row.minuteStart.getTime() + 60_000),
      }))
  }
}

/**
 * usage.spike_detected / usage.spike_resolved: the last hour's messages and tokens per channel against the
 * channel's usual level for that hour (core/alerts.ts spikeBaseline), with the minimum-volume guard.
 */
export class SpikeDetector implements Detector {
  readonly name = "spike"
  constructor(private readonly rule: SpikeRule = DEFAULT_SPIKE_RULE) {}

  async detect(db: Kysely<DB>, subscriptionId: string, now: number): Promise<NewAlert[]> {
    const since = await firstTurnAt(db, subscriptionId)
    if (!since) return []
    const current = { start: new Date(now - HOUR), end: new Date(now) }
    const weekly = [1, 2, 3, 4]
      .map((k) => ({ start: new Date(now - HOUR - k * WEEK), end: new Date(now - k * WEEK) }))
      .filter((w) => w.start.getTime() >= since.getTime())
    const trailing =
      now - 25 * HOUR >= since.getTime()
        ? Array.from({ length: 24 }, (_, j) => ({
            start: new Date(now - (j + 2) * HOUR),
            end: new Date(now - (j + 1) * HOUR),
          }))
        : []
    const volumes = await volumeInWindows(db, subscriptionId, [current, ...weekly, ...trailing])
    const [currentVolume = new Map<string, HourVolume>()] = volumes
    const weeklyVolumes = volumes.slice(1, 1 + weekly.length)
    const trailingVolumes = volumes.slice(1 + weekly.length)
    const zero: HourVolume = { messages: 0, tokens: 0 }
    const alerts: NewAlert[] = []
    const hourKey = new Date(Math.floor(now / HOUR) * HOUR).toISOString()
    for (const channel of CHANNELS) {
      const baseline = spikeBaseline(
        weeklyVolumes.map((m) => m.get(channel) ?? zero),
        trailingVolumes.map((m) => m.get(channel) ?? zero),
      )
      if (!baseline) continue
      const volume = currentVolume.get(channel) ?? zero
      const last = await latestAlertOf(db, subscriptionId, channel, [
        "usage.spike_detected",
        "usage.spike_resolved",
      ])
      const open = last?.type === "usage.spike_detected"
      const transition = evaluateSpike(volume, baseline, open, this.rule)
      if (!transition) continue
      alerts.push({
        subscriptionId,
        type: transition === "detected" ? "usage.spike_detected" : "usage.spike_resolved",
        channel,
        dedupeKey: `spike_${transition}:${channel}:${hourKey}`,
        data: {
          window_start: current.start.toISOString(),
          window_end: current.end.toISOString(),
          messages: volume.messages,
          tokens: volume.tokens,
          baseline_messages: baseline.messages,
          baseline_tokens: baseline.tokens,
          baseline_method: baseline.method,
          factor: this.rule.factor,
          min_messages: this.rule.minMessages,
        },
        occurredAt: new Date(now),
      })
    }
    return alerts
  }
}

/** channel.health_degraded / channel.health_recovered from settle-reported outcomes and latencies. */
export class HealthDetector implements Detector {
  readonly name = "health"
  constructor(
    private readonly rule: HealthRule = DEFAULT_HEALTH_RULE,
    private readonly windowMs = 15 * 60_000,
  ) {}

  async detect(db: Kysely<DB>, subscriptionId: string, now: number): Promise<NewAlert[]> {
    const from = new Date(now - this.windowMs)
    const rows = await settledOutcomes(db, subscriptionId, from, new Date(now))
    const alerts: NewAlert[] = []
    const minuteKey = new Date(Math.floor(now / 60_000) * 60_000).toISOString()
    for (const channel of CHANNELS) {
      const mine = rows.filter((r) => r.channel === channel)
      const sample = {
        turns: mine.length,
        errors: mine.filter((r) => r.outcome === "error").length,
        latenciesMs: mine.flatMap((r) => (r.latencyMs === null ? [] : [r.latencyMs])),
      }
      if (sample.turns < this.rule.minTurns) continue
      const last = await latestAlertOf(db, subscriptionId, channel, [
        "channel.health_degraded",
        "channel.health_recovered",
      ])
      const transition = evaluateHealth(sample, last?.type === "channel.health_degraded", this.rule)
      if (!transition) continue
      const figures = healthFigures(sample, this.rule)
      alerts.push({
        subscriptionId,
        type: transition === "degraded" ? "channel.health_degraded" : "channel.health_recovered",
        channel,
        dedupeKey: `health_${transition}:${channel}:${minuteKey}`,
        data: {
          window_start: from.toISOString(),
          window_end: new Date(now).toISOString(),
          settled_turns: figures.turns,
          error_rate: Math.round(figures.errorRate * 10_000) / 10_000,
          p50_latency_ms: figures.p50LatencyMs,
          p95_latency_ms: figures.p95LatencyMs,
          thresholds: {
            error_rate: transition === "degraded" ? this.rule.errorRate : this.rule.recoverErrorRate,
            p95_latency_ms:
              transition === "degraded" ? this.rule.p95LatencyMs : this.rule.recoverP95LatencyMs,
          },
        },
        occurredAt: new Date(now),
      })
    }
    return alerts
  }
}

export interface DetectorJobOptions {
  database: Database
  clock: Clock
  detectors?: readonly Detector[]
  intervalMs?: number
}

/** Runs every detector for every active subscription, once per interval. */
export class DetectorJob extends PeriodicJob {
  private readonly detectors: readonly Detector[]

  constructor(private readonly options: DetectorJobOptions) {
    super(options.intervalMs ?? 60_000)
    this.detectors = options.detectors ?? [
      new RateLimitDetector(),
      new ShedDetector(),
      new SpikeDetector(),
      new HealthDetector(),
    ]
  }

  /** One pass over every active subscription; resolves with the number of new alerts. */
  async runOnce(): Promise<number> {
    const now = this.options.clock.now()
    const db = this.options.database.db
    let created = 0
    let after: string | null = null
    for (;;) {
      const ids = await activeSubscriptionIds(db, after, 200)
      for (const id of ids) created += await this.runFor(db, id, now)
      if (ids.length < 200) break
      after = ids.at(-1) ?? null
    }
    return created
  }

  /** Every detector for one subscription at `now`; resolves with the number of new alerts. */
  async runFor(db: Kysely<DB>, subscriptionId: string, now: number): Promise<number> {
    let created = 0
    for (const detector of this.detectors) {
      for (const alert of await detector.detect(db, subscriptionId, now)) {
        if (await insertAlert(db, alert)) created += 1
      }
    }
    return created
  }
}
