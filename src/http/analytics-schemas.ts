/**
 * The analytics API's shapes (issue 4): query parameters and the three responses, as TypeBox schemas.
 * Fastify validates and serializes with them, the OpenAPI document is generated from them, and the
 * dashboard imports the inferred types (type-only). Every metric's definition is in its description, the
 * one place it is written for API users; README "Analytics" repeats the formulas.
 */
import { type Static, Type } from "typebox"
import { LEDGER_DENIAL_REASONS } from "../core/decision.js"
import { DateTime, Id, Nullable, Uuid } from "../core/formats.js"
import { ChannelSchema, OneOf } from "../meter/inputs.js"
import { FormatParameter } from "./csv.js"

/** Query parameters every analytics endpoint accepts. */
export const rangeQuery = {
  from: Type.Optional(
    Type.String({
      maxLength: 10,
      description:
        "First local calendar day of the period (YYYY-MM-DD, included), in the timezone. Default: 29 days before `to`.",
    }),
  ),
  to: Type.Optional(
    Type.String({
      maxLength: 10,
      description:
        "Last local calendar day of the period (YYYY-MM-DD, included), in the timezone. Default: today in the timezone. At most 400 days from `from`.",
    }),
  ),
  tz: Type.Optional(
    Type.String({
      maxLength: 64,
      description: "IANA timezone (e.g. Asia/Kolkata) overriding the subscription's for this request.",
    }),
  ),
  channels: Type.Optional(
    Type.String({
      maxLength: 200,
      description: "Comma-separated channels to include (e.g. whatsapp,website). Default: all six.",
    }),
  ),
  chatbot_id: Type.Optional(
    Id(
      255,
      "Only the turns of this chatbot (the consume call's chatbot_id). Read from the rollups, as fast as the unfiltered answer.",
    ),
  ),
  user_identifier: Type.Optional(
    Id(
      255,
      "Only the turns of this end user (the consume call's user_identifier). Read from the ledger: costs a read of the subscription's turns in the period and the one before.",
    ),
  ),
  ...FormatParameter,
}

export const AnalyticsQuery = Type.Object(rangeQuery, { additionalProperties: false })
export type AnalyticsQuery = Static<typeof AnalyticsQuery>

export const TrendsQuery = Type.Object(
  {
    ...rangeQuery,
    granularity: Type.Optional(
      OneOf(
        ["daily", "hourly"] as const,
        "One point per local day (default) or per local hour; hourly only for periods of at most 14 days.",
      ),
    ),
  },
  { additionalProperties: false },
)
export type TrendsQuery = Static<typeof TrendsQuery>

export const AnalyticsParams = Type.Object({ subscription_id: Uuid() })
export const TrendsParams = Type.Object({ subscription_id: Uuid(), channel: ChannelSchema })

export const PeriodSchema = Type.Object(
  {
    from: Type.String({ description: "First local day (included)." }),
    to: Type.String({ description: "Last local day (included)." }),
    days: Type.Integer({ description: "Number of local days in the period." }),
    start: DateTime("The instant the period starts (start of `from` in the timezone)."),
    end: DateTime("The instant the period ends, excluded (start of the day after `to`)."),
    complete_to: Nullable(
      Type.String(),
      "The last complete local day of the period: `to` once the period is over; the day before today while it runs (today is partial, later days have not happened); null when not one of its days is over. trend_direction, trend_slope and growth read only the complete days.",
    ),
  },
  {
    description:
      "A range of local days and the exact UTC interval it covers (23- and 25-hour days included).",
  },
)
export type PeriodBody = Static<typeof PeriodSchema>

export const DeniedByReasonSchema = Type.Object(
  Object.fromEntries(LEDGER_DENIAL_REASONS.map((reason) => [reason, Type.Integer({ minimum: 0 })])) as Record<
    (typeof LEDGER_DENIAL_REASONS)[number],
    ReturnType<typeof Type.Integer>
  >,
  {
    description:
      "Denied turns in the period, by denial reason (every reason present, 0 when none). capacity_shed: shed by a shared capacity for the channel's priority; quota_reserved: quota_exceeded decisions that only the high-priority quota reserve refused (not counted under quota_exceeded).",
  },
)
export type DeniedByReasonBody = Static<typeof DeniedByReasonSchema>

export const GrowthSchema = Type.Object(
  {
    tokens_used: Nullable(Type.Number(), "Percent change of tokens_used, 2 decimals."),
    message_count: Nullable(Type.Number(), "Percent change of message_count, 2 decimals."),
    unique_users: Nullable(Type.Number(), "Percent change of unique_users, 2 decimals."),
  },
  {
    description:
      "100 * (complete - previous) / previous, rounded to 2 decimals (half away from zero): the period's complete days (`complete`, see period.complete_to) against as many days immediately before them (`previous`, see previous_period). A period that is over compares all its days with the equally long period before; one that includes today leaves today (partial) and any later day out of both sides, so an unfinished day never reads as a fall. Null when the previous value is 0, and when no day of the period is complete.",
  },
)

