/**
 * The HTTP service: a flat list of registrations. Handlers live one resource per file in ./routes; the
 * error envelope, authentication and the OpenAPI document are set up here once.
 */
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import type { Socket } from "node:net"
import compress from "@fastify/compress"
import swagger from "@fastify/swagger"
import swaggerUi from "@fastify/swagger-ui"
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox"
import Fastify, { type ConnectionError, type FastifyBaseLogger, type FastifyServerOptions } from "fastify"
import type { Config } from "../config.js"
import type { Container } from "../container.js"
import type { ErrorCode } from "../core/errors.js"
import { documentCsvResponses } from "./csv.js"
import { DEFAULT_DASHBOARD_DIR, isDashboardPage, registerDashboard, sendDashboardPage } from "./dashboard.js"
import { canonicalUuids, strictValidatorCompiler } from "./edge-input.js"
import { ErrorEnvelope, envelope, handleError, STATUS_BY_CODE } from "./errors.js"
import { finishDocument, OPENAPI_FRAME } from "./openapi.js"
import { handleRequestTimeout } from "./request-timeout.js"
import { adminRoutes } from "./routes/admin.js"
import { alertRoutes } from "./routes/alerts.js"
import { analyticsRoutes } from "./routes/analytics.js"
import { breakdownRoutes } from "./routes/breakdown.js"
import { catalogRoutes } from "./routes/catalog.js"
import { channelConfigRoutes } from "./routes/channel-config.js"
import { dashboardRoutes } from "./routes/dashboards.js"
import { demoRoutes } from "./routes/demo.js"
import { ExperimentResultsSchema, ExperimentSchema, experimentRoutes } from "./routes/experiments.js"
import { ForecastSchema, forecastRoutes } from "./routes/forecast.js"
import { healthRoutes } from "./routes/health.js"
import { JourneysSchema, journeyRoutes } from "./routes/journeys.js"
import { keyRoutes } from "./routes/keys.js"
import { meRoutes } from "./routes/me.js"
import { outcomeRoutes } from "./routes/outcomes.js"
import { PersonSchema, peopleRoutes } from "./routes/people.js"
import { RecommendationsSchema, recommendationRoutes } from "./routes/recommendations.js"
import { subscriptionRoutes } from "./routes/subscriptions.js"
import { tokenRoutes } from "./routes/tokens.js"
import { turnRoutes } from "./routes/turns.js"
import { usageImportRoutes } from "./routes/usage-import.js"
import { WebhookEndpointSchema, webhookRoutes } from "./routes/webhooks.js"
import {
  AllowedDecisionSchema,
  ChannelConfigSchema,
  DecisionSchema,
  DeniedDecisionSchema,
  ImportLineComponent,
  SettleResultSchema,
  SubscriptionSchema,
} from "./schemas.js"
import type { App } from "./types.js"

const REQUEST_ID = /^[\w.:-]{1,128}$/

export interface AppOptions {
  /** Fastify's logger option; defaults to JSON logs at the configured level. */
  logger?: FastifyServerOptions["logger"]
  /** The built dashboard (web/dist by default); false serves none. */
  dashboardDir?: string | false
}

/**
 * The timeouts and limits of the HTTP server itself, from the configuration. Node checks the request and
 * headers timeouts every `connectionsCheckingInterval` (30 s by default), so the interval follows the
 * headers timeout: a slow client is cut off close to its deadline, not up to 30 s after it.
 */
function serverLimits(config: Readonly<Config>) {
  return {
    bodyLimit: config.jsonBodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: config.socketTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
    },
  }
}

/**
 * Errors Node finds before there is a request to route (headers or URL over 16 kB, a request or headers
 * timeout, malformed HTTP): answered in the one envelope with a fresh request id, then the connection is
 * closed. Fastify's default writes a different shape.
 */
