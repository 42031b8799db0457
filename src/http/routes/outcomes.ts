/**
 * What each channel earns and costs (issue 14): the price list, outcomes, feedback, and the outcomes
 * analytics answer.
 */
import { type Static, Type } from "typebox"
import { ATTRIBUTION_MODELS, type OutcomesAnswer } from "../../analytics/outcomes.js"
import { camelCaseKeys, snakeCaseProperties, type WireForm, wireForm } from "../../core/casing.js"
import { DateTime, Nullable } from "../../core/formats.js"
import { SENTIMENT_BUCKETS } from "../../core/money.js"
import {
  ChannelSchema,
  FeedbackInputSchema,
  OneOf,
  OutcomeInputSchema,
  PriceInputSchema,
} from "../../meter/inputs.js"
import { AnalyticsParams, PeriodSchema, rangeQuery } from "../analytics-schemas.js"
import { authenticate, callerScope, requireAdmin, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const MoneyText = (description: string) => Type.String({ description })

export const PriceSchema = Type.Object({
  model: Type.String(),
  currency: Type.String({ description: "ISO 4217: the operator's currency (OMNIMETER_CURRENCY)." }),
  effective_from: DateTime("The price applies to turns from this instant until the model's next price."),
  input_per_million: MoneyText("Price of one million input tokens, exact decimal."),
  output_per_million: MoneyText("Price of one million output tokens, exact decimal."),
})
export type PriceBody = Static<typeof PriceSchema>
export const PriceListSchema = Type.Object({ currency: Type.String(), prices: Type.Array(PriceSchema) })
export type PriceListBody = Static<typeof PriceListSchema>

export const OutcomeBody = Type.Object(snakeCaseProperties(OutcomeInputSchema.properties), {
  additionalProperties: false,
})
export const OutcomeSchema = Type.Object({
  id: Type.String(),
  subscription_id: Type.String(),
  name: Type.String(),
  value: Nullable(MoneyText("Exact decimal in currency.")),
  currency: Nullable(Type.String()),
  user_identifier: Type.String(),
  session_id: Nullable(Type.String()),
  channel: Nullable(ChannelSchema),
  occurred_at: DateTime(),
  idempotency_key: Type.String(),
  recorded: Type.Boolean({
    description: "False when the idempotency key was already recorded (nothing written).",
  }),
})

export const FeedbackBody = Type.Object(snakeCaseProperties(FeedbackInputSchema.properties), {
  additionalProperties: false,
})
export const FeedbackSchema = Type.Object({
  id: Type.String(),
  subscription_id: Type.String(),
  usage_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  channel: ChannelSchema,
  csat: Nullable(Type.Integer()),
  thumbs: Nullable(OneOf(["up", "down"] as const)),
  created_at: DateTime(),
  recorded: Type.Boolean({
    description: "False when the idempotency key was already recorded (nothing written).",
  }),
})

export const OutcomesQuery = Type.Object(
  {
    ...rangeQuery,
    attribution: Type.Optional(
      OneOf(
        ATTRIBUTION_MODELS,
        "last_touch (default): the outcome's channel, else the latest touch of its session, else of its user, within the lookback; first_touch: the earliest; linear: every touch an equal share.",
      ),
    ),
    lookback_days: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 90, description: "Attribution lookback in days (default 7)." }),
    ),
  },
  { additionalProperties: false },
)

