/** Row types of the tables the migrations create, for Kysely. Keep in step with ./migrations. */
import type { ColumnType, Generated } from "kysely"

type Timestamp = ColumnType<Date, Date | string, Date | string>
/** numeric columns come back as strings ("1.20"): exact, converted to hundredths by the repositories. */
type Decimal = ColumnType<string, string, string>

export interface SubscriptionsTable {
  id: Generated<string>
  entity_id: string
  entity_type: string
  plan: string
  token_limit: number
  status: Generated<string>
  timezone: Generated<string>
  period_anchor: Timestamp
  created_at: Generated<Date>
  updated_at: Generated<Date>
  /** Shared by all the subscription's channels (issue 13); null: no shared limit. */
  capacity_requests_per_minute: number | null
  capacity_tokens_per_minute: number | null
  /** Percent of the shared capacity each priority 1..10 may fill; null: the default curve. */
  priority_curve: number[] | null
  quota_reserve_percent: Generated<number>
  quota_reserve_min_priority: Generated<number>
}

export interface ChannelConfigurationsTable {
  subscription_id: string
  channel: string
  enabled: boolean | null
  requests_per_minute: number | null
  tokens_per_minute: number | null
  max_message_length: number | null
  token_multiplier: ColumnType<string | null, string | null, string | null>
  priority: number | null
  updated_at: Generated<Date>
}

export interface QuotaCountersTable {
  subscription_id: string
  period_start: Timestamp
  used_tokens: number
  /**
   * Where the quota-threshold trigger looks next (migration 0020): the lowest threshold mark above
   * `used_tokens` when it last looked; 0 = at the next change; null = never (no limit, or a past period).
   */
  next_alert_tokens: Generated<number | null>
}

export interface TokenUsageLogsTable {
  id: Generated<string>
  subscription_id: string
  channel: string
  chatbot_id: string | null
  session_id: string | null
  user_identifier: string | null
  operation_type: string
  status: string
  denial_reason: string | null
  estimated_tokens: number
  raw_tokens: number
  billed_tokens: number
  token_multiplier: Decimal
  message_length: number | null
  idempotency_key: string | null
  period_start: ColumnType<Date | null, Date | string | null, Date | string | null>
  created_at: Timestamp
  settled_at: ColumnType<Date | null, Date | string | null, Date | string | null>
  outcome: string | null
  latency_ms: number | null
}

/**
 * The charged turns' idempotency keys (migration 0007): one per subscription and key, across every ledger
 * partition. Denials hold no key.
 */
export interface UsageIdempotencyKeysTable {
  subscription_id: string
  idempotency_key: string
  usage_id: string
  /** The ledger row's created_at (its partition). */
  created_at: Timestamp
}

export interface ApiKeysTable {
  id: Generated<string>
  kind: string
  subscription_id: string | null
  key_hash: string
  prefix: string
  label: string | null
  created_at: Generated<Date>
  revoked_at: ColumnType<Date | null, Date | string | null, Date | string | null>
}

/** 15-minute UTC rollup of the ledger (migration 0005), maintained by triggers. */
export interface ChannelUsageBucketsTable {
  subscription_id: string
  bucket_start: Timestamp
  channel: string
  /** The turns' chatbot_id, '' for turns that named none (migration 0014). */
  chatbot_id: string
  /** '' for allowed turns, else the denial reason. */
  denial_reason: string
  turn_count: number
  tokens_used: number
  raw_tokens: number
}

/** The UTC days of a year on which a user had an allowed turn on a channel (migration 0005). */
export interface ChannelUserDaysTable {
  subscription_id: string
  year: number
  channel: string
  /** The turns' chatbot_id, '' for turns that named none (migration 0014). */
  chatbot_id: string
  user_identifier: string
  /** bit(366): bit d is day of year d + 1, as a string of 0s and 1s. */
  days: string
  /** The first and last set bit of `days` (0-based), kept by every writer of the map (migration 0027). */
  first_day: number
  last_day: number
}

export interface AlertSettingsTable {
  subscription_id: string
  /** numeric[] comes back as strings ("0.5"). */
  quota_thresholds: ColumnType<string[], string[] | undefined, string[]>
  updated_at: Generated<Date>
}

export interface AlertsTable {
  id: Generated<string>
  seq: Generated<number>
  subscription_id: string
  type: string
  channel: string | null
  dedupe_key: string
  data: ColumnType<Record<string, unknown>, string, string>
  occurred_at: Timestamp
}

export interface WebhookEndpointsTable {
  id: Generated<string>
  subscription_id: string
  url: string
  description: string | null
  event_types: string[]
  secret: string
  enabled: Generated<boolean>
  created_at: Generated<Date>
  updated_at: Generated<Date>
}