function clientErrorHandler(this: { log: FastifyBaseLogger }, error: ConnectionError, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return
  const [code, message]: [ErrorCode, string] =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? ["request_timeout", "The request did not arrive in time (OMNIMETER_REQUEST_TIMEOUT_MS)."]
      : error.code === "HPE_HEADER_OVERFLOW"
        ? ["request_header_fields_too_large", "The request's headers and URL are larger than 16 kB together."]
        : ["validation_error", "The request is not valid HTTP."]
  // An answer already begun for this connection cannot be replaced; only a fresh one can be written.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean; req?: IncomingMessage } })
    ._httpMessage
  // A streaming import answers its own timeout, with what it committed (see request-timeout.ts).
  if (error.code === "ERR_HTTP_REQUEST_TIMEOUT" && handleRequestTimeout(inFlight?.req)) return
  const requestId = randomUUID()
  this.log.info({ code, reqId: requestId, err: error }, message)
  if (socket.writable && !inFlight?.headersSent) {
    const status = STATUS_BY_CODE[code]
    const body = JSON.stringify(envelope(code, message, requestId))
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
}

/** Builds the Fastify app on a container of services. Call `listen` or `inject` on the result. */
export async function buildApp(container: Container, options: AppOptions = {}): Promise<App> {
  const app = Fastify({
    logger: options.logger ?? { level: container.config.logLevel },
    ...serverLimits(container.config),
    clientErrorHandler,
    // The router's own failures (bad percent-encoding, a path parameter over 100 characters) come before
    // any hook: without this they would answer Fastify's shape, without the envelope or X-Request-Id.
    frameworkErrors: (error, request, reply) => {
      reply.header("X-Request-Id", request.id)
      handleError(error, request, reply)
    },
    requestIdHeader: false,
    // A caller's X-Request-Id is kept when it is well-formed, so logs join across services.
    genReqId: (request) => {
      const given = request.headers["x-request-id"]
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID()
    },
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(strictValidatorCompiler)
  app.addHook("preValidation", canonicalUuids)
  app.setErrorHandler(handleError)
  app.decorateRequest("principal", undefined)
  app.addHook("onRequest", async (request, reply) => {
    reply.header("X-Request-Id", request.id)
  })
  app.addHook("onResponse", async (request, reply) => {
    container.metrics.observeRequest(
      request.routeOptions.url ?? "unmatched",
      request.method,
      reply.statusCode,
    )
  })

  // Before the dashboard's static files, whose streams it must wrap. Brotli at quality 4 (the plugin's
  // default; 11 costs far more CPU for a few percent) or gzip, whichever the client prefers; responses
  // under 1 kB and event streams go out as they are. Request bodies are not inflated: the body limit
  // counts bytes as they arrive, and no client of this API sends compressed bodies.
  await app.register(compress, { encodings: ["br", "gzip"], globalDecompression: false })
  // After the hooks, so the dashboard's files carry the request id and are counted too.
  const dashboardDir = options.dashboardDir ?? DEFAULT_DASHBOARD_DIR
  const dashboard = dashboardDir !== false && (await registerDashboard(app, dashboardDir))
  app.setNotFoundHandler((request, reply) => {
    if (dashboard && isDashboardPage(request)) return sendDashboardPage(reply)
    return reply
      .status(404)
      .send(
        envelope("not_found", `No route ${request.method} ${request.url.split("?")[0]}.`, String(request.id)),
      )
  })

  for (const schema of [
    ErrorEnvelope,
    AllowedDecisionSchema,
    DeniedDecisionSchema,
    DecisionSchema,
    ImportLineComponent,
    SettleResultSchema,
    SubscriptionSchema,
    ChannelConfigSchema,
    WebhookEndpointSchema,
    ForecastSchema,
    PersonSchema,
    ExperimentSchema,
    ExperimentResultsSchema,
    JourneysSchema,
    RecommendationsSchema,
  ]) {
    app.addSchema(schema)
  }
  await app.register(swagger, {
    openapi: OPENAPI_FRAME,
    transformObject: (document) =>
      "openapiObject" in document
        ? finishDocument(documentCsvResponses(document.openapiObject))
        : document.swaggerObject,
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  })
  await app.register(swaggerUi, { routePrefix: "/docs" })
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger())

  for (const routes of [
    healthRoutes,
    catalogRoutes,
    meRoutes,
    demoRoutes,
    tokenRoutes,
    subscriptionRoutes,
    keyRoutes,
    channelConfigRoutes,
    usageImportRoutes,
    analyticsRoutes,
    breakdownRoutes,
    turnRoutes,
    webhookRoutes,
    alertRoutes,
    forecastRoutes,
    dashboardRoutes,
    adminRoutes,
    peopleRoutes,
    experimentRoutes,
    journeyRoutes,
    recommendationRoutes,
    outcomeRoutes,
  ]) {
    routes(app, container)
  }
  return app
}