const Ratio = (description: string) => Nullable(Type.Number({ description }))
const OutcomeFiguresFields = {
  cost: MoneyText(
    "Money cost of the period's settled turns, exact: sum over priced turns of input_tokens x input price + output_tokens x output price (per million tokens, in force at the turn's time).",
  ),
  priced_turns: Type.Integer(),
  unpriced_turns: Type.Integer({
    description:
      "Settled turns without a cost: no model, no input/output split, or no price. Never counted as 0.",
  }),
  settled_turns: Type.Integer(),
  turns: Type.Integer({ description: "Allowed turns." }),
  tokens_used: Type.Integer({ description: "Billed tokens of the allowed turns." }),
  conversions: Type.Array(Type.Object({ name: Type.String(), count: Type.Number() }), {
    description: "Credited outcomes per name (fractions under linear attribution, 4 decimals).",
  }),
  conversion_count: Type.Number(),
  sessions: Type.Integer({ description: "Distinct sessions of the period's allowed turns." }),
  converted_sessions: Type.Integer({ description: "Of those, sessions an outcome of the period names." }),
  conversion_rate: Ratio("converted_sessions / sessions, 4 decimals; null without sessions."),
  value: MoneyText("Sum of credited value x share, exact (micro-units under linear attribution)."),
  roi: Ratio("(value - cost) / cost, 4 decimals; null when cost is 0."),
  cost_per_conversion: Nullable(
    MoneyText("cost / conversion_count, to micro-units; null without conversions."),
  ),
  tokens_per_conversion: Ratio("tokens_used / conversion_count, 2 decimals; null without conversions."),
  latency_ms: Type.Object(
    {
      p50: Nullable(Type.Integer()),
      p90: Nullable(Type.Integer()),
      p99: Nullable(Type.Integer()),
    },
    {
      description:
        "Nearest-rank percentiles of settle's latency_ms over the settled turns: the ceil(p x n)-th smallest value (exact, a value that occurred; no histogram, no interpolation).",
    },
  ),
  error_rate: Ratio("Settled turns with outcome error / settled turns, 4 decimals."),
  sentiment_avg: Ratio("Mean sentiment in [-1, 1] of the turns with a score, 4 decimals."),
  sentiment_count: Type.Integer(),
  sentiment_distribution: Type.Object(
    Object.fromEntries(SENTIMENT_BUCKETS.map((b) => [b, Type.Integer()])) as Record<
      (typeof SENTIMENT_BUCKETS)[number],
      ReturnType<typeof Type.Integer>
    >,
    {
      description:
        "very_negative < -0.6 <= negative < -0.2 <= neutral <= 0.2 < positive <= 0.6 < very_positive.",
    },
  ),
  csat_avg: Ratio("Mean CSAT (1-5) of the ratings given in the period, 2 decimals."),
  csat_count: Type.Integer(),
  thumbs_up: Type.Integer(),
  thumbs_down: Type.Integer(),
}
export const OutcomesAnswerSchema = Type.Object({
  subscription_id: Type.String(),
  timezone: Type.String(),
  currency: Type.String(),
  attribution: OneOf(ATTRIBUTION_MODELS),
  lookback_days: Type.Integer(),
  period: PeriodSchema,
  channels: Type.Array(Type.Object({ channel: ChannelSchema, ...OutcomeFiguresFields })),
  totals: Type.Object(OutcomeFiguresFields),
  unattributed: Type.Object({
    count: Type.Number({ description: "Outcomes with no own channel and no touch in the lookback." }),
    value: MoneyText("Their value."),
  }),
  generated_at: DateTime(),
})
export type OutcomesAnswerBody = Static<typeof OutcomesAnswerSchema>
const PRICE_COLUMNS = csvColumns(PriceSchema)
const OUTCOME_COLUMNS = csvColumns(OutcomesAnswerSchema.properties.channels.items)
/**
 * The answer in its wire form; the compiler checks it against the schema. Percentile names keep their
 * digits (p50, not p_50).
 */
function answerBody(answer: OutcomesAnswer): OutcomesAnswerBody {
  const wire: WireForm<OutcomesAnswer> = wireForm(answer)
  return {
    ...wire,
    channels: wire.channels.map((channel, i) => ({
      ...channel,
      latency_ms: answer.channels[i]?.latencyMs ?? { p50: null, p90: null, p99: null },
    })),
    totals: { ...wire.totals, latency_ms: answer.totals.latencyMs },
  }
}