export interface WebhookDeliveriesTable {
  id: Generated<number>
  alert_id: string
  endpoint_id: string
  subscription_id: string
  status: Generated<string>
  attempts: Generated<number>
  next_attempt_at: ColumnType<Date, Date | string | undefined, Date | string>
  lease_owner: string | null
  lease_until: ColumnType<Date | null, Date | string | null, Date | string | null>
  last_attempt_at: ColumnType<Date | null, Date | string | null, Date | string | null>
  last_status_code: number | null
  last_error: string | null
  delivered_at: ColumnType<Date | null, Date | string | null, Date | string | null>
  created_at: Generated<Date>
}

/** Saved dashboards (migration 0015): a name and an ordered list of widgets, per subscription. */
export interface DashboardsTable {
  id: Generated<string>
  subscription_id: string
  name: string
  /** A JSON array of widgets (src/core/dashboards.ts); written as JSON text. */
  widgets: ColumnType<unknown[], string, string>
  version: Generated<number>
  created_at: Generated<Date>
  updated_at: Generated<Date>
}

/** Which (channel, user_identifier) pairs are one person (migration 0017); at most one person per pair. */
export interface PersonIdentifiersTable {
  subscription_id: string
  channel: string
  user_identifier: string
  person_id: string
  linked_at: Generated<Date>
}

/** Experiments on channels (migration 0017); `variants` holds the variants as JSON. */
export interface ExperimentsTable {
  id: string
  subscription_id: string
  name: string
  channels: string[]
  variants: ColumnType<Record<string, unknown>[], string, string>
  primary_metric: string
  status: Generated<string>
  created_at: Generated<Date>
  updated_at: Generated<Date>
  started_at: ColumnType<Date | null, Date | string | null, Date | string | null>
  stopped_at: ColumnType<Date | null, Date | string | null, Date | string | null>
}

/** The operator's price list (migration 0012): per model and currency, in force from `effective_from`. */
export interface ModelPricesTable {
  model: string
  currency: string
  effective_from: Timestamp
  /** Per million tokens, at most 6 decimals, as exact strings ("2.500000"). */
  input_per_million: Decimal
  output_per_million: Decimal
  created_at: Generated<Date>
}

/** What a turn carries beyond quota (migration 0012): model, token split, money cost, sentiment. */
export interface TurnDetailsTable {
  usage_id: string
  subscription_id: string
  created_at: Timestamp
  channel: string
  model: string | null
  input_tokens: number | null
  output_tokens: number | null
  /** Micro-units of the operator's currency, exact; null when unpriced. */
  cost_micros: ColumnType<string | null, string | null, string | null>
  /** [-1, 1], 4 decimals. */
  sentiment: ColumnType<string | null, string | number | null, string | number | null>
}

/** Per subscription, quarter-hour and channel: settlements, cost and sentiment (migration 0019). */
export interface OutcomeBucketsTable {
  subscription_id: string
  bucket_start: Timestamp
  channel: string
  settled: Generated<number>
  errors: Generated<number>
  priced: Generated<number>
  /** Micro-units, exact. */
  cost_micros: Generated<string>
  sentiment_count: Generated<number>
  sentiment_sum: Generated<string>
  very_negative: Generated<number>
  negative: Generated<number>
  neutral: Generated<number>
  positive: Generated<number>
  very_positive: Generated<number>
}

/** Settles per latency histogram bucket (omnimeter_latency_bucket) and quarter-hour (migration 0019). */
export interface LatencyQuartersTable {
  subscription_id: string
  bucket_start: Timestamp
  channel: string
  latency_bucket: number
  turns: number
}

/** The same per UTC day. */
export interface LatencyDaysTable {
  subscription_id: string
  day: ColumnType<Date, Date | string, Date | string>
  channel: string
  latency_bucket: number
  turns: number
}

/** A session's first and last quarter-hour with an allowed turn, per channel (migration 0019). */
export interface LedgerSessionsTable {
  subscription_id: string
  session_id: string
  channel: string
  first_bucket: Timestamp
  last_bucket: Timestamp
}

/** An identifier's session with a session id: its earliest allowed turn (migration 0022). */
export interface JourneySessionsTable {
  subscription_id: string
  user_identifier: string
  channel: string
  session_id: string
  started_at: Timestamp
  shared: Generated<boolean>
}

/** An identifier's run of turns without a session id on a channel, less than 30 minutes apart (0022). */
export interface JourneyGapSessionsTable {
  subscription_id: string
  user_identifier: string
  channel: string
  started_at: Timestamp
  ended_at: Timestamp
}

/**
 * A turn whose session tables are still to derive (migration 0024): queued by omnimeter_write_turns in the
 * consume transaction, applied after the commit by omnimeter_sessions_derive (storage/sessions.ts).
 */
export interface SessionQueueTable {
  subscription_id: string
  usage_id: string
  created_at: Timestamp
}

