/**
 * omnimeter's HTTP API from TypeScript: `import { createOmnimeterClient } from "omnimeter/client"`.
 *
 * The types are generated from the OpenAPI document (./schema.ts, by openapi-typescript) and the calls go
 * through openapi-fetch, so every path, body and answer is checked by the compiler. On top of that, the
 * calls a chat backend makes on every turn, with omnimeter's semantics:
 * - a denial is a value (`decision.allowed === false`, `decision.reason` narrowed), never an exception;
 * - consume always sends an `Idempotency-Key` (yours, or a fresh UUID), so a retry never charges twice;
 * - 503 and 429 are retried after their `Retry-After` when `retry` is set;
 * - every answer carries the request id (`requestId`), as do the errors (`OmnimeterApiError`).
 * Typed methods also link people, run experiments and read journeys and recommendations (issue 15);
 * `client.api` is the raw openapi-fetch client for every other operation.
 *
 * Imports nothing from the server: no database, no Fastify.
 */
import createClient, { type Client } from "openapi-fetch"
import { type MeteredTurn, type MeteredTurnOptions, runMeteredTurn } from "../meter/metered-turn.js"
import type { components, paths } from "./schema.js"

type Schemas = components["schemas"]

export type { components, paths }
export type AllowedDecision = Schemas["AllowedDecision"]
export type DeniedDecision = Schemas["DeniedDecision"]
export type Decision = AllowedDecision | DeniedDecision
export type DenialReason = DeniedDecision["reason"]
export type ErrorEnvelope = Schemas["ErrorEnvelope"]
export type ErrorCode = ErrorEnvelope["error"]["code"]
export type SettleResult = Schemas["SettleResult"]
export type Subscription = Schemas["Subscription"]
export type ImportLine = Schemas["ImportLine"]
type JsonBody<P extends keyof paths, M extends "post" | "put" | "patch"> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer B } }
}
  ? B
  : never
export type ConsumeRequest = JsonBody<"/api/tokens/consume", "post">
export type SettleRequest = Omit<JsonBody<"/api/tokens/settle", "post">, "usage_id">
export type CreateSubscriptionRequest = JsonBody<"/api/subscriptions", "post">
export type IssuedKey =
  paths["/api/subscriptions/{id}/keys"]["post"]["responses"][201]["content"]["application/json"]
export type AnalyticsQuery = NonNullable<
  paths["/api/onboarding/analytics/{subscription_id}"]["get"]["parameters"]["query"]
>
export type ChannelAnalytics =
  paths["/api/onboarding/analytics/{subscription_id}"]["get"]["responses"][200]["content"]["application/json"]
export type ImportReport = paths["/api/usage/import"]["post"]["responses"][200]["content"]["application/json"]
export type Person = Schemas["Person"]
export type LinkPersonRequest = JsonBody<"/api/subscriptions/{id}/people/{person_id}", "put">
export type Experiment = Schemas["Experiment"]
export type ExperimentStatus = Experiment["status"]
export type ExperimentResults = Schemas["ExperimentResults"]
export type CreateExperimentRequest = JsonBody<"/api/subscriptions/{id}/experiments", "post">
export type Journeys = Schemas["Journeys"]
/** The journeys' period and options; `format` and `table` are left out (they ask for CSV). */
export type JourneysQuery = Omit<
  NonNullable<paths["/api/onboarding/analytics/{subscription_id}/journeys"]["get"]["parameters"]["query"]>,
  "format" | "table"
>
export type Recommendations = Schemas["Recommendations"]
export type RecommendationsQuery = NonNullable<
  paths["/api/onboarding/analytics/{subscription_id}/recommendations"]["get"]["parameters"]["query"]
>

/** An answer with the id of the request that produced it (the X-Request-Id header). */
export type WithRequestId<T> = T & { readonly requestId: string }

