/**
 * The composition root: the one place that chooses implementations (PGlite or PostgreSQL, Redis or
 * in-process limits, the system clock) and wires the services the HTTP layer reads.
 */

import { DetectorJob } from "./alerts/detectors.js"
import { HttpWebhookSender, type WebhookSender } from "./alerts/sender.js"
import { AlertService } from "./alerts/service.js"
import { DeliveryWorker } from "./alerts/worker.js"
import { AnalyticsService } from "./analytics/service.js"
import { KeyService } from "./auth/keys.js"
import type { BackgroundJob } from "./background.js"
import type { Config } from "./config.js"
import { type Clock, systemClock } from "./core/clock.js"
import { ForecastService } from "./forecast/service.js"
import { InProcessRateLimiter } from "./limits/in-process.js"
import type { RateLimiter } from "./limits/rate-limiter.js"
import { createRedisClient, RedisRateLimiter } from "./limits/redis.js"
import { type RateLimiterStatus, ResilientRateLimiter } from "./limits/resilient.js"
import { Meter } from "./meter/meter.js"
import { Metrics } from "./observability/metrics.js"
import { type Database, openDatabase } from "./storage/database.js"
import { LedgerMaintenanceJob } from "./storage/partitions.js"

export interface Container {
  config: Readonly<Config>
  clock: Clock
  database: Database
  rateLimiter: RateLimiter
  meter: Meter
  keys: KeyService
  analytics: AnalyticsService
  metrics: Metrics
  alerts: AlertService
  forecasts: ForecastService
  /** Sends the webhook outbox; started by the server, driven with runOnce in tests. */
  webhookWorker: DeliveryWorker
  /** Rate-limit, spike and channel-health detection; started by the server, driven with runOnce in tests. */
  detectors: DetectorJob
  /** Ledger partitions ahead and retention; started by the server, driven with runOnce in tests. */
  ledgerMaintenance: LedgerMaintenanceJob
  /** The background jobs the server starts and `close` stops. */
  backgroundJobs: BackgroundJob[]
  /** The rate limiter's health: whether its shared store answers, and whether the instance can serve. */
  rateLimiterHealth(): Promise<RateLimiterHealth>
  /** The shared limiter's state, when Redis is configured. */
  rateLimiterStatus(): RateLimiterStatus | undefined
  close(): Promise<void>
}

export interface RateLimiterHealth {
  /** "shared": Redis answers; "local": no Redis configured; "degraded": Redis configured but unreachable. */
  mode: "shared" | "local" | "degraded"
  /** False only when Redis is down and the failure policy is "deny": the instance would refuse every turn. */
  serving: boolean
  error?: string
}

export interface ContainerOverrides {
  clock?: Clock
  database?: Database
  rateLimiter?: RateLimiter
  webhookSender?: WebhookSender
  /** Jitter for webhook retries. */
  random?: () => number
}

export async function buildContainer(
  config: Readonly<Config>,
  overrides: ContainerOverrides = {},
): Promise<Container> {
  const clock = overrides.clock ?? systemClock
  const database =
    overrides.database ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.poolSize,
    }))
  const metrics = new Metrics()
  const limits = overrides.rateLimiter
    ? {
        rateLimiter: overrides.rateLimiter,
        health: LOCAL_HEALTH,
        status: () => undefined,
        close: async () => {},
      }
    : await buildRateLimiter(config, clock, metrics)
  const rateLimiter = limits.rateLimiter
  const meter = new Meter({
    database,
    rateLimiter,
    clock,
    defaultTimezone: config.defaultTimezone,
    ...(config.contextCacheTtlMs !== undefined ? { contextCacheTtlMs: config.contextCacheTtlMs } : {}),
    groupCommit: {
      maxBatch: config.groupCommitMaxBatch,
      maxInFlight: database.kind === "pglite" ? 1 : config.groupCommitInFlight,
      onBatch: (size, seconds) => metrics.observeBatch(size, seconds),
    },
  })
  const keys = new KeyService(database, clock)
  const analytics = new AnalyticsService({ database, clock })
  const alerts = new AlertService({ database, clock, allowPrivateNetworks: config.webhookAllowPrivate })
  const forecasts = new ForecastService({ database, clock })
  const webhookWorker = new DeliveryWorker({
    database,
    clock,
    sender:
      overrides.webhookSender ??
      new HttpWebhookSender({
        timeoutMs: config.webhookTimeoutMs,
        allowPrivateNetworks: config.webhookAllowPrivate,
      }),
    leaseMs: config.webhookTimeoutMs * 3,
    onAttempt: (result) => metrics.observeWebhookAttempt(result),
    ...(overrides.random ? { random: overrides.random } : {}),
  })
  const detectors = new DetectorJob({ database, clock })
  const ledgerMaintenance = new LedgerMaintenanceJob({
    database,
    clock,
    retentionMonths: config.ledgerRetentionMonths,
  })
  const backgroundJobs: BackgroundJob[] = [webhookWorker, detectors, ledgerMaintenance]
  return {
    config,
    clock,
    database,
    rateLimiter,
    meter,
    keys,
    analytics,
    metrics,
    alerts,
    forecasts,
    webhookWorker,
    detectors,
    ledgerMaintenance,
    backgroundJobs,
    rateLimiterHealth: limits.health,
    rateLimiterStatus: limits.status,
    close: async () => {
      await Promise.all(backgroundJobs.map((job) => job.stop()))
      await meter.close()
      await limits.close()
      if (!overrides.database) await database.close()
    },
  }
}

const LOCAL_HEALTH = async (): Promise<RateLimiterHealth> => ({ mode: "local", serving: true })

interface Limits {
  rateLimiter: RateLimiter
  health: () => Promise<RateLimiterHealth>
  status: () => RateLimiterStatus | undefined
  close: () => Promise<void>
}

/**
 * Redis when REDIS_URL is set, wrapped so that Redis going away never takes the service down (the
 * configured policy answers meanwhile, and Redis is used again once it is back); in-process otherwise.
 */
async function buildRateLimiter(config: Readonly<Config>, clock: Clock, metrics: Metrics): Promise<Limits> {
  if (!config.redisUrl) {
    metrics.rateLimiterHealthy.set(1)
    return {
      rateLimiter: new InProcessRateLimiter(clock),
      health: LOCAL_HEALTH,
      status: () => undefined,
      close: async () => {},
    }
  }
  const redis = createRedisClient(config.redisUrl)
  // Commands fail fast while disconnected; give the first connection a moment so start-up is not degraded.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000)
    redis.once("ready", () => {
      clearTimeout(timer)
      resolve()
    })
  })
  const limiter = new ResilientRateLimiter({
    primary: new RedisRateLimiter({ redis, keyPrefix: config.redisKeyPrefix, batch: config.redisBatch }),
    onRedisFailure: config.redisFailurePolicy,
    clock,
    onStateChange: (status) => metrics.rateLimiterHealthy.set(status.healthy ? 1 : 0),
  })
  metrics.rateLimiterHealthy.set(redis.status === "ready" ? 1 : 0)
  return {
    rateLimiter: limiter,
    health: async () => {
      try {
        if ((await redis.ping()) === "PONG") return { mode: "shared", serving: true }
      } catch {}
      return {
        mode: "degraded",
        serving: config.redisFailurePolicy !== "deny",
        error: `Redis unreachable; rate limits follow the "${config.redisFailurePolicy}" policy`,
      }
    },
    status: () => limiter.status(),
    close: async () => {
      redis.disconnect()
    },
  }
}