/** A stored journeys answer (migration 0022): aggregates of one request, when computed and last read. */
export interface JourneyAnswersTable {
  subscription_id: string
  period_from: ColumnType<Date, Date | string, Date | string>
  period_to: ColumnType<Date, Date | string, Date | string>
  time_zone: string
  channels: string[]
  computed_at: Timestamp
  read_at: Timestamp
  aggregates: ColumnType<unknown, string, string>
}

/** An outcome's touches on one channel in the default 7-day lookback (migration 0019). */
export interface OutcomeTouchesTable {
  outcome_id: string
  subscription_id: string
  occurred_at: Timestamp
  channel: string
  touches: number
  first_at: Timestamp
  first_id: string
  last_at: Timestamp
  last_id: string
}

/** Credited outcomes per quarter-hour of occurred_at, model, channel ('' = none) and name (migration 0021). */
export interface OutcomeCreditsTable {
  subscription_id: string
  attribution: string
  bucket_start: Timestamp
  channel: string
  name: string
  conversions: ColumnType<string, string | number, string | number>
  value: ColumnType<string, string | number, string | number>
}

/** The same per UTC day (migration 0021). */
export interface OutcomeCreditDaysTable {
  subscription_id: string
  attribution: string
  day: ColumnType<Date, Date | string, Date | string>
  channel: string
  name: string
  conversions: ColumnType<string, string | number, string | number>
  value: ColumnType<string, string | number, string | number>
}

/** A session's span over all its channels (migration 0021). */
export interface SessionSpansTable {
  subscription_id: string
  session_id: string
  first_bucket: Timestamp
  last_bucket: Timestamp
}

/**
 * Per outcome naming a session and channel: the session's latest allowed turn on the channel at or before
 * the outcome and its earliest one after it (migration 0025): the outcomes answer's converted sessions.
 */
export interface OutcomeSessionTurnsTable {
  subscription_id: string
  outcome_id: string
  channel: string
  session_id: string
  occurred_at: Timestamp
  turn_before: ColumnType<Date | null, Date | string | null, Date | string | null>
  turn_after: ColumnType<Date | null, Date | string | null, Date | string | null>
}

/** Session spans starting and ending per quarter-hour and channel ('*': over all channels) (migration 0021). */
export interface SessionEdgesTable {
  subscription_id: string
  bucket_start: Timestamp
  channel: string
  starts: number
  ends: number
}

/** The same per UTC day (migration 0021). */
export interface SessionEdgeDaysTable {
  subscription_id: string
  day: ColumnType<Date, Date | string, Date | string>
  channel: string
  starts: number
  ends: number
}

/** An end user reaching a goal (migration 0012). */
export interface OutcomesTable {
  id: Generated<string>
  subscription_id: string
  name: string
  value: ColumnType<string | null, string | null, string | null>
  currency: string | null
  user_identifier: string
  session_id: string | null
  channel: string | null
  occurred_at: Timestamp
  idempotency_key: string
  created_at: Generated<Date>
}

/** A CSAT or thumbs rating of a turn or a session (migration 0012). */
export interface FeedbackTable {
  id: Generated<string>
  subscription_id: string
  usage_id: string | null
  session_id: string | null
  channel: string
  csat: number | null
  thumbs: string | null
  idempotency_key: string
  created_at: Timestamp
}

export interface DB {
  dashboards: DashboardsTable
  alert_settings: AlertSettingsTable
  alerts: AlertsTable
  webhook_endpoints: WebhookEndpointsTable
  webhook_deliveries: WebhookDeliveriesTable
  api_keys: ApiKeysTable
  subscriptions: SubscriptionsTable
  channel_configurations: ChannelConfigurationsTable
  quota_counters: QuotaCountersTable
  token_usage_logs: TokenUsageLogsTable
  usage_idempotency_keys: UsageIdempotencyKeysTable
  channel_usage_buckets: ChannelUsageBucketsTable
  /** The same sums per UTC hour. */
  channel_usage_hourly: ChannelUsageBucketsTable
  channel_user_days: ChannelUserDaysTable
  person_identifiers: PersonIdentifiersTable
  experiments: ExperimentsTable
  model_prices: ModelPricesTable
  turn_details: TurnDetailsTable
  outcomes: OutcomesTable
  feedback: FeedbackTable
  outcome_buckets: OutcomeBucketsTable
  latency_quarters: LatencyQuartersTable
  latency_days: LatencyDaysTable
  ledger_sessions: LedgerSessionsTable
  journey_sessions: JourneySessionsTable
  journey_gap_sessions: JourneyGapSessionsTable
  journey_answers: JourneyAnswersTable
  outcome_touches: OutcomeTouchesTable
  outcome_credits: OutcomeCreditsTable
  outcome_credit_days: OutcomeCreditDaysTable
  session_spans: SessionSpansTable
  session_edges: SessionEdgesTable
  session_edge_days: SessionEdgeDaysTable
  session_queue: SessionQueueTable
  outcome_session_turns: OutcomeSessionTurnsTable
}
