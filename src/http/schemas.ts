/**
 * The HTTP API's shapes (snake_case, as in the product description), as TypeBox schemas: Fastify
 * validates with them, serializes with them, and the OpenAPI document is generated from them. The
 * dashboard imports the inferred types, never server code.
 */
import { type Static, Type } from "typebox"
import { snakeCaseProperties } from "../core/casing.js"
import { CHANNELS } from "../core/channels.js"
import { DENIAL_REASONS } from "../core/decision.js"
import { DateTime, Nullable, Uuid } from "../core/formats.js"
import {
  ChannelConfigPatchSchema,
  ChannelSchema,
  ConsumeInputSchema,
  CreateSubscriptionSchema,
  OneOf,
  PlanSchema,
  SettleInputSchema,
  StatusSchema,
  UpdateSubscriptionSchema,
} from "../meter/inputs.js"

export const SubscriptionIdParams = Type.Object({ subscription_id: Uuid() })
export const IdParams = Type.Object({ id: Uuid() })

export const ConsumeBody = Type.Object(snakeCaseProperties(ConsumeInputSchema.properties), {
  additionalProperties: false,
})
export type ConsumeBody = Static<typeof ConsumeBody>

export const RateLimitSchema = Type.Object({
  limit: Type.Integer({ description: "Requests per minute allowed on this channel." }),
  remaining: Type.Integer(),
  reset_ms: Type.Integer({ description: "Milliseconds until the oldest counted request leaves the window." }),
})

export const DecisionSchema = Type.Object(
  {
    allowed: Type.Boolean(),
    channel: ChannelSchema,
    subscription_id: Type.Optional(Type.String()),
    usage_id: Type.Optional(Type.String({ description: "Settle the turn with this id." })),
    multiplier: Type.Optional(Type.Number()),
    raw_tokens: Type.Optional(Type.Integer()),
    billed_tokens: Type.Optional(Type.Integer({ description: "ceil(raw_tokens * multiplier)" })),
    remaining_tokens: Type.Optional(Type.Integer()),
    token_limit: Type.Optional(Type.Integer()),
    period_start: Type.Optional(DateTime()),
    period_end: Type.Optional(DateTime()),
    priority: Type.Optional(Type.Integer()),
    replayed: Type.Optional(Type.Boolean({ description: "True when answering a repeated idempotency key." })),
    reason: Type.Optional(OneOf(DENIAL_REASONS, "Why the turn may not run.")),
    message: Type.Optional(Type.String()),
    required_plan: Type.Optional(PlanSchema),
    max_message_length: Type.Optional(Type.Integer()),
    message_length: Type.Optional(Type.Integer()),
    retry_after_ms: Type.Optional(Type.Integer()),
    limit: Type.Optional(OneOf(["requests_per_minute", "tokens_per_minute"] as const)),
    tokens_per_minute: Type.Optional(
      Type.Integer({ description: "turn_too_large: the channel's limit the estimate alone exceeds." }),
    ),
    status: Type.Optional(StatusSchema),
    rate_limit: Type.Optional(RateLimitSchema),
    experiments: Type.Optional(
      Type.Array(
        Type.Object({
          id: Type.String({ description: "The experiment." }),
          variant: Type.String({ description: "The variant this end user is in (sticky)." }),
          label: Nullable(
            Type.String(),
            "The variant's label, for the chat backend to apply (a prompt, a model).",
          ),
        }),
        { description: "The running experiments the turn is in; its settings include their overrides." },
      ),
    ),
    error: Type.Optional(
      Type.Object(
        { code: Type.String(), message: Type.String(), request_id: Type.String() },
        { description: "Present on denials." },
      ),
    ),
  },
  { $id: "Decision" },
)
export type DecisionBody = Static<typeof DecisionSchema>

export const SettleBody = Type.Object(
  { usage_id: Uuid(), ...snakeCaseProperties(SettleInputSchema.properties) },
  { additionalProperties: false },
)

export const SettleResultSchema = Type.Object(
  {
    usage_id: Type.String(),
    subscription_id: Type.String(),
    channel: ChannelSchema,
    actual_tokens: Type.Integer(),
    previous_billed_tokens: Type.Integer(),
    billed_tokens: Type.Integer(),
    adjustment: Type.Integer({
      description: "billed_tokens - previous_billed_tokens; negative is a refund.",
    }),
    remaining_tokens: Type.Integer(),
    overage_tokens: Type.Integer({
      description: "How far the period is over its limit after recording the truth.",
    }),
    model: Nullable(Type.String({ description: "The model the turn was priced for." })),
    cost: Nullable(
      Type.String({
        description:
          "The turn's money cost in currency, an exact decimal (input_tokens x input price + output_tokens x output price, prices per million tokens in force at the turn's time); null when unpriced.",
      }),
    ),
    currency: Type.String({ description: "The operator's ISO 4217 currency." }),
  },
  { $id: "SettleResult" },
)

