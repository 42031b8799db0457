/** Liveness, readiness (database and rate limiter reachable) and Prometheus metrics. */
import { Type } from "typebox"
import type { RouteModule } from "../types.js"

const Readiness = Type.Object({
  status: Type.String({
    description: "ready, degraded (serving with per-instance rate limits) or unavailable",
  }),
  database: Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()) }),
  rate_limiter: Type.Object({
    mode: Type.String({
      description: "shared (Redis), local (no Redis configured) or degraded (Redis unreachable)",
    }),
    serving: Type.Boolean(),
    error: Type.Optional(Type.String()),
  }),
})

export const healthRoutes: RouteModule = (app, container) => {
  app.get(
    "/healthz",
    {
      schema: {
        operationId: "checkLiveness",
        tags: ["operations"],
        summary: "The process is up",
        response: { 200: Type.Object({ status: Type.String() }) },
      },
    },
    async () => ({ status: "ok" }),
  )

  app.get(
    "/readyz",
    {
      schema: {
        operationId: "checkReadiness",
        tags: ["operations"],
        summary: "The database answers and the rate limiter can serve",
        description:
          "503 when the database does not answer, or when Redis is unreachable under the deny policy. With the default fallback policy a Redis outage answers 200 with status degraded: the instance keeps serving with per-instance limits rather than being pulled from the load balancer.",
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      // The pool's own view first: while it knows the database is away, say since when, without a query.
      const known = container.database.availability()
      const database = !known.available
        ? { ok: false, error: `unavailable since ${known.since?.toISOString() ?? "?"}: ${known.error ?? ""}` }
        : await container.database.ping().then(
            () => ({ ok: true }),
            (error: unknown) => ({
              ok: false,
              error: error instanceof Error ? error.message : String(error),
            }),
          )
      const limiter = await container.rateLimiterHealth()
      const ready = database.ok && limiter.serving
      reply.status(ready ? 200 : 503)
      const status = !ready ? "unavailable" : limiter.mode === "degraded" ? "degraded" : "ready"
      return { status, database, rate_limiter: limiter }
    },
  )

  app.get(
    "/metrics",
    {
      schema: {
        operationId: "getMetrics",
        tags: ["operations"],
        summary: "Prometheus metrics",
        produces: ["text/plain"],
      },
    },
    async (_request, reply) => {
      reply.header("Content-Type", container.metrics.contentType)
      return container.metrics.render()
    },
  )
}
