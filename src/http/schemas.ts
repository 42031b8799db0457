/**
 * The HTTP API's shapes (snake_case, as in the product description), as TypeBox schemas: Fastify
 * validates with them, serializes with them, and the OpenAPI document is generated from them. The
 * dashboard imports the inferred types, never server code.
 */
import { type Static, Type } from "typebox"
import { snakeCaseProperties } from "../core/casing.js"
import { CHANNELS } from "../core/channels.js"
import { DENIAL_REASONS, SUBSCRIPTION_STATUSES } from "../core/decision.js"
import { DateTime, Nullable, Uuid } from "../core/formats.js"
import { PLANS } from "../core/plans.js"
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
import { ImportLineSchema } from "../meter/usage-import.js"

export const SubscriptionIdParams = Type.Object({ subscription_id: Uuid() })
export const IdParams = Type.Object({ id: Uuid() })

export const ConsumeBody = Type.Object(snakeCaseProperties(ConsumeInputSchema.properties), {
  additionalProperties: false,
})
export type ConsumeBody = Static<typeof ConsumeBody>

export const RateLimitSchema = Type.Object(
  {
    limit: Type.Integer({ description: "Requests per minute allowed on this channel." }),
    remaining: Type.Integer(),
    reset_ms: Type.Integer({
      description: "Milliseconds until the oldest counted request leaves the window.",
    }),
  },
  { description: "The channel's rate limit, when the turn reached the limiter." },
)

const RateLimitState = Type.Optional(RateLimitSchema)

/** The running experiments a turn is in (issue 15). */
const ExperimentsField = Type.Optional(
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
)

/** An allowed turn: charged and in the ledger before this answer. Every field is always present. */
export const AllowedDecisionSchema = Type.Object(
  {
    allowed: Type.Literal(true),
    channel: ChannelSchema,
    subscription_id: Type.String(),
    usage_id: Type.String({ description: "The turn's id: settle it with this." }),
    multiplier: Type.Number({ description: "The channel's token multiplier, e.g. 1.2." }),
    raw_tokens: Type.Integer({
      description: "The estimate the turn was charged for, before the multiplier.",
    }),
    billed_tokens: Type.Integer({ description: "ceil(raw_tokens * multiplier): what counts against quota." }),
    remaining_tokens: Type.Integer(),
    token_limit: Type.Integer(),
    period_start: DateTime(),
    period_end: DateTime(),
    priority: Type.Integer({ description: "The channel's priority, 1 (lowest) to 10." }),
    replayed: Type.Boolean({
      description: "True when answering a repeated idempotency key: nothing was charged this time.",
    }),
    rate_limit: RateLimitState,
    experiments: ExperimentsField,
  },
  { $id: "AllowedDecision", description: "The turn may run; it has been charged its estimate." },
)

/**
 * A denied turn: a value with its reason and the facts that explain it, and the error envelope's `error`
 * member, so a caller that handles every non-2xx answer as an envelope reads it too.
 */