export const QuotaSchema = Type.Object({
  period_start: DateTime(),
  period_end: DateTime(),
  token_limit: Type.Integer(),
  used_tokens: Type.Integer(),
  remaining_tokens: Type.Integer(),
})

export const SubscriptionSchema = Type.Object(
  {
    id: Type.String(),
    entity_id: Type.String(),
    entity_type: Type.String(),
    plan: PlanSchema,
    token_limit: Type.Integer(),
    status: StatusSchema,
    timezone: Type.String(),
    period_anchor: DateTime(),
    created_at: DateTime(),
    updated_at: DateTime(),
    quota: Type.Optional(QuotaSchema),
  },
  { $id: "Subscription" },
)
export type SubscriptionBody = Static<typeof SubscriptionSchema>

export const CreateSubscriptionBody = Type.Object(snakeCaseProperties(CreateSubscriptionSchema.properties), {
  additionalProperties: false,
})

export const UpdateSubscriptionBody = Type.Object(snakeCaseProperties(UpdateSubscriptionSchema.properties), {
  additionalProperties: false,
})

const ChannelFields = {
  enabled: Type.Boolean(),
  requests_per_minute: Type.Integer(),
  tokens_per_minute: Type.Integer(),
  max_message_length: Type.Integer(),
  token_multiplier: Type.Number(),
  priority: Type.Integer({ description: "1 (lowest) to 10 (highest)." }),
}

export const ChannelConfigSchema = Type.Object(
  {
    channel: ChannelSchema,
    in_plan: Type.Boolean(),
    required_plan: Type.Optional(PlanSchema),
    ...ChannelFields,
    overridden: Type.Array(Type.String(), {
      description: "Fields set for this subscription, not inherited.",
    }),
  },
  { $id: "ChannelConfig" },
)

export const ChannelConfigListSchema = Type.Object({
  subscription_id: Type.String(),
  plan: PlanSchema,
  channels: Type.Array(Type.Ref("ChannelConfig")),
})

/** Unlike the library's patch, an empty body is refused: over HTTP it is always a client's mistake. */
export const ChannelConfigPatchBody = Type.Object(snakeCaseProperties(ChannelConfigPatchSchema.properties), {
  additionalProperties: false,
  minProperties: 1,
})

export const ChannelParams = Type.Object({ subscription_id: Uuid(), channel: Type.String({ maxLength: 32 }) })

export const ChannelCatalogSchema = Type.Object({
  channels: Type.Array(
    Type.Object({
      channel: ChannelSchema,
      label: Type.String(),
      plans: Type.Array(PlanSchema, { description: "The plans that include the channel." }),
      cheapest_plan: PlanSchema,
      length_limit_source: Type.String(),
      defaults: Type.Object({
        requests_per_minute: Type.Integer(),
        tokens_per_minute: Type.Integer(),
        max_message_length: Type.Integer(),
        token_multiplier: Type.Number(),
        priority: Type.Integer(),
      }),
    }),
  ),
})

export const PlanCatalogSchema = Type.Object({
  plans: Type.Array(
    Type.Object({
      plan: PlanSchema,
      label: Type.String(),
      channels: Type.Array(ChannelSchema),
      default_token_limit: Type.Integer(),
    }),
  ),
})

export const IssuedKeySchema = Type.Object({
  key: Type.String({ description: "Shown once; store it now." }),
  key_id: Type.String(),
  prefix: Type.String(),
  label: Nullable(Type.String()),
  created_at: DateTime(),
})

export const KeyListSchema = Type.Object({
  keys: Type.Array(
    Type.Object({
      key_id: Type.String(),
      prefix: Type.String(),
      label: Nullable(Type.String()),
      created_at: DateTime(),
      revoked_at: Nullable(DateTime()),
    }),
  ),
})

export const MeSchema = Type.Object({
  kind: OneOf(
    ["admin", "subscription"] as const,
    "admin sees every subscription; a subscription key its own.",
  ),
  subscription_id: Nullable(
    Type.String(),
    "The subscription a subscription key belongs to; null for the admin.",
  ),
})
export type MeBody = Static<typeof MeSchema>

export const ALL_CHANNELS = CHANNELS
