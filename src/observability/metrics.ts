/** Prometheus metrics: per-channel decisions and their latency, HTTP requests, limiter health. */
import { Counter, Gauge, Histogram, Registry } from "prom-client"
import type { Decision } from "../meter/decisions.js"

export class Metrics {
  readonly registry = new Registry()
  private readonly decisions = new Counter({
    name: "omnimeter_decisions_total",
    help: "Metering decisions by channel and outcome (allowed, or the denial reason).",
    labelNames: ["channel", "outcome"] as const,
    registers: [this.registry],
  })
  private readonly priorityDenials = new Counter({
    name: "omnimeter_priority_denials_total",
    help: "Turns refused to keep shared capacity or the quota reserve for higher priorities, by channel, the channel's priority, and reason (capacity_shed, quota_reserved) with the capacity that shed them (subscription, operator; none for the reserve).",
    labelNames: ["channel", "priority", "reason", "capacity"] as const,
    registers: [this.registry],
  })
  private readonly decisionSeconds = new Histogram({
    name: "omnimeter_decision_duration_seconds",
    help: "Time to decide and record one turn, by channel.",
    labelNames: ["channel"] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  })
  private readonly billed = new Counter({
    name: "omnimeter_billed_tokens_total",
    help: "Billed tokens granted at decision time, by channel.",
    labelNames: ["channel"] as const,
    registers: [this.registry],
  })
  private readonly requests = new Counter({
    name: "omnimeter_http_requests_total",
    help: "HTTP requests by route and status code.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  })
  private readonly batchSize = new Histogram({
    name: "omnimeter_group_commit_batch_size",
    help: "Metering decisions written by one group-commit statement (one transaction, one commit).",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  })
  private readonly batchSeconds = new Histogram({
    name: "omnimeter_group_commit_duration_seconds",
    help: "Time of one group-commit statement, commit included.",
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  })
  readonly rateLimiterHealthy = new Gauge({
    name: "omnimeter_rate_limiter_shared",
    help: "1 while rate limits are enforced by the shared store (Redis), 0 while an instance falls back to local limits.",
    registers: [this.registry],
  })
  private readonly rateLimiterSwitches = new Counter({
    name: "omnimeter_rate_limiter_switches_total",
    help: "Switches between the shared rate limiter (Redis) and this instance's fallback, by direction and reason (connection_refused, connection_lost, deadline, redis_error, recovered).",
    labelNames: ["from", "to", "reason"] as const,
    registers: [this.registry],
  })
  readonly rateLimiterInstances = new Gauge({
    name: "omnimeter_rate_limiter_instances",
    help: "Instances sharing the rate limits (N): while in fallback, each enforces limit / N.",
    registers: [this.registry],
  })

  /** One switch of the rate limiter: counted, and the mode gauge follows it. */
  observeRateLimiterSwitch(from: string, to: string, reason: string): void {
    this.rateLimiterSwitches.inc({ from, to, reason })
    this.rateLimiterHealthy.set(to === "shared" ? 1 : 0)
  }

  readonly databaseAvailable = new Gauge({
    name: "omnimeter_database_available",
    help: "1 while PostgreSQL answers, 0 from a lost connection until a probe reaches it again (callers get 503 meanwhile).",
    registers: [this.registry],
  })
  readonly databaseOutages = new Counter({
    name: "omnimeter_database_outages_total",
    help: "Times this instance lost the database (connection lost, refused, or the server shutting down or starting).",
    registers: [this.registry],
  })

  private readonly webhookAttempts = new Counter({
    name: "omnimeter_webhook_attempts_total",
    help: "Webhook delivery attempts by result: delivered, retry (failed, will be retried), failed (given up).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  })

  observeWebhookAttempt(result: "delivered" | "retry" | "failed"): void {
    this.webhookAttempts.inc({ result })
  }

  observeDecision(decision: Decision, seconds: number): void {
    const outcome = decision.allowed ? (decision.replayed ? "replayed" : "allowed") : decision.reason
    this.decisions.inc({ channel: decision.channel, outcome })
    if (!decision.allowed && (decision.reason === "capacity_shed" || decision.reserved)) {
      this.priorityDenials.inc({
        channel: decision.channel,
        priority: String(decision.priority ?? ""),
        reason: decision.reserved ? "quota_reserved" : "capacity_shed",
        capacity: decision.capacity ?? "none",
      })
    }
    this.decisionSeconds.observe({ channel: decision.channel }, seconds)
    if (decision.allowed && !decision.replayed)
      this.billed.inc({ channel: decision.channel }, decision.billedTokens)
  }

  observeBatch(size: number, seconds: number): void {
    this.batchSize.observe(size)
    this.batchSeconds.observe(seconds)
  }

  observeRequest(route: string, method: string, status: number): void {
    this.requests.inc({ route, method, status: String(status) })
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