export const PreviousPeriodTotalsSchema = Type.Object(
  {
    tokens_used: Type.Integer(),
    message_count: Type.Integer(),
    unique_users: Type.Integer(),
  },
  { description: "The same counts over the previous period, which growth compares against." },
)

export const CompletePeriodTotalsSchema = Type.Object(
  {
    tokens_used: Type.Integer(),
    message_count: Type.Integer(),
    unique_users: Type.Integer(),
  },
  {
    description:
      "The same counts over the period's complete days (from `from` to period.complete_to; all of it once the period is over; zero when no day is complete): what growth compares with `previous`.",
  },
)

export const HourlyBucketSchema = Type.Object({
  hour: Type.Integer({ minimum: 0, maximum: 23, description: "Local hour of day in the timezone." }),
  tokens_used: Type.Integer(),
  message_count: Type.Integer(),
})
export type HourlyBucketBody = Static<typeof HourlyBucketSchema>

export const DailyPointSchema = Type.Object({
  date: Type.String({ description: "Local day (YYYY-MM-DD)." }),
  tokens_used: Type.Integer(),
  message_count: Type.Integer(),
})
export type DailyPointBody = Static<typeof DailyPointSchema>

const TrendDirectionSchema = OneOf(
  ["increasing", "decreasing", "stable"] as const,
  "Least-squares slope of daily tokens_used over the period's complete days (zero-filled; today, partial, and later days are left out, see period.complete_to); with mean the average daily tokens: increasing when slope * (days - 1) / mean > 0.10, decreasing when < -0.10, otherwise stable (also stable with fewer than 3 days or no usage).",
)
const RatingSchema = Nullable(
  OneOf(["Excellent", "Good", "Average", "Poor"] as const),
  "From efficiency_score: Excellent >= 85, Good >= 65, Average >= 40, Poor below; null with no usage.",
)

/** The counts and derived figures shared by a channel and the totals. */
const usageFields = {
  tokens_used: Type.Integer({
    description:
      "Sum of billed tokens (after the channel multiplier) of allowed turns, estimated or settled (the estimate until settlement, then the actual).",
  }),
  raw_tokens: Type.Integer({ description: "Sum of raw tokens (before the multiplier) of the same turns." }),
  message_count: Type.Integer({ description: "Number of allowed turns." }),
  denied_count: Type.Integer({ description: "Number of denied turns." }),
  denied_by_reason: DeniedByReasonSchema,
  unique_users: Type.Integer({
    description:
      "Exact number of distinct non-empty user_identifier values of allowed turns in the period (a user active on several days, or in the totals on several channels, counts once).",
  }),
  unique_people: Type.Integer({
    description:
      "Exact number of distinct people among the same turns' identifiers: identifiers linked to one person (PUT /api/subscriptions/{id}/people/{person_id}) count once, across channels; an unlinked identifier is a person of its own on each channel. Links apply to past turns (read when asked).",
  }),
  avg_tokens_per_message: Type.Number({
    description: "tokens_used / message_count, 2 decimals (half away from zero); 0 with no messages.",
  }),
  peak_usage_hour: Nullable(
    Type.Integer({ minimum: 0, maximum: 23 }),
    "Local hour of day (0-23) with the most tokens_used; ties go to the earliest hour; null with no usage.",
  ),
  growth: GrowthSchema,
  complete: CompletePeriodTotalsSchema,
  previous: PreviousPeriodTotalsSchema,
  trend_direction: TrendDirectionSchema,
  trend_slope: Type.Number({
    description: "The least-squares slope over the complete days, tokens per day.",
  }),
}

const channelScoreFields = {
  usage_share: Type.Number({
    description:
      "The channel's tokens_used as a percentage of the tokens_used of all channels in the answer, 2 decimals; 0 when none.",
  }),
  messages_per_1k_tokens: Nullable(
    Type.Number(),
    "1000 * message_count / tokens_used, 2 decimals; null with no tokens.",
  ),
  value_per_1k_tokens: Nullable(
    Type.Number(),
    "With efficiency_basis value: 1000 * value credited to the channel (last-touch attribution, 7-day lookback, as the outcomes answer's default) / tokens_used, in the operator's currency, 6 decimals; null with no tokens, and always null with efficiency_basis messages.",
  ),
  efficiency_score: Nullable(
    Type.Number(),
    "The answer's efficiency_basis per token, scaled so that the most efficient channel of the answer scores 100 (one decimal, computed from exact counts and micro-units): value_per_1k_tokens when efficiency_basis is value, else messages_per_1k_tokens; null with no tokens.",
  ),
  performance_rating: RatingSchema,
}

