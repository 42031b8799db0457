/**
 * The API's shapes, inferred from the server's TypeBox schemas. Type-only imports: nothing from src/ reaches
 * the bundle (test/web/bundle-boundary.test.ts checks the sources and the built files).
 */
import type { Static } from "typebox"
import type { ErrorEnvelope } from "../../../src/http/errors.js"
import type {
  AllowedDecisionBody,
  ChannelCatalogSchema,
  ChannelConfigListSchema,
  ChannelConfigPatchBody,
  ChannelConfigSchema,
  ConsumeBody,
  DecisionBody,
  DemoHistoryBody,
  DeniedDecisionBody,
  MeBody,
  PlanCatalogSchema,
  SubscriptionBody,
} from "../../../src/http/schemas.js"

export type {
  AllowedDecisionBody,
  ConsumeBody,
  DecisionBody,
  DemoHistoryBody,
  DeniedDecisionBody,
  ErrorEnvelope,
  MeBody,
  SubscriptionBody,
}
/** A decision as the playground shows it: `allowed`, and whichever of either kind's fields it carries. */
export type DecisionView = { allowed: boolean } & Partial<Omit<AllowedDecisionBody, "allowed">> &
  Partial<Omit<DeniedDecisionBody, "allowed">>
export type ChannelCatalog = Static<typeof ChannelCatalogSchema>
export type ChannelCatalogEntry = ChannelCatalog["channels"][number]
export type Channel = ChannelCatalogEntry["channel"]
export type PlanCatalog = Static<typeof PlanCatalogSchema>
export type Plan = SubscriptionBody["plan"]
export type ChannelConfig = Static<typeof ChannelConfigSchema>
/** The list references ChannelConfig by $ref, which Static cannot follow: its items are spelled here. */
export type ChannelConfigList = Omit<Static<typeof ChannelConfigListSchema>, "channels"> & {
  channels: ChannelConfig[]
}
export type ChannelConfigPatch = Static<typeof ChannelConfigPatchBody>
export type DenialReason = DeniedDecisionBody["reason"]
export interface SubscriptionPage {
  subscriptions: SubscriptionBody[]
  next_after: string | null
}

export type {
  ChannelStatsBody,
  ComparisonBody,
  ComparisonRowBody,
  ComprehensiveAnalyticsBody,
  DailyPointBody,
  HourlyBucketBody,
  TrendPointBody,
  TrendsBody,
} from "../../../src/http/analytics-schemas.js"
