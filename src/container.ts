/**
 * The composition root: the one place that chooses implementations (PGlite or PostgreSQL, Redis or
 * in-process limits, the system clock) and wires the services the HTTP layer reads.
 */

import { DetectorJob } from "./alerts/detectors.js"
import { HttpWebhookSender, type WebhookSender } from "./alerts/sender.js"
import { AlertService } from "./alerts/service.js"
import { DeliveryWorker } from "./alerts/worker.js"
import { JourneyRefreshJob, JourneyService } from "./analytics/journeys.js"
import { OutcomeService } from "./analytics/outcomes.js"
import { RecommendationService } from "./analytics/recommendations.js"
import { AnalyticsService } from "./analytics/service.js"
import { SubscriptionOverviewService } from "./analytics/subscription-overview.js"
import { KeyService } from "./auth/keys.js"
import type { BackgroundJob } from "./background.js"
import type { Config } from "./config.js"
import { type Clock, systemClock } from "./core/clock.js"
import { DashboardService } from "./dashboards/service.js"
import { DemoHistory } from "./demo/history.js"
import { ForecastService } from "./forecast/service.js"
import { InProcessRateLimiter } from "./limits/in-process.js"
import { InstanceHeartbeat } from "./limits/instances.js"
import type { RateLimiter } from "./limits/rate-limiter.js"
import { createRedisClient, RedisRateLimiter } from "./limits/redis.js"
import { type RateLimiterStatus, ResilientRateLimiter } from "./limits/resilient.js"
import { createMeter, type Meter } from "./meter/meter.js"
import { jsonLogger, type Logger } from "./observability/log.js"
import { Metrics } from "./observability/metrics.js"
import type { DatabaseAvailability } from "./storage/connection.js"
import { type Database, openDatabase } from "./storage/database.js"
import { LedgerMaintenanceJob } from "./storage/partitions.js"
import { SessionDeriveJob } from "./storage/sessions.js"
import { TurnLogService } from "./turns/turn-log.js"

export interface Container {
  config: Readonly<Config>
  clock: Clock
  database: Database
  rateLimiter: RateLimiter
  meter: Meter
  keys: KeyService
  analytics: AnalyticsService
  /** Customer journeys across channels (issue 15). */
  journeys: JourneyService
  /** Prices, outcomes, feedback and the outcomes answer (issue 14). */
  outcomes: OutcomeService
  /** Channel recommendations and a person's preferred channel (issue 15). */
  recommendations: RecommendationService
  metrics: Metrics
  alerts: AlertService
  forecasts: ForecastService
  /** Saved dashboards (issue 16). */
  dashboards: DashboardService
  /** The operator's ranking of every subscription (issue 16). */
  subscriptionOverview: SubscriptionOverviewService
  /** The turn log: a subscription's ledger rows, filtered and paged (issue 16). */
  turns: TurnLogService
  /** How far `omnimeter demo` has written its history (state none outside the demo). */
  demoHistory: DemoHistory
  /** Sends the webhook outbox; started by the server, driven with runOnce in tests. */
  webhookWorker: DeliveryWorker
  /** Rate-limit, spike and channel-health detection; started by the server, driven with runOnce in tests. */
  detectors: DetectorJob
  /** Ledger partitions ahead and retention; started by the server, driven with runOnce in tests. */
  ledgerMaintenance: LedgerMaintenanceJob
  /** The background jobs the server starts and `close` stops. */
  backgroundJobs: BackgroundJob[]
  /** Called on every change of the database's availability (the server logs them). */
  databaseListeners: Array<(availability: DatabaseAvailability) => void>
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
  /** Where the rate limiter's switches are logged; defaults to JSON lines on stdout at the configured level. */
  log?: Logger
}

export async function buildContainer(
  config: Readonly<Config>,
  overrides: ContainerOverrides = {},
): Promise<Container> {
  const clock = overrides.clock ?? systemClock
  const metrics = new Metrics()
  const databaseListeners: Array<(availability: DatabaseAvailability) => void> = []
  const database =
    overrides.database ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      embeddedSharedBuffersMb: config.embeddedSharedBuffersMb,
      poolSize: config.poolSize,
      // A lost database is loud: counted, shown in /metrics and /readyz, and logged by the server.
      onAvailabilityChange: (availability) => {
        metrics.databaseAvailable.set(availability.available ? 1 : 0)
        if (!availability.available) metrics.databaseOutages.inc()
        for (const listener of databaseListeners) listener(availability)
      },
    }))
  metrics.databaseAvailable.set(1)
  const limits = overrides.rateLimiter
    ? {
        rateLimiter: overrides.rateLimiter,
        health: LOCAL_HEALTH,
        status: () => undefined,
        jobs: [],
        close: async () => {},
      }
    : await buildRateLimiter(config, clock, metrics, overrides.log ?? jsonLogger(config.logLevel))
  const rateLimiter = limits.rateLimiter
  const meter = await createMeter({
    database,
    rateLimiter,
    clock,
    defaultTimezone: config.defaultTimezone,
    ...(config.operatorCapacity ? { operatorCapacity: config.operatorCapacity } : {}),
    currency: config.currency,
    ...(config.contextCacheTtlMs !== undefined ? { contextCacheTtlMs: config.contextCacheTtlMs } : {}),
    groupCommit: {
      maxBatch: config.groupCommitMaxBatch,
      maxInFlight: config.groupCommitInFlight,
      onBatch: (size, seconds) => metrics.observeBatch(size, seconds),
    },
  })
  const keys = new KeyService(database, clock)
  const analytics = new AnalyticsService({ database, clock })
  const journeys = new JourneyService({ database, clock, storeAfterMs: config.journeysStoreAfterMs })
  const outcomes = new OutcomeService({ database, clock, currency: config.currency })
  const alerts = new AlertService({ database, clock, allowPrivateNetworks: config.webhookAllowPrivate })
  const recommendations = new RecommendationService({ database, clock, outcomes })
  const forecasts = new ForecastService({ database, clock, recommendations })
  const dashboards = new DashboardService({ database, clock })
  const subscriptionOverview = new SubscriptionOverviewService({ database, clock })
  const turns = new TurnLogService({ database })
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
  const backgroundJobs: BackgroundJob[] = [
    webhookWorker,
    detectors,
    ledgerMaintenance,
    new JourneyRefreshJob(journeys),
    new SessionDeriveJob({ database }),
    ...limits.jobs,
  ]
  return {
    config,
    clock,
    database,
    rateLimiter,
    meter,
    keys,
    analytics,
    journeys,
    outcomes,
    recommendations,
    metrics,
    alerts,
    forecasts,
    dashboards,
    subscriptionOverview,
    turns,
    demoHistory: new DemoHistory(),
    webhookWorker,
    detectors,
    ledgerMaintenance,
    backgroundJobs,
    databaseListeners,
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
  /** The instance heartbeat, when Redis is configured and OMNIMETER_INSTANCES is not. */
  jobs: BackgroundJob[]
  close: () => Promise<void>
}