export const DeniedDecisionSchema = Type.Object(
  {
    allowed: Type.Literal(false),
    channel: ChannelSchema,
    reason: OneOf(DENIAL_REASONS, "Why the turn may not run."),
    message: Type.String({ description: "Why, for a person." }),
    subscription_id: Type.Optional(Type.String()),
    required_plan: Type.Optional(
      OneOf(PLANS, "channel_not_in_plan: the cheapest plan that includes the channel."),
    ),
    max_message_length: Type.Optional(
      Type.Integer({ description: "message_too_long: the channel's limit." }),
    ),
    message_length: Type.Optional(Type.Integer({ description: "message_too_long: what was sent." })),
    retry_after_ms: Type.Optional(
      Type.Integer({ description: "rate_limited: when a retry can succeed (also the Retry-After header)." }),
    ),
    limit: Type.Optional(
      OneOf(
        ["requests_per_minute", "tokens_per_minute"] as const,
        "rate_limited, turn_too_large: which limit.",
      ),
    ),
    tokens_per_minute: Type.Optional(
      Type.Integer({ description: "turn_too_large: the channel's limit the estimate alone exceeds." }),
    ),
    remaining_tokens: Type.Optional(
      Type.Integer({ description: "quota_exceeded: what is left in the period." }),
    ),
    priority: Type.Optional(
      Type.Integer({
        description: "capacity_shed and a reserved quota_exceeded: the channel's priority, 1 (lowest) to 10.",
      }),
    ),
    reserved: Type.Optional(
      Type.Boolean({
        description:
          "quota_exceeded: true when the turn would fit the quota but not without the reserve kept for higher priorities.",
      }),
    ),
    capacity: Type.Optional(
      OneOf(
        ["subscription", "operator"] as const,
        "capacity_shed: whose shared capacity shed the turn, the subscription's or the deployment's.",
      ),
    ),
    shed_priority: Type.Optional(
      Type.Integer({ description: "capacity_shed: the priority being shed (the turn's channel's)." }),
    ),
    admit_percent: Type.Optional(
      Type.Integer({
        description: "capacity_shed: the percent of the shared capacity that this priority may fill.",
      }),
    ),
    status: Type.Optional(OneOf(SUBSCRIPTION_STATUSES, "subscription_inactive: the subscription's status.")),
    rate_limit: RateLimitState,
    experiments: ExperimentsField,
    error: Type.Object(
      {
        code: OneOf(DENIAL_REASONS, "The denial reason again, as the envelope's code."),
        message: Type.String(),
        request_id: Type.String({ description: "The X-Request-Id of the request." }),
      },
      { description: "The error envelope's member: the same reason, message and request id." },
    ),
  },
  { $id: "DeniedDecision", description: "The turn may not run: nothing was charged." },
)

/** A consume call's answer, split on `allowed`. */
export const DecisionSchema = Type.Union([Type.Ref("AllowedDecision"), Type.Ref("DeniedDecision")], {
  $id: "Decision",
  description: "The answer to a consume call: allowed (charged) or denied (with its reason).",
})
export type AllowedDecisionBody = Static<typeof AllowedDecisionSchema>
export type DeniedDecisionBody = Static<typeof DeniedDecisionSchema>
export type DecisionBody = AllowedDecisionBody | DeniedDecisionBody

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
    requests_per_minute: Nullable(
      Type.Integer(),
      "Requests per minute shared by all the subscription's channels; null: no shared limit.",
    ),
    tokens_per_minute: Nullable(
      Type.Integer(),
      "Estimated tokens per minute shared by all the subscription's channels; null: no shared limit.",
    ),
    priority_curve: Nullable(
      Type.Array(Type.Integer()),
      "The subscription's own priority curve; null: the default.",
    ),
    effective_priority_curve: Type.Array(Type.Integer(), {
      description:
        "Percent of the shared capacity that turns of priority 1..10 may fill (index 0 = priority 1): priority_curve, or the default.",
    }),
    quota_reserve_percent: Type.Integer({
      description: "The last part of the period's quota, in percent, kept for high-priority channels.",
    }),
    quota_reserve_min_priority: Type.Integer({
      description: "The priority a channel needs to use the quota reserve.",
    }),
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

export const ChannelParams = Type.Object({ subscription_id: Uuid(), channel: ChannelSchema })

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

export const DemoHistorySchema = Type.Object({
  state: OneOf(
    ["none", "loading", "loaded", "failed"] as const,
    "none: this server runs no demo. loading: the current billing periods are written (live turns are decided on them) and the older history is being written; figures before complete_since are incomplete. loaded: all of it is written. failed: see error.",
  ),
  total_turns: Type.Integer({ minimum: 0, description: "Ledger rows the demo's history holds in all." }),
  loaded_turns: Type.Integer({ minimum: 0, description: "How many of them are written." }),
  starts_at: Nullable(DateTime(), "The start of the history's first day."),
  complete_since: Nullable(
    DateTime(),
    "Every demo subscription's turns from this instant on are written. The broadcast's alerts and the outcomes are written last.",
  ),
  finished_at: Nullable(DateTime(), "When the history was written in full, or failed."),
  error: Nullable(Type.String(), "Why writing the history failed."),
})
export type DemoHistoryBody = Static<typeof DemoHistorySchema>

export const ALL_CHANNELS = CHANNELS

/** One line of a usage import's NDJSON body, as a shared schema for the document and generated clients. */
export const ImportLineComponent = Type.Object(ImportLineSchema.properties, {
  $id: "ImportLine",
  additionalProperties: false,
  description:
    "One historical turn: `subscription_id`, or `entity_id` + `entity_type`; billed with the channel's multiplier and written as settled.",
})
