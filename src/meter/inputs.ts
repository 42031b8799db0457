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
/** A model's name as the price list and the turns carry it, e.g. gpt-4o-mini. */
export const ModelName = (description?: string) => Id(128, description)
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
    model: Type.Optional(ModelName("The LLM model that will answer; settle may name it instead.")),
    sentiment: Type.Optional(
      Type.Number({
        minimum: -1,
        maximum: 1,
        description:
          "Your own sentiment score of the message in [-1, 1] (rounded to 4 decimals); without it, a message is scored with AFINN-165. Only the score is stored.",
      }),
    ),
  },
  { additionalProperties: false },
)
export type ConsumeInput = Static<typeof ConsumeInputSchema>

export const SettleInputSchema = Type.Object(
  {
    actualTokens: Type.Optional(TokenCount("Required unless input_tokens and output_tokens are both given.")),
    outcome: Type.Optional(OneOf(["ok", "error"] as const, "How the turn went, for channel health.")),
    latencyMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000 })),
    model: Type.Optional(ModelName("The model that answered; overrides the one given at consume.")),
    inputTokens: Type.Optional(
      TokenCount("Prompt tokens; with output_tokens, priced at the model's prices."),
    ),
    outputTokens: Type.Optional(
      TokenCount("Completion tokens. With both splits, actual_tokens may be left out: it is their sum."),
    ),
  },
  { additionalProperties: false },
)
export type SettleInput = Static<typeof SettleInputSchema>

/** A token limit for a period: up to 10^15, far above any real plan, and exact in a JavaScript number. */
const TokenLimit = (description?: string) =>
  Type.Integer({ minimum: 0, maximum: 1e15, ...(description ? { description } : {}) })

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

/*
 * Outcomes, feedback and prices (issue 14): what each channel earns and costs.
 */

/** A non-negative decimal with at most 6 decimals, as a JSON number or a string ("12.5"). */
export const MoneyAmount = (description: string) =>
  Type.Union([Type.String({ maxLength: 32 }), Type.Number({ minimum: 0 })], { description })

export const PriceInputSchema = Type.Object(
  {
    inputPerMillion: MoneyAmount("Price of one million input (prompt) tokens, at most 6 decimals."),
    outputPerMillion: MoneyAmount("Price of one million output (completion) tokens, at most 6 decimals."),
    currency: Type.Optional(
      Type.String({
        description: "ISO 4217; must be the operator's currency (OMNIMETER_CURRENCY) if given.",
      }),
    ),
    effectiveFrom: Type.Optional(
      DateTime(
        "From when the price applies (default now). Costs already fixed (settled or imported turns) never change.",
      ),
    ),
  },
  { additionalProperties: false },
)
export type PriceInput = Static<typeof PriceInputSchema>

export const OutcomeInputSchema = Type.Object(
  {
    entityId: Type.Optional(Id(255, "Who the goal was reached for; a subscription key may leave it out.")),
    entityType: Type.Optional(Id(64)),
    name: Id(64, "The goal, e.g. purchase, lead, ticket_resolved."),
    value: Type.Optional(MoneyAmount("What the goal is worth, >= 0, at most 6 decimals.")),
    currency: Type.Optional(
      Type.String({ description: "ISO 4217 code of value; must be the operator's currency." }),
    ),
    userIdentifier: Id(255, "The end user who reached it."),
    sessionId: Type.Optional(Id(255, "The conversation it came from, for attribution.")),
    channel: Type.Optional(ChannelSchema),
    occurredAt: Type.Optional(DateTime("When it happened (default now); at most 5 minutes ahead.")),
    idempotencyKey: Id(255, "Sent twice with the same key, an outcome is recorded once."),
  },
  { additionalProperties: false },
)
export type OutcomeInput = Static<typeof OutcomeInputSchema>

export const FeedbackInputSchema = Type.Object(
  {
    usageId: Type.Optional(Type.String({ format: "uuid", description: "The turn rated." })),
    sessionId: Type.Optional(Id(255, "Or the session rated.")),
    entityId: Type.Optional(Id(255, "With session_id and the admin key: whose session.")),
    entityType: Type.Optional(Id(64)),
    channel: Type.Optional(ChannelSchema),
    csat: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 5, description: "CSAT, 1 (worst) to 5 (best)." }),
    ),
    thumbs: Type.Optional(OneOf(["up", "down"] as const, "Or a thumbs up or down.")),
    idempotencyKey: Id(255, "Sent twice with the same key, a rating is recorded once."),
  },
  { additionalProperties: false },
)
export type FeedbackInput = Static<typeof FeedbackInputSchema>