export interface ClientOptions {
  /** Where omnimeter listens, e.g. "http://127.0.0.1:8080". */
  baseUrl: string
  /** The admin key or a subscription's key. */
  apiKey: string
  /**
   * Retries of 503 (a dependency away) and 429 (rate limited) after their Retry-After. Off by default;
   * `{ attempts: 3 }` retries up to three times, waiting at most `maxDelayMs` (default 30 s) each time. A
   * consume retried this way reuses its Idempotency-Key, so it is charged at most once.
   */
  retry?: { attempts: number; maxDelayMs?: number }
  /** A fetch implementation (default: the global one). */
  fetch?: (request: Request) => Promise<Response>
}

/** A non-2xx answer other than a denial, in the error envelope: `code` is the API's closed set. */
export class OmnimeterApiError extends Error {
  readonly status: number
  readonly code: ErrorCode
  readonly requestId: string
  readonly field: string | undefined
  readonly body: ErrorEnvelope

  constructor(status: number, body: ErrorEnvelope) {
    super(`${status} ${body.error.code}: ${body.error.message}`)
    this.name = "OmnimeterApiError"
    this.status = status
    this.code = body.error.code
    this.requestId = body.error.request_id
    this.field = body.error.field
    this.body = body
  }
}

const DENIAL_STATUSES = new Set([402, 403, 404, 413, 429])

function requestIdOf(response: Response): string {
  return response.headers.get("x-request-id") ?? ""
}

/** The envelope of a failed answer; a body that is not one (a proxy's page) becomes internal_error. */
function apiError(response: Response, body: unknown): OmnimeterApiError {
  const envelope = body as Partial<ErrorEnvelope> | undefined
  if (envelope?.error && typeof envelope.error.code === "string") {
    return new OmnimeterApiError(response.status, envelope as ErrorEnvelope)
  }
  return new OmnimeterApiError(response.status, {
    error: {
      code: "internal_error",
      message: `HTTP ${response.status} without the error envelope`,
      request_id: requestIdOf(response),
    },
  })
}

function retryingFetch(
  base: (request: Request) => Promise<Response>,
  retry: ClientOptions["retry"],
): (request: Request) => Promise<Response> {
  const attempts = Math.max(0, Math.floor(retry?.attempts ?? 0))
  const maxDelayMs = retry?.maxDelayMs ?? 30_000
  return async (request) => {
    for (let attempt = 0; ; attempt += 1) {
      const response = await base(attempt < attempts ? request.clone() : request)
      const seconds = Number(response.headers.get("retry-after"))
      const retriable = response.status === 503 || response.status === 429
      if (!retriable || attempt >= attempts || !Number.isFinite(seconds) || seconds < 0) return response
      await response.body?.cancel()
      await new Promise((resolve) => setTimeout(resolve, Math.min(seconds * 1000, maxDelayMs)))
    }
  }
}

