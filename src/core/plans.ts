import type { Channel } from "./channels.js"

/** Every plan, cheapest first. */
export const PLANS = ["basic", "professional", "enterprise"] as const

/** A subscription plan. */
export type Plan = (typeof PLANS)[number]

export interface PlanDefinition {
  plan: Plan
  label: string
  channels: readonly Channel[]
  /** Tokens per billing period when a subscription does not set its own limit. */
  defaultTokenLimit: number
}

/** What each plan includes: the product description's channel matrix. */
export const PLAN_DEFINITIONS: Readonly<Record<Plan, PlanDefinition>> = Object.freeze({
  basic: {
    plan: "basic",
    label: "Basic",
    channels: ["website", "whatsapp"],
    defaultTokenLimit: 100_000,
  },
  professional: {
    plan: "professional",
    label: "Professional",
    channels: ["website", "whatsapp", "messenger", "api"],
    defaultTokenLimit: 1_000_000,
  },
  enterprise: {
    plan: "enterprise",
    label: "Enterprise",
    channels: ["website", "whatsapp", "messenger", "instagram", "telegram", "api"],
    defaultTokenLimit: 10_000_000,
  },
})

/** True when `value` names a plan. */
export function isPlan(value: unknown): value is Plan {
  return typeof value === "string" && (PLANS as readonly string[]).includes(value)
}

/** Whether `plan` includes `channel`. */
export function planIncludes(plan: Plan, channel: Channel): boolean {
  return PLAN_DEFINITIONS[plan].channels.includes(channel)
}

/**
 * The cheapest plan that includes `channel`: what to tell a user whose plan lacks it.
 * @example cheapestPlanIncluding("instagram") // "enterprise"
 */
export function cheapestPlanIncluding(channel: Channel): Plan {
  for (const plan of PLANS) if (planIncludes(plan, channel)) return plan
  return "enterprise"
}

/** The plans that include `channel`, cheapest first. */
export function plansIncluding(channel: Channel): Plan[] {
  return PLANS.filter((plan) => planIncludes(plan, channel))
}
