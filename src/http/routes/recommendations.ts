/** Channel recommendations and one person's preferred channel (issue 15). */
import { type Static, Type } from "typebox"
import { wireForm } from "../../core/casing.js"
import { DateTime, Id, Nullable } from "../../core/formats.js"
import { MIN_SESSIONS, RECOMMENDATION_ACTIONS } from "../../core/recommendations.js"
import { PERSON_ID_MAX_LENGTH } from "../../experiments/inputs.js"
import { ChannelSchema, OneOf } from "../../meter/inputs.js"
import { AnalyticsParams, rangeQuery } from "../analytics-schemas.js"
import { authenticate, scopeFor } from "../auth.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const { chatbot_id: _chatbot, user_identifier: _user, format: _format, ...periodQuery } = rangeQuery

export const RecommendationsQuerySchema = Type.Object(
  {
    ...periodQuery,
    user_identifier: Type.Optional(
      Id(
        255,
        "One person by one of their identifiers (on any channel; when it is linked, the person's other identifiers too): answers `person`.",
      ),
    ),
    person_id: Type.Optional(
      Type.String({
        description: `One person by the id their identifiers are linked to (1 to ${PERSON_ID_MAX_LENGTH} characters): answers \`person\`.`,
      }),
    ),
  },
  { additionalProperties: false },
)

const IntervalSchema = Type.Object({ low: Type.Number(), high: Type.Number() })

export const RecommendationsSchema = Type.Object(
  {
    subscription_id: Type.String(),
    currency: Type.String(),
    period: Type.Object({
      from: Type.String(),
      to: Type.String(),
      time_zone: Type.String(),
      start: DateTime(),
      end: DateTime(),
    }),
    outcomes_known: Type.Boolean({
      description:
        "Whether any outcome was recorded in the period; without one every action is gather_evidence.",
    }),
    channels: Type.Array(
      Type.Object({
        rank: Type.Integer({
          description:
            "By value_per_1k_tokens (most first, null last), then conversion_rate (highest first), then cost_per_conversion (lowest first).",
        }),
        channel: ChannelSchema,
        action: OneOf(
          RECOMMENDATION_ACTIONS,
          `steer_to / steer_away: the channel's session conversion rate is significantly higher / lower than the other channels' pooled rate (two-proportion z-test, p < 0.05); keep: not significantly different; gather_evidence: fewer than ${MIN_SESSIONS} sessions on it or on the other channels, or no outcome recorded.`,
        ),
        sessions: Type.Integer({
          description:
            "Distinct session_ids of the period's allowed turns on the channel (as in the outcomes answer); turns without a session_id are in none.",
        }),
        converted_sessions: Type.Integer({
          description: "Of those sessions, the ones an outcome of the period names by its session_id.",
        }),
        tokens_used: Type.Integer({ description: "Billed tokens of allowed turns." }),
        conversions: Type.Number({ description: "Conversions credited to the channel (last touch)." }),
        value: Type.Number({ description: "Value credited to the channel, in `currency`." }),
        cost: Type.Number({ description: "Cost of the channel's turns, in `currency`." }),
        conversion_rate: Nullable(Type.Number(), "converted_sessions / sessions; null without sessions."),
        conversion_rate_interval: Nullable(IntervalSchema, "Wilson's 95% interval of conversion_rate."),
        compared_with_rest: Nullable(
          Type.Object({
            difference: Type.Number({
              description: "This channel's rate minus the other channels' pooled rate.",
            }),
            interval: IntervalSchema,
            p_value: Type.Number(),
          }),
          "Null while the action is gather_evidence.",
        ),
        value_per_1k_tokens: Nullable(
          Type.Number(),
          "value * 1000 / tokens_used; null without billed tokens.",
        ),
        cost_per_conversion: Nullable(Type.Number(), "cost / conversions; null without conversions."),
        sentence: Type.String({ description: "The recommendation in plain words, with its figures." }),
      }),
    ),
    person: Nullable(
      Type.Object({
        person_id: Nullable(Type.String()),
        user_identifier: Nullable(Type.String()),
        channel: Nullable(ChannelSchema, "The preferred channel; null without a session in the period."),
        basis: Nullable(
          OneOf(["converting", "engaged"] as const),
          "converting: the channel with most of the person's conversions; engaged: most sessions, then turns, then the most recent (no conversion of theirs known).",
        ),
        sentence: Type.String(),
        channels: Type.Array(
          Type.Object({
            channel: ChannelSchema,
            sessions: Type.Integer({
              description:
                "The journeys answer's sessions: turns sharing a session_id, or, without one, less than 30 minutes apart.",
            }),
            turns: Type.Integer(),
            tokens_used: Type.Integer(),
            conversions: Type.Integer({
              description:
                "The person's outcomes credited to the channel: their own channel, else the channel of their latest session before.",
            }),
            last_active_at: DateTime(),
          }),
        ),
      }),
      "With user_identifier or person_id: that person's preferred channel and figures; null otherwise.",
    ),
  },
  { $id: "Recommendations" },
)
export type RecommendationsBody = Static<typeof RecommendationsSchema>

export const recommendationRoutes: RouteModule = (app, { recommendations, keys }) => {
  const auth = authenticate(keys)

  app.get(
    "/api/onboarding/analytics/:subscription_id/recommendations",
    {
      onRequest: auth,
      schema: {
        operationId: "getRecommendations",
        tags: ["analytics"],
        summary: "Which channel to steer traffic to or away from, and one person's preferred channel",
        description:
          "Read from the outcomes answer (sessions, converted sessions, last-touch value and cost). Two session definitions: a channel's `sessions` and `converted_sessions` (so its `conversion_rate`, the test against the rest and the session threshold of gather_evidence) count distinct `session_id`s of the period's allowed turns on it, as the outcomes answer does: turns without a session_id are in no session, and a converted session is one an outcome of the period names by its session_id. `person.channels[].sessions` (and so the preferred channel) are the journeys answer's sessions: a person's turns on a channel sharing a session_id, or, without one, less than 30 minutes apart. `from`, `to`, `tz`, `channels` as in the other analytics.",
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: RecommendationsQuerySchema,
        response: { 200: Type.Ref("Recommendations"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const id = request.params.subscription_id
      const { user_identifier: userIdentifier, person_id: personId, ...period } = request.query
      return wireForm(
        await recommendations.recommendations(
          id,
          { ...period, userIdentifier, personId },
          scopeFor(request, id),
        ),
      )
    },
  )
}