/**
 * Redis when REDIS_URL is set (a Cluster client when it lists several nodes or OMNIMETER_REDIS_CLUSTER is
 * set), wrapped so that Redis going away never takes the service down: a circuit breaker switches to the
 * configured policy while Redis is unreachable (each switch logged and counted), and back once probes
 * succeed. In-process otherwise.
 */
async function buildRateLimiter(
  config: Readonly<Config>,
  clock: Clock,
  metrics: Metrics,
  log: Logger,
): Promise<Limits> {
  if (config.redisUrls.length === 0) {
    metrics.rateLimiterHealthy.set(1)
    metrics.rateLimiterInstances.set(1)
    return {
      rateLimiter: new InProcessRateLimiter(clock),
      health: LOCAL_HEALTH,
      status: () => undefined,
      jobs: [],
      close: async () => {},
    }
  }
  const redis = createRedisClient(config.redisUrls, {
    cluster: config.redisCluster,
    deadlineMs: config.redisDeadlineMs,
  })
  // Commands fail fast while disconnected; give the first connection a moment so start-up is not degraded.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000)
    redis.once("ready", () => {
      clearTimeout(timer)
      resolve()
    })
  })
  const heartbeat =
    config.instances === undefined ? new HeartbeatJob({ redis, keyPrefix: config.redisKeyPrefix }) : undefined
  // The first count before the first turn: a fallback right after start-up divides by the real N.
  await heartbeat?.runOnce().catch(() => {})
  const instances = () => config.instances ?? heartbeat?.count() ?? 1
  const limiter = new ResilientRateLimiter({
    primary: new RedisRateLimiter({ redis, keyPrefix: config.redisKeyPrefix, batch: config.redisBatch }),
    onRedisFailure: config.redisFailurePolicy,
    deadlineMs: config.redisDeadlineMs,
    instances: () => {
      const n = instances()
      metrics.rateLimiterInstances.set(n)
      return n
    },
    clock,
    onSwitch: (change) => {
      metrics.observeRateLimiterSwitch(change.from, change.to, change.reason)
      const fields = {
        event: "rate_limiter_switch",
        from: change.from,
        to: change.to,
        reason: change.reason,
        instances: change.instances,
        policy: config.redisFailurePolicy,
        ...(change.error === undefined ? {} : { error: change.error }),
      }
      // Both directions at warn: the first starts a period of per-instance limits, the second ends it.
      if (change.to === "fallback")
        log.warn(
          fields,
          `rate limits: Redis unreachable (${change.reason}); the "${config.redisFailurePolicy}" policy answers until probes succeed (fair share: limit / ${change.instances})`,
        )
      else log.warn(fields, "rate limits: Redis answers probes again; shared limits restored")
    },
  })
  // The breaker starts closed: the mode is shared until calls fail.
  metrics.rateLimiterHealthy.set(1)
  const probe = () => limiter.probe(() => redis.ping())
  if (heartbeat) {
    heartbeat.probe = probe
    heartbeat.onCount = (n) => metrics.rateLimiterInstances.set(n)
  }
  metrics.rateLimiterInstances.set(instances())
  return {
    rateLimiter: limiter,
    // From the breaker, not a PING: a slow Redis that still answers is not degraded, and /readyz must not
    // wait on it.
    health: async () => {
      await probe()
      const status = limiter.status()
      if (status.healthy) return { mode: "shared", serving: true }
      return {
        mode: "degraded",
        serving: config.redisFailurePolicy !== "deny",
        error: `Redis unreachable (${status.lastError ?? status.state}); rate limits follow the "${config.redisFailurePolicy}" policy`,
      }
    },
    status: () => limiter.status(),
    jobs: heartbeat ? [heartbeat] : [],
    close: async () => {
      redis.disconnect()
    },
  }
}

/**
 * The heartbeat as a background job whose failed beats are not reported: the count is kept through an
 * outage, and the outage itself is logged once by the limiter's switch.
 */
class HeartbeatJob extends InstanceHeartbeat {
  /** Run before each beat: lets the limiter probe Redis while no turn arrives to do it. */
  probe: (() => Promise<void>) | undefined

  /** Run after each successful beat, with the count. */
  onCount: ((instances: number) => void) | undefined

  override async runOnce(): Promise<number> {
    await this.probe?.()
    const instances = await super.runOnce()
    this.onCount?.(instances)
    return instances
  }

  override start(): void {
    super.start(() => {})
  }
}