export const ChannelStatsSchema = Type.Object(
  {
    channel: ChannelSchema,
    ...usageFields,
    ...channelScoreFields,
    hourly_distribution: Type.Array(HourlyBucketSchema, {
      description: "24 buckets, local hours 0-23, over the whole period.",
    }),
    daily_trends: Type.Array(DailyPointSchema, {
      description: "One point per local day of the period, zero-filled.",
    }),
  },
  { description: "One channel's figures over the period." },
)
export type ChannelStatsBody = Static<typeof ChannelStatsSchema>

export const TotalStatsSchema = Type.Object(
  {
    ...usageFields,
    hourly_distribution: Type.Array(HourlyBucketSchema),
    daily_trends: Type.Array(DailyPointSchema),
  },
  { description: "Every channel of the answer together." },
)
export type TotalStatsBody = Static<typeof TotalStatsSchema>

const answerHeader = {
  subscription_id: Type.String(),
  timezone: Type.String({ description: "The IANA timezone days and hours are counted in." }),
  period: PeriodSchema,
  // The days growth compares against (see GrowthSchema): as many as the period has complete days.
  previous_period: PeriodSchema,
  generated_at: DateTime(),
}

const EfficiencyBasisSchema = OneOf(
  ["messages", "value"] as const,
  "What efficiency_score measures: value (value per 1,000 billed tokens) when the outcomes of the period credited to the answer's channels (last touch, 7-day lookback) have a value above 0 and no chatbot_id or user_identifier filter is given; otherwise messages (messages per 1,000 billed tokens).",
)

export const ComprehensiveAnalyticsSchema = Type.Object({
  ...answerHeader,
  efficiency_basis: EfficiencyBasisSchema,
  channels: Type.Array(ChannelStatsSchema, {
    description: "One entry per channel asked for (default all six), in catalog order.",
  }),
  totals: TotalStatsSchema,
})
export type ComprehensiveAnalyticsBody = Static<typeof ComprehensiveAnalyticsSchema>

export const ComparisonRowSchema = Type.Object({
  rank: Type.Integer({ minimum: 1, description: "1 = most tokens_used; ties keep catalog order." }),
  channel: ChannelSchema,
  ...usageFields,
  ...channelScoreFields,
})
export type ComparisonRowBody = Static<typeof ComparisonRowSchema>

const BestWorstSchema = Nullable(
  Type.Object({ best: ChannelSchema, worst: ChannelSchema }),
  "The best and worst channel for the metric (ties: the earlier in rank order); null when no channel has a value.",
)

export const BEST_WORST_METRICS = [
  "tokens_used",
  "message_count",
  "unique_users",
  "avg_tokens_per_message",
  "usage_share",
  "efficiency_score",
  "tokens_growth",
] as const

export const ComparisonSchema = Type.Object({
  ...answerHeader,
  efficiency_basis: EfficiencyBasisSchema,
  channels: Type.Array(ComparisonRowSchema, {
    description: "The channels side by side, ranked by tokens_used (most first).",
  }),
  best_and_worst: Type.Object(
    {
      tokens_used: BestWorstSchema,
      message_count: BestWorstSchema,
      unique_users: BestWorstSchema,
      avg_tokens_per_message: BestWorstSchema,
      usage_share: BestWorstSchema,
      efficiency_score: BestWorstSchema,
      tokens_growth: BestWorstSchema,
    },
    {
      description:
        "Per metric, the best and worst channel. Higher is better, except avg_tokens_per_message (fewer tokens per message is better; channels without messages are left out). Channels with a null value are left out.",
    },
  ),
  totals: Type.Object({
    tokens_used: Type.Integer(),
    raw_tokens: Type.Integer(),
    message_count: Type.Integer(),
    denied_count: Type.Integer(),
    unique_users: Type.Integer(),
    unique_people: Type.Integer(),
    avg_tokens_per_message: Type.Number(),
  }),
})
export type ComparisonBody = Static<typeof ComparisonSchema>

export const TrendPointSchema = Type.Object({
  start: DateTime("The instant the day or hour starts."),
  date: Type.String({ description: "Local day (YYYY-MM-DD)." }),
  hour: Nullable(
    Type.Integer({ minimum: 0, maximum: 23 }),
    "Local hour for hourly points (a repeated hour at a DST fall-back appears twice, with different starts); null for daily points.",
  ),
  tokens_used: Type.Integer(),
  raw_tokens: Type.Integer(),
  message_count: Type.Integer(),
  denied_count: Type.Integer(),
})
export type TrendPointBody = Static<typeof TrendPointSchema>

export const TrendsSchema = Type.Object({
  ...answerHeader,
  channel: ChannelSchema,
  granularity: OneOf(["daily", "hourly"] as const),
  points: Type.Array(TrendPointSchema, {
    description: "One point per local day or hour of the period, oldest first, zero-filled.",
  }),
  summary: Type.Object(usageFields, { description: "The channel's figures over the whole period." }),
})
export type TrendsBody = Static<typeof TrendsSchema>