export interface OmnimeterClient {
  /** The openapi-fetch client, typed by the OpenAPI document: every operation, with the key sent. */
  readonly api: Client<paths>
  /**
   * Decides whether a chat turn may run, and charges it. A denial is returned (`allowed: false`, with
   * `reason`), not thrown; other errors throw {@link OmnimeterApiError}.
   */
  consume(input: ConsumeRequest, options?: { idempotencyKey?: string }): Promise<WithRequestId<Decision>>
  /** Replaces a turn's estimate with the tokens it really used. */
  settle(usageId: string, input: SettleRequest): Promise<WithRequestId<SettleResult>>
  /**
   * Meters one LLM turn end to end: consume; run `run` only when allowed; settle with the usage its result
   * reports (OpenAI, Anthropic, Vercel AI SDK shapes) or `options.usage(result)`; when `run` throws,
   * settle as an error (refunding the estimate) and rethrow.
   */
  meteredTurn<R>(
    input: ConsumeRequest,
    run: (decision: WithRequestId<AllowedDecision>) => Promise<R>,
    options?: MeteredTurnOptions<R> & { idempotencyKey?: string },
  ): Promise<
    MeteredTurn<WithRequestId<AllowedDecision>, WithRequestId<DeniedDecision>, R, WithRequestId<SettleResult>>
  >
  /** Admin: creates a subscription. */
  createSubscription(input: CreateSubscriptionRequest): Promise<WithRequestId<Subscription>>
  /** Admin: issues a key for a subscription; the key is in this answer only. */
  issueKey(subscriptionId: string, label?: string): Promise<WithRequestId<IssuedKey>>
  /** A subscription's channel analytics over a period (default: the last 30 days). */
  analytics(subscriptionId: string, query?: AnalyticsQuery): Promise<WithRequestId<ChannelAnalytics>>
  /** Admin: imports historical turns (sent as NDJSON). */
  importUsage(lines: Iterable<ImportLine>): Promise<WithRequestId<ImportReport>>
  /**
   * Links a person's identifiers across channels, replacing the person's set. An identifier linked to
   * another person throws {@link OmnimeterApiError} 409 `conflict`, and nothing changes.
   */
  linkPerson(
    subscriptionId: string,
    personId: string,
    input: LinkPersonRequest,
  ): Promise<WithRequestId<Person>>
  /** A person's linked identifiers. */
  person(subscriptionId: string, personId: string): Promise<WithRequestId<Person>>
  /** Creates an experiment on channels (a draft unless `status: "running"`); the first variant is the control. */
  createExperiment(subscriptionId: string, input: CreateExperimentRequest): Promise<WithRequestId<Experiment>>
  /** The subscription's experiments, newest first. */
  experiments(subscriptionId: string): Promise<WithRequestId<{ experiments: Experiment[] }>>
  /** One experiment. */
  experiment(subscriptionId: string, experimentId: string): Promise<WithRequestId<Experiment>>
  /** Starts (`running`) or stops (`stopped`) an experiment; any other change throws 409 `conflict`. */
  updateExperimentStatus(
    subscriptionId: string,
    experimentId: string,
    status: ExperimentStatus,
  ): Promise<WithRequestId<Experiment>>
  /** An experiment's per-variant figures, intervals, tests against the control and verdict. */
  experimentResults(subscriptionId: string, experimentId: string): Promise<WithRequestId<ExperimentResults>>
  /** How people moved between channels over a period (default: the last 30 days). */
  journeys(subscriptionId: string, query?: JourneysQuery): Promise<WithRequestId<Journeys>>
  /** The channels ranked with what to do about each, and, with `user_identifier` or `person_id`, one person's preferred channel. */
  recommendations(
    subscriptionId: string,
    query?: RecommendationsQuery,
  ): Promise<WithRequestId<Recommendations>>
}

/**
 * @example
 * const omnimeter = createOmnimeterClient({ baseUrl: "http://127.0.0.1:8080", apiKey, retry: { attempts: 3 } })
 * const decision = await omnimeter.consume({ entity_id: "acme", entity_type: "organization",
 *   estimated_tokens: 350, channel: "whatsapp" }, { idempotencyKey: messageId })
 * if (!decision.allowed) return reply(decision.reason === "quota_exceeded" ? "Out of tokens" : decision.message)
 */
