import { describe, expect, it } from "vitest"
import { CHANNEL_DEFINITIONS, CHANNELS } from "./channels.js"
import {
  capacityShed,
  DENIAL_REASONS,
  messageLengthOf,
  preflight,
  rateLimited,
  resolveChannelSettings,
} from "./decision.js"
import { cheapestPlanIncluding, PLAN_DEFINITIONS, PLANS, planIncludes } from "./plans.js"

describe("channels and plans", () => {
  it("uses the platforms' real message length limits", () => {
    expect(CHANNEL_DEFINITIONS.whatsapp.defaults.maxMessageLength).toBe(4096)
    expect(CHANNEL_DEFINITIONS.messenger.defaults.maxMessageLength).toBe(2000)
    expect(CHANNEL_DEFINITIONS.instagram.defaults.maxMessageLength).toBe(1000)
    expect(CHANNEL_DEFINITIONS.telegram.defaults.maxMessageLength).toBe(4096)
  })

  it("bills whatsapp at 1.2x and the api at 0.9x", () => {
    expect(CHANNEL_DEFINITIONS.whatsapp.defaults.multiplierHundredths).toBe(120)
    expect(CHANNEL_DEFINITIONS.api.defaults.multiplierHundredths).toBe(90)
  })

  it("gives basic website and whatsapp, professional adds messenger and the api, enterprise has all six", () => {
    expect(PLAN_DEFINITIONS.basic.channels).toEqual(["website", "whatsapp"])
    expect(PLAN_DEFINITIONS.professional.channels).toEqual(["website", "whatsapp", "messenger", "api"])
    expect([...PLAN_DEFINITIONS.enterprise.channels].sort()).toEqual([...CHANNELS].sort())
  })

  it("names the cheapest plan that unlocks a channel", () => {
    expect(cheapestPlanIncluding("website")).toBe("basic")
    expect(cheapestPlanIncluding("messenger")).toBe("professional")
    expect(cheapestPlanIncluding("instagram")).toBe("enterprise")
    for (const channel of CHANNELS) expect(planIncludes(cheapestPlanIncluding(channel), channel)).toBe(true)
  })

  it("makes every larger plan include what a smaller one does", () => {
    for (let i = 1; i < PLANS.length; i += 1) {
      const smaller = PLANS[i - 1] ?? "basic"
      const larger = PLANS[i] ?? "enterprise"
      for (const channel of PLAN_DEFINITIONS[smaller].channels)
        expect(planIncludes(larger, channel)).toBe(true)
      expect(PLAN_DEFINITIONS[larger].defaultTokenLimit).toBeGreaterThan(
        PLAN_DEFINITIONS[smaller].defaultTokenLimit,
      )
    }
  })
})

describe("channel settings", () => {
  it("inherits the channel defaults when nothing is overridden", () => {
    const settings = resolveChannelSettings("professional", "messenger")
    expect(settings).toEqual({ enabled: true, ...CHANNEL_DEFINITIONS.messenger.defaults })
  })

  it("applies overrides and treats null as the default", () => {
    const settings = resolveChannelSettings("enterprise", "telegram", {
      maxMessageLength: 100,
      priority: null,
    })
    expect(settings.maxMessageLength).toBe(100)
    expect(settings.priority).toBe(CHANNEL_DEFINITIONS.telegram.defaults.priority)
  })

  it("never enables a channel the plan lacks, whatever the overrides say", () => {
    expect(resolveChannelSettings("basic", "instagram", { enabled: true }).enabled).toBe(false)
  })
})

describe("preflight", () => {
  const base = { plan: "basic" as const, status: "active" as const, channel: "whatsapp" as const }
  const settings = resolveChannelSettings("basic", "whatsapp")

  it("lets an active subscription's enabled in-plan channel through", () => {
    expect(preflight({ ...base, settings, messageLength: 4096 })).toBeUndefined()
  })

  it("denies an inactive subscription first, before any channel check", () => {
    const denial = preflight({ ...base, status: "suspended", channel: "instagram", settings })
    expect(denial?.reason).toBe("subscription_inactive")
  })

  it("says which plan unlocks a channel outside the plan", () => {
    const denial = preflight({
      ...base,
      channel: "instagram",
      settings: resolveChannelSettings("basic", "instagram"),
    })
    expect(denial).toMatchObject({ reason: "channel_not_in_plan", requiredPlan: "enterprise" })
    expect(denial?.message).toContain("Enterprise")
  })

  it("denies a disabled channel", () => {
    expect(preflight({ ...base, settings: { ...settings, enabled: false } })?.reason).toBe("channel_disabled")
  })

  it("says the limit when a message is one character too long", () => {
    const denial = preflight({ ...base, settings, messageLength: 4097 })
    expect(denial).toMatchObject({ reason: "message_too_long", maxMessageLength: 4096, messageLength: 4097 })
    expect(denial?.message).toContain("4096")
  })

  it("counts an emoji as one character", () => {
    expect(messageLengthOf("hi 👋")).toBe(4)
  })

  it("gives every denial reason a human message", () => {
    expect(DENIAL_REASONS).toHaveLength(9)
    expect(rateLimited("api", "tokens_per_minute", 1500).message).toContain("retry in 2 s")
    const shed = capacityShed("api", "subscription", "tokens_per_minute", 2, 56, 2500)
    expect(shed).toMatchObject({
      reason: "capacity_shed",
      shedPriority: 2,
      admitPercent: 56,
      retryAfterMs: 2500,
    })
    expect(shed.message).toContain("priority 2")
  })
})