export const outcomeRoutes: RouteModule = (app, { outcomes, keys }) => {
  const auth = authenticate(keys)

  app.get(
    "/api/prices",
    {
      onRequest: auth,
      schema: {
        operationId: "listPrices",
        tags: ["costs"],
        summary: "The price list per model, in the operator's currency",
        description: "`format=csv` or `Accept: text/csv` answers CSV, one row per price.",
        security: bearerSecurity,
        querystring: FormatQuery,
        response: { 200: PriceListSchema, ...errorResponses(400, 401, 500) },
      },
    },
    async (request, reply) => {
      const prices = wireForm(await outcomes.prices())
      if (wantsCsv(request)) return sendCsv(reply, "prices", PRICE_COLUMNS, prices)
      return { currency: outcomes.currency, prices }
    },
  )

  app.put(
    "/api/prices/:model",
    {
      onRequest: auth,
      schema: {
        operationId: "putPrice",
        tags: ["costs"],
        summary: "Set a model's prices per million tokens from a moment on (admin)",
        description:
          "Prices have at most 6 decimals and are in the operator's currency. A price applies to turns whose time is at or after effective_from (default now) and that are settled or imported afterwards: a turn's cost is fixed when it is settled and never rewritten.",
        security: bearerSecurity,
        params: Type.Object({ model: Type.String({ minLength: 1, maxLength: 128 }) }),
        body: Type.Object(snakeCaseProperties(PriceInputSchema.properties), { additionalProperties: false }),
        response: { 200: PriceSchema, ...errorResponses(400, 401, 403, 500) },
      },
    },
    async (request) => {
      requireAdmin(request)
      return wireForm(await outcomes.putPrice(request.params.model, camelCaseKeys(request.body)))
    },
  )

  app.post(
    "/api/outcomes",
    {
      onRequest: auth,
      schema: {
        operationId: "recordOutcome",
        tags: ["outcomes"],
        summary: "Record that an end user reached a goal (a conversion)",
        description:
          "Idempotent by idempotency_key (201 recorded, 200 already recorded). value is in the operator's currency; currency, if sent, must be it. occurred_at defaults to now and may be at most 5 minutes ahead. With the admin key, entity_id and entity_type name the subscription.",
        security: bearerSecurity,
        body: OutcomeBody,
        response: { 200: OutcomeSchema, 201: OutcomeSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { recorded, outcome } = await outcomes.recordOutcome(
        camelCaseKeys(request.body),
        callerScope(request),
      )
      reply.status(recorded ? 201 : 200)
      return { ...wireForm(outcome), recorded }
    },
  )

  app.post(
    "/api/feedback",
    {
      onRequest: auth,
      schema: {
        operationId: "recordFeedback",
        tags: ["outcomes"],
        summary: "Record a CSAT (1-5) or thumbs rating of a turn or a session",
        description:
          "Give usage_id (a turn) or session_id (a session: with the admin key also entity_id and entity_type), and csat or thumbs. Idempotent by idempotency_key (201 recorded, 200 already recorded). Another subscription's turn answers 404.",
        security: bearerSecurity,
        body: FeedbackBody,
        response: { 200: FeedbackSchema, 201: FeedbackSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { recorded, feedback } = await outcomes.recordFeedback(
        camelCaseKeys(request.body),
        callerScope(request),
      )
      reply.status(recorded ? 201 : 200)
      return { ...wireForm(feedback), recorded }
    },
  )

  app.get(
    "/api/onboarding/analytics/:subscription_id/outcomes",
    {
      onRequest: auth,
      schema: {
        operationId: "getOutcomeAnalytics",
        tags: ["analytics"],
        summary: "Per channel: money cost, conversions, value, ROI, response times, sentiment and CSAT",
        description:
          "Over a range of local days (from, to, tz, channels as the other analytics endpoints). Turns, costs and sentiment count by the turn's time; outcomes by occurred_at; ratings by when they were given. The totals cover the channels asked for; outcomes no channel could be credited with are in unattributed. `format=csv` or `Accept: text/csv` answers CSV: one row per channel, then a row with channel `total` (conversions per name left out).",
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: OutcomesQuery,
        response: { 200: OutcomesAnswerSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const { lookback_days: lookbackDays, ...query } = request.query
      const answer = answerBody(
        await outcomes.outcomes(id, { ...query, lookbackDays }, scopeFor(request, id)),
      )
      if (wantsCsv(request)) {
        const rows = [...answer.channels, { channel: "total", ...answer.totals }]
        return sendCsv(reply, `outcomes-${answer.period.from}-${answer.period.to}`, OUTCOME_COLUMNS, rows)
      }
      return answer
    },
  )
}