export function createOmnimeterClient(options: ClientOptions): OmnimeterClient {
  const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request))
  const api = createClient<paths, "application/json">({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers: { Authorization: `Bearer ${options.apiKey}` },
    fetch: retryingFetch(baseFetch, options.retry),
  })

  function answer<T>(result: { data?: T; error?: unknown; response: Response }): WithRequestId<T> {
    if (result.data === undefined) throw apiError(result.response, result.error)
    return { ...result.data, requestId: requestIdOf(result.response) }
  }

  const client: OmnimeterClient = {
    api,
    async consume(input, { idempotencyKey } = {}) {
      const key = idempotencyKey ?? input.idempotency_key ?? globalThis.crypto.randomUUID()
      const { data, error, response } = await api.POST("/api/tokens/consume", {
        body: input,
        params: { header: { "idempotency-key": key } },
      })
      const requestId = requestIdOf(response)
      if (data) return { ...data, requestId }
      if (DENIAL_STATUSES.has(response.status) && error && "allowed" in error) return { ...error, requestId }
      throw apiError(response, error)
    },
    async settle(usageId, input) {
      return answer(await api.POST("/api/tokens/settle", { body: { usage_id: usageId, ...input } }))
    },
    meteredTurn<R>(
      input: ConsumeRequest,
      run: (decision: WithRequestId<AllowedDecision>) => Promise<R>,
      turnOptions: MeteredTurnOptions<R> & { idempotencyKey?: string } = {},
    ) {
      return runMeteredTurn<
        WithRequestId<AllowedDecision>,
        WithRequestId<DeniedDecision>,
        R,
        WithRequestId<SettleResult>
      >(
        {
          consume: () => client.consume(input, { idempotencyKey: turnOptions.idempotencyKey }),
          isAllowed: (decision): decision is WithRequestId<AllowedDecision> => decision.allowed,
          settle: (decision, outcome) =>
            client.settle(decision.usage_id, {
              actual_tokens: outcome.actualTokens,
              outcome: outcome.outcome,
              latency_ms: outcome.latencyMs,
            }),
        },
        run,
        turnOptions,
      )
    },
    async createSubscription(input) {
      return answer(await api.POST("/api/subscriptions", { body: input }))
    },
    async issueKey(subscriptionId, label) {
      return answer(
        await api.POST("/api/subscriptions/{id}/keys", {
          params: { path: { id: subscriptionId } },
          body: label === undefined ? {} : { label },
        }),
      )
    },
    async analytics(subscriptionId, query = {}) {
      return answer(
        await api.GET("/api/onboarding/analytics/{subscription_id}", {
          params: { path: { subscription_id: subscriptionId }, query },
        }),
      )
    },
    async importUsage(lines) {
      let text = ""
      for (const line of lines) text += `${JSON.stringify(line)}\n`
      return answer(
        await api.POST("/api/usage/import", {
          body: text,
          bodySerializer: (body: string) => body,
          headers: { "Content-Type": "application/x-ndjson" },
        }),
      )
    },
    async linkPerson(subscriptionId, personId, input) {
      return answer(
        await api.PUT("/api/subscriptions/{id}/people/{person_id}", {
          params: { path: { id: subscriptionId, person_id: personId } },
          body: input,
        }),
      )
    },
    async person(subscriptionId, personId) {
      return answer(
        await api.GET("/api/subscriptions/{id}/people/{person_id}", {
          params: { path: { id: subscriptionId, person_id: personId } },
        }),
      )
    },
    async createExperiment(subscriptionId, input) {
      return answer(
        await api.POST("/api/subscriptions/{id}/experiments", {
          params: { path: { id: subscriptionId } },
          body: input,
        }),
      )
    },
    async experiments(subscriptionId) {
      return answer(
        await api.GET("/api/subscriptions/{id}/experiments", { params: { path: { id: subscriptionId } } }),
      )
    },
    async experiment(subscriptionId, experimentId) {
      return answer(
        await api.GET("/api/subscriptions/{id}/experiments/{experiment_id}", {
          params: { path: { id: subscriptionId, experiment_id: experimentId } },
        }),
      )
    },
    async updateExperimentStatus(subscriptionId, experimentId, status) {
      return answer(
        await api.PATCH("/api/subscriptions/{id}/experiments/{experiment_id}", {
          params: { path: { id: subscriptionId, experiment_id: experimentId } },
          body: { status },
        }),
      )
    },
    async experimentResults(subscriptionId, experimentId) {
      return answer(
        await api.GET("/api/subscriptions/{id}/experiments/{experiment_id}/results", {
          params: { path: { id: subscriptionId, experiment_id: experimentId } },
        }),
      )
    },
    async journeys(subscriptionId, query = {}) {
      return answer(
        await api.GET("/api/onboarding/analytics/{subscription_id}/journeys", {
          params: { path: { subscription_id: subscriptionId }, query },
        }),
      )
    },
    async recommendations(subscriptionId, query = {}) {
      return answer(
        await api.GET("/api/onboarding/analytics/{subscription_id}/recommendations", {
          params: { path: { subscription_id: subscriptionId }, query },
        }),
      )
    },
  }
  return client
}
