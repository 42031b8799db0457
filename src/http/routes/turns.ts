/**
 * The turn log (issue 16): a subscription's turns, newest first, filtered and paged by cursor, exportable
 * as CSV (streamed, every matching turn); and one turn by its id.
 */
import { type Static, Type } from "typebox"
import { camelCaseKeys, wireForm } from "../../core/casing.js"
import { CHANNELS } from "../../core/channels.js"
import { LEDGER_DENIAL_REASONS } from "../../core/decision.js"
import { DateTime, Id, Nullable, Uuid } from "../../core/formats.js"
import { OneOf } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatParameter, sendCsv, wantsCsv } from "../csv.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

export const TurnSchema = Type.Object(
  {
    usage_id: Type.String({ description: "The turn's id, as the consume call answered it." }),
    created_at: DateTime("When the turn was decided (or happened, for an imported turn)."),
    channel: OneOf(CHANNELS),
    chatbot_id: Nullable(Type.String()),
    session_id: Nullable(Type.String()),
    user_identifier: Nullable(Type.String()),
    operation_type: Type.String(),
    decision: OneOf(["allowed", "denied"] as const, "The consume call's decision."),
    denial_reason: Nullable(OneOf(LEDGER_DENIAL_REASONS), "Why a denied turn was denied; null when allowed."),
    status: OneOf(
      ["estimated", "settled", "denied"] as const,
      "estimated: allowed and charged its estimate; settled: its actual tokens replaced the estimate; denied.",
    ),
    estimated_tokens: Type.Integer({ description: "The estimate sent with consume." }),
    raw_tokens: Type.Integer({
      description: "The estimate until settlement, then the actual tokens; 0 when denied.",
    }),
    billed_tokens: Type.Integer({
      description: "ceil(raw_tokens * token_multiplier): what the quota counts.",
    }),
    token_multiplier: Type.Number({ description: "The channel's multiplier when the turn was decided." }),
    message_length: Nullable(Type.Integer()),
    idempotency_key: Nullable(Type.String()),
    period_start: Nullable(DateTime(), "The billing period the turn was charged to."),
    settled_at: Nullable(DateTime(), "When the turn was settled; null until then."),
    outcome: Nullable(Type.String(), "The outcome reported at settlement."),
    latency_ms: Nullable(Type.Integer(), "The latency reported at settlement."),
  },
  { description: "One turn as the ledger recorded it." },
)
export type TurnBody = Static<typeof TurnSchema>

const Params = Type.Object({ id: Uuid() })
const TurnParams = Type.Object({ id: Uuid(), usage_id: Uuid() })

export const TurnLogQuery = Type.Object(
  {
    channel: Type.Optional(OneOf(CHANNELS, "Only turns on this channel.")),
    chatbot_id: Type.Optional(Id(255, "Only this chatbot's turns.")),
    user_identifier: Type.Optional(Id(255, "Only this end user's turns.")),
    session_id: Type.Optional(Id(255, "Only this session's turns.")),
    decision: Type.Optional(OneOf(["allowed", "denied"] as const, "Only allowed, or only denied, turns.")),
    reason: Type.Optional(OneOf(LEDGER_DENIAL_REASONS, "Only turns denied for this reason.")),
    from: Type.Optional(DateTime("Only turns at or after this instant.")),
    to: Type.Optional(DateTime("Only turns before this instant.")),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 500, default: 50, description: "Turns per page." }),
    ),
    cursor: Type.Optional(
      Type.String({
        maxLength: 200,
        description: "next_cursor of the previous page: the turns older than its last.",
      }),
    ),
    ...FormatParameter,
  },
  { additionalProperties: false },
)

const TurnPageSchema = Type.Object({
  turns: Type.Array(TurnSchema),
  next_cursor: Nullable(Type.String(), "Pass as ?cursor= for the next (older) page; null on the last page."),
})

const TURN_COLUMNS = csvColumns(TurnSchema)

export const turnRoutes: RouteModule = (app, { turns, keys }) => {
  const auth = authenticate(keys)
  const tags = ["turns"]

  app.get(
    "/api/subscriptions/:id/turns",
    {
      onRequest: auth,
      schema: {
        operationId: "listTurns",
        tags,
        summary: "A subscription's turns, newest first, filtered and paged by cursor",
        description:
          "Filters combine (and). A turn written while you page appears above the first page, never twice. `format=csv` or `Accept: text/csv` streams every matching turn from `cursor` on (not one page), read a page at a time, one row per turn. `from` after `to`, a reason with decision=allowed, or a cursor this endpoint did not return answer 400 naming the parameter.",
        security: bearerSecurity,
        params: Params,
        querystring: TurnLogQuery,
        response: { 200: TurnPageSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const id = request.params.id
      const { limit, cursor, format: _format, ...filter } = camelCaseKeys(request.query)
      const scope = scopeFor(request, id)
      if (wantsCsv(request)) {
        const rows = turns.stream(id, filter, { cursor }, scope)
        return sendCsv(reply, "turns", TURN_COLUMNS, wireTurns(rows))
      }
      return wireForm(await turns.list(id, filter, { limit: limit ?? 50, cursor }, scope))
    },
  )

  app.get(
    "/api/subscriptions/:id/turns/:usage_id",
    {
      onRequest: auth,
      schema: {
        operationId: "getTurn",
        tags,
        summary: "One turn by its usage_id: its decision and its settlement",
        description: "404 usage_not_found when the subscription has no such turn.",
        security: bearerSecurity,
        params: TurnParams,
        response: { 200: TurnSchema, ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { id, usage_id: usageId } = request.params
      return wireForm(await turns.get(id, usageId, scopeFor(request, id)))
    },
  )
}

async function* wireTurns<T>(rows: AsyncIterable<T>) {
  for await (const row of rows) yield wireForm(row)
}
