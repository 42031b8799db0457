/** The library's input contracts: one schema each, types inferred from them. */
import { type Static, Type } from "typebox"
import { MAX_TOKENS_PER_TURN } from "../core/billing.js"
import { PRIORITY_MAX, PRIORITY_MIN, QUOTA_RESERVE_PERCENT_MAX } from "../core/capacity.js"
import { CHANNEL_SETTING_BOUNDS, CHANNELS } from "../core/channels.js"
import { SUBSCRIPTION_STATUSES } from "../core/decision.js"
import { DateTime, Id, Nullable } from "../core/formats.js"
import { PLANS } from "../core/plans.js"

/** A string from a closed list, as a JSON-schema enum (what OpenAPI clients generate best from). */
export const OneOf = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...(description ? { description } : {}) })
export const ChannelSchema = OneOf(CHANNELS, "A channel a chat turn arrives on.")
export const PlanSchema = OneOf(PLANS, "A subscription plan.")
export const StatusSchema = OneOf(SUBSCRIPTION_STATUSES, "A subscription's status.")
/** A turn's token count: an estimate, the tokens it really used, or an imported line's. */
export const TokenCount = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: MAX_TOKENS_PER_TURN, ...(description ? { description } : {}) })

/*
 * The five input shapes, written once. The HTTP API's bodies are these with snake_case names
 * (src/http/schemas.ts derives them with src/core/casing.ts); the descriptions are the OpenAPI document's.
 */

export const ConsumeInputSchema = Type.Object(
  {
    entityId: Id(255, "Who pays: your customer's id."),
    entityType: Id(64, "What kind of entity entity_id is, e.g. organization."),
    estimatedTokens: TokenCount("Tokens the turn is expected to use."),
    operationType: Type.Optional(Id(64, "What the turn is, e.g. chat (default).")),
    channel: ChannelSchema,
    chatbotId: Type.Optional(Id(255, "Which of your bots answers.")),
    sessionId: Type.Optional(Id(255, "The conversation.")),
    userIdentifier: Type.Optional(Id(255, "The end user, for unique-user analytics.")),
    message: Type.Optional(
      Type.String({ maxLength: 1_000_000, description: "The user's message; its length is checked." }),
    ),
    /** In Unicode code points. */
    messageLength: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1_000_000, description: "Or just its length." }),
    ),
    /** The same key for the same subscription returns the first charged decision. */
    idempotencyKey: Type.Optional(
      Id(255, "Makes retries safe; also accepted as the Idempotency-Key header."),
    ),
  },
  { additionalProperties: false },
)
export type ConsumeInput = Static<typeof ConsumeInputSchema>

export const SettleInputSchema = Type.Object(
  {
    actualTokens: TokenCount(),
    outcome: Type.Optional(OneOf(["ok", "error"] as const, "How the turn went, for channel health.")),
    latencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
)
export type SettleInput = Static<typeof SettleInputSchema>

/** A token limit for a period: up to 10^15, far above any real plan, and exact in a JavaScript number. */
const TokenLimit = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: 1e15, ...(description ? { description } : {}) })

/** The priority-aware admission settings (issue 13), shared by create and update. */
const AdmissionFields = {
  requestsPerMinute: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
      "Requests per minute shared by all the subscription's channels; null: no shared limit (default).",
    ),
  ),
  tokensPerMinute: Type.Optional(
    Nullable(
      Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
      "Estimated (raw) tokens per minute shared by all the subscription's channels, e.g. the provider's TPM limit; null: no shared limit (default).",
    ),
  ),
  priorityCurve: Type.Optional(
    Nullable(
      Type.Array(Type.Integer({ minimum: 0, maximum: 100 }), { minItems: 10, maxItems: 10 }),
      "Percent of the shared capacity that turns of each priority 1..10 may fill, non-decreasing; null: the default, 50, 56, 61, 67, 72, 78, 83, 89, 94, 100.",
    ),
  ),
  quotaReservePercent: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: QUOTA_RESERVE_PERCENT_MAX,
      description:
        "The last part of the period's quota, in percent (0-50), kept for channels of priority quota_reserve_min_priority or more. Default 0: no reserve.",
    }),
  ),
  quotaReserveMinPriority: Type.Optional(
    Type.Integer({
      minimum: PRIORITY_MIN,
      maximum: PRIORITY_MAX,
      description: "The priority a channel needs to use the quota reserve. Default 8.",
    }),
  ),
}

export const CreateSubscriptionSchema = Type.Object(
  {
    entityId: Id(255, "Your customer's id."),
    entityType: Id(64, "What kind of entity, e.g. organization."),
    plan: PlanSchema,
    tokenLimit: Type.Optional(TokenLimit("Default: the plan's.")),
    timezone: Type.Optional(Id(64, "IANA timezone for analytics.")),
    /** Anchor of the monthly billing periods. */
    periodStart: Type.Optional(DateTime("Billing anchor; default now. From 1970 to 9999.")),
    status: Type.Optional(StatusSchema),
    ...AdmissionFields,
  },
  { additionalProperties: false },
)
export type CreateSubscriptionInput = Static<typeof CreateSubscriptionSchema>

export const UpdateSubscriptionSchema = Type.Object(
  {
    plan: Type.Optional(PlanSchema),
    tokenLimit: Type.Optional(TokenLimit()),
    status: Type.Optional(StatusSchema),
    timezone: Type.Optional(Id(64)),
    ...AdmissionFields,
  },
  { additionalProperties: false },
)
export type UpdateSubscriptionInput = Static<typeof UpdateSubscriptionSchema>

/** An integer setting within its bounds from CHANNEL_SETTING_BOUNDS, the one place they are written. */
const Bounded = ({ min, max }: { min: number; max: number }) => Type.Integer({ minimum: min, maximum: max })
const b = CHANNEL_SETTING_BOUNDS
export const ChannelConfigPatchSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    requestsPerMinute: Type.Optional(Bounded(b.requestsPerMinute)),
    tokensPerMinute: Type.Optional(Bounded(b.tokensPerMinute)),
    maxMessageLength: Type.Optional(Bounded(b.maxMessageLength)),
    tokenMultiplier: Type.Optional(
      Type.Number({
        minimum: b.multiplierHundredths.min / 100,
        maximum: b.multiplierHundredths.max / 100,
        description: "At most two decimals.",
      }),
    ),
    priority: Type.Optional(Bounded(b.priority)),
  },
  { additionalProperties: false },
)
export type ChannelConfigPatch = Static<typeof ChannelConfigPatchSchema>
