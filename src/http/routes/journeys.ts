/** Customer journeys across channels (issue 15). */
import { type Static, Type } from "typebox"
import { wireForm } from "../../core/casing.js"
import { DateTime, Nullable } from "../../core/formats.js"
import { ChannelSchema, OneOf } from "../../meter/inputs.js"
import { AnalyticsParams, rangeQuery } from "../analytics-schemas.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const TouchSchema = Type.Array(Type.Object({ channel: ChannelSchema, people: Type.Integer() }))

export const JourneysSchema = Type.Object(
  {
    subscription_id: Type.String(),
    period: Type.Object({
      from: Type.String(),
      to: Type.String(),
      time_zone: Type.String(),
      start: DateTime(),
      end: DateTime(),
    }),
    channels: Type.Array(ChannelSchema),
    computed_at: DateTime(
      "When the figures were computed: now, or, for an answer that takes long to compute, its stored answer's time, at most 5 minutes ago (a change of links is never served stale). `fresh=true` computes now.",
    ),
    session_gap_minutes: Type.Integer({
      description: "Turns without a session_id start a session after this gap.",
    }),
    people: Type.Integer({
      description: "People with at least one session (an unlinked identifier is one).",
    }),
    sessions: Type.Integer(),
    transitions: Type.Array(
      Type.Object({
        from: ChannelSchema,
        to: ChannelSchema,
        count: Type.Integer({
          description: "Times a person's next session was on `to` after one on `from`.",
        }),
        median_gap_seconds: Type.Number({ description: "Median time between the two sessions' starts." }),
      }),
    ),
    top_paths: Type.Array(
      Type.Object({
        channels: Type.Array(ChannelSchema, { description: "Repeats collapsed, at most 5 steps." }),
        people: Type.Integer(),
        share: Type.Number({ description: "people / all people, 0-1." }),
        conversion_rate: Nullable(Type.Number(), "Converted people / people; null without outcomes."),
      }),
    ),
    cross_channel_share: Nullable(
      Type.Number(),
      "People on 2 or more channels / people; null without people.",
    ),
    first_touch: TouchSchema,
    last_touch: TouchSchema,
    converted_people: Nullable(Type.Integer()),
  },
  { $id: "Journeys" },
)
export type JourneysBody = Static<typeof JourneysSchema>

const JOURNEY_TABLES = ["top_paths", "transitions", "first_touch", "last_touch"] as const
const JourneysQuery = Type.Object(
  {
    ...rangeQuery,
    fresh: Type.Optional(
      Type.Boolean({
        description: "Compute the answer now instead of serving a stored one (see computed_at).",
      }),
    ),
    table: Type.Optional(
      OneOf(JOURNEY_TABLES, "Which list of the answer a CSV holds (default top_paths); JSON ignores it."),
    ),
  },
  { additionalProperties: false },
)
const TABLE_COLUMNS = {
  top_paths: csvColumns(JourneysSchema.properties.top_paths.items),
  transitions: csvColumns(JourneysSchema.properties.transitions.items),
  first_touch: csvColumns(TouchSchema.items),
  last_touch: csvColumns(TouchSchema.items),
}

export const journeyRoutes: RouteModule = (app, { journeys, keys }) => {
  const auth = authenticate(keys)

  app.get(
    "/api/onboarding/analytics/:subscription_id/journeys",
    {
      onRequest: auth,
      schema: {
        operationId: "getJourneys",
        tags: ["analytics"],
        summary:
          "How people move between channels: transitions, top paths, cross-channel share, first and last touch",
        description:
          "A session is a person's turns sharing a session_id, or, without one, turns on one channel less than session_gap_minutes apart. People are linked identifiers (PUT .../people/{person_id}); an unlinked identifier is a person of its own. Links apply to past turns. A session belongs to the period it starts in. An answer that takes over a second to compute is stored and served for up to 5 minutes (re-derived in the background while it is read; `computed_at` says when; a change of links makes it stale at once); `fresh=true` computes it now. Allowed turns with a user_identifier count. `from`, `to`, `tz`, `channels` as in the other analytics. `format=csv` or `Accept: text/csv` answers one of the lists as CSV, named by `table` (a path's channels joined by spaces).",
        security: bearerSecurity,
        params: AnalyticsParams,
        querystring: JourneysQuery,
        response: { 200: Type.Ref("Journeys"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.subscription_id
      const { table = "top_paths", fresh = false, ...query } = request.query
      const answer = wireForm(await journeys.journeys(id, query, scopeFor(request, id), { fresh }))
      if (wantsCsv(request)) {
        const name = `journeys-${table}-${answer.period.from}-${answer.period.to}`
        return sendCsv(reply, name, TABLE_COLUMNS[table], answer[table])
      }
      return answer
    },
  )
}
