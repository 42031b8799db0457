/**
 * omnimeter: meter, limit and explain LLM token usage per channel.
 * @example
 * import { createMeter } from "omnimeter"
 * const meter = await createMeter()
 */
export {
  newWebhookSecret,
  SIGNATURE_HEADER,
  signatureHeader,
  type VerifyResult,
  verifyWebhookSignature,
} from "./alerts/signature.js"
export type { JourneysAnswer } from "./analytics/journeys.js"
export type {
  PersonRecommendation,
  RecommendationsAnswer,
  RecommendationsQuery,
} from "./analytics/recommendations.js"
export { type Config, loadConfig } from "./config.js"
export { ALERT_TYPES, type AlertType, DEFAULT_QUOTA_THRESHOLDS } from "./core/alerts.js"
export {
  billedTokens,
  hundredthsToMultiplier,
  MAX_TOKENS_PER_TURN,
  multiplierToHundredths,
} from "./core/billing.js"
export {
  admissionThreshold,
  admitPercent,
  admits,
  DEFAULT_PRIORITY_CURVE,
  priorityCurveProblem,
  quotaLimitFor,
} from "./core/capacity.js"
export {
  CHANNEL_DEFINITIONS,
  CHANNELS,
  type Channel,
  type ChannelDefinition,
  type ChannelSettings,
  isChannel,
} from "./core/channels.js"
export { type Clock, ManualClock, systemClock } from "./core/clock.js"
export {
  DENIAL_REASONS,
  type DenialReason,
  LEDGER_DENIAL_REASONS,
  SUBSCRIPTION_STATUSES,
  type SubscriptionStatus,
} from "./core/decision.js"
export {
  DatabaseUnavailableError,
  ERROR_CODES,
  type ErrorCode,
  OmnimeterError,
  ValidationError,
} from "./core/errors.js"
export {
  EXPERIMENT_METRICS,
  EXPERIMENT_STATUSES,
  type Experiment,
  type ExperimentAssignment,
  type ExperimentMetric,
  type ExperimentStatus,
  type Variant,
  type VariantOverrides,
} from "./core/experiments.js"
export type { JourneyPath, TouchCount, Transition } from "./core/journeys.js"
export { tokensOfUsage, tokensUsedBy } from "./core/llm-usage.js"
export { type BillingPeriod, billingPeriodAt } from "./core/period.js"
export {
  cheapestPlanIncluding,
  isPlan,
  PLAN_DEFINITIONS,
  PLANS,
  type Plan,
  type PlanDefinition,
} from "./core/plans.js"
export {
  type ChannelRecommendation,
  type PersonChannelActivity,
  RECOMMENDATION_ACTIONS,
  type RecommendationAction,
} from "./core/recommendations.js"
export type { Subscription } from "./core/subscription.js"
export type { TenantScope } from "./core/tenant.js"
export type {
  CreateExperimentInput,
  LinkPersonInput,
  UpdateExperimentInput,
} from "./experiments/inputs.js"
export type { ExperimentResults, VariantResult } from "./experiments/results.js"
export { ExperimentService, type Person } from "./experiments/service.js"
export { InProcessRateLimiter } from "./limits/in-process.js"
export type { RateLimiter, RateLimitRequest, RateLimitResult, RateLimitState } from "./limits/rate-limiter.js"
export type {
  AllowedDecision,
  ChannelConfig,
  Decision,
  DeniedDecision,
  QuotaStatus,
  SettleResult,
} from "./meter/decisions.js"
export {
  type EstimateTokensOptions,
  estimateTokens,
  TOKEN_ENCODINGS,
  type TokenEncoding,
} from "./meter/estimate-tokens.js"
export type {
  ChannelConfigPatch,
  ConsumeInput,
  CreateSubscriptionInput,
  SettleInput,
  UpdateSubscriptionInput,
} from "./meter/inputs.js"
export { createMeter, Meter, type MeterOptions, type OperatorCapacity } from "./meter/meter.js"
export {
  type MeteredTurn,
  type MeteredTurnOptions,
  UnreadableUsageError,
  type UsageMapping,
} from "./meter/metered-turn.js"
export { type Database, type DatabaseOptions, openDatabase } from "./storage/database.js"
export { deriveSessions, SessionDeriveJob } from "./storage/sessions.js"
