/** The library's input contracts: one schema each, types inferred from them. */
import { type Static, Type } from "typebox"
import { MAX_TOKENS_PER_TURN } from "../core/billing.js"
import { CHANNEL_SETTING_BOUNDS, CHANNELS } from "../core/channels.js"
import { SUBSCRIPTION_STATUSES } from "../core/decision.js"
import { DateTime, Id } from "../core/formats.js"
import { PLANS } from "../core/plans.js"

/** A string from a closed list, as a JSON-schema enum (what OpenAPI clients generate best from). */
export const OneOf = <T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...(description ? { description } : {}) })
export const ChannelSchema = OneOf(CHANNELS, "A channel a chat turn arrives on.")
export const PlanSchema = OneOf(PLANS, "A subscription plan.")
export const StatusSchema = OneOf(SUBSCRIPTION_STATUSES, "A subscription's status.")
export const TokenCount = Type.Integer({ minimum: 0, maximum: MAX_TOKENS_PER_TURN })

export const ConsumeInputSchema = Type.Object(
  {
    entityId: Id(255),
    entityType: Id(64),
    estimatedTokens: TokenCount,
    operationType: Type.Optional(Id(64)),
    channel: ChannelSchema,
    chatbotId: Type.Optional(Id(255)),
    sessionId: Type.Optional(Id(255)),
    userIdentifier: Type.Optional(Id(255)),
    /** The user's message; its length is checked against the channel's limit. */
    message: Type.Optional(Type.String({ maxLength: 1_000_000 })),
    /** Or just its length in Unicode code points. */
    messageLength: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    /** Makes retries safe: the same key for the same subscription returns the first charged decision. */
    idempotencyKey: Type.Optional(Id(255)),
  },
  { additionalProperties: false },
)
export type ConsumeInput = Static<typeof ConsumeInputSchema>

export const SettleInputSchema = Type.Object(
  {
    actualTokens: TokenCount,
    /** How the turn went, for channel health. */
    outcome: Type.Optional(Type.Union([Type.Literal("ok"), Type.Literal("error")])),
    latencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
  },
  { additionalProperties: false },
)
export type SettleInput = Static<typeof SettleInputSchema>

export const CreateSubscriptionSchema = Type.Object(
  {
    entityId: Id(255),
    entityType: Id(64),
    plan: PlanSchema,
    tokenLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15 })),
    timezone: Type.Optional(Id(64)),
    /** Anchor of the monthly billing periods (ISO 8601); default now. */
    periodStart: Type.Optional(DateTime()),
    status: Type.Optional(StatusSchema),
  },
  { additionalProperties: false },
)
export type CreateSubscriptionInput = Static<typeof CreateSubscriptionSchema>

export const UpdateSubscriptionSchema = Type.Object(
  {
    plan: Type.Optional(PlanSchema),
    tokenLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15 })),
    status: Type.Optional(StatusSchema),
    timezone: Type.Optional(Id(64)),
  },
  { additionalProperties: false },
)
export type UpdateSubscriptionInput = Static<typeof UpdateSubscriptionSchema>

const b = CHANNEL_SETTING_BOUNDS
export const ChannelConfigPatchSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    requestsPerMinute: Type.Optional(Type.Integer(b.requestsPerMinute)),
    tokensPerMinute: Type.Optional(Type.Integer(b.tokensPerMinute)),
    maxMessageLength: Type.Optional(Type.Integer(b.maxMessageLength)),
    /** 0.01 to 10, at most two decimals. */
    tokenMultiplier: Type.Optional(Type.Number({ minimum: 0.01, maximum: 10 })),
    priority: Type.Optional(Type.Integer(b.priority)),
  },
  { additionalProperties: false },
)
export type ChannelConfigPatch = Static<typeof ChannelConfigPatchSchema>
