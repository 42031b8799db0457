/**
 * The six channels omnimeter meters, and the one place their defaults live.
 *
 * Defaults are what a real platform would start from; every subscription can override them per channel
 * (see {@link ChannelSettings}). Multipliers are exact two-decimal values expressed in hundredths so that
 * billing never touches floating point.
 */

/** Every supported channel, in display order. */
export const CHANNELS = ["website", "whatsapp", "messenger", "instagram", "telegram", "api"] as const

/** A channel a chat turn arrives on. */
export type Channel = (typeof CHANNELS)[number]

/** The settings that govern one channel of one subscription. */
export interface ChannelSettings {
  /** Whether turns on this channel may run at all. */
  enabled: boolean
  /** Turns allowed in any rolling 60-second window, per subscription and channel. */
  requestsPerMinute: number
  /** Estimated (raw) tokens allowed in any rolling 60-second window, per subscription and channel. */
  tokensPerMinute: number
  /** Longest message accepted, in Unicode code points. */
  maxMessageLength: number
  /** Token multiplier in hundredths: 120 means 1.20x. */
  multiplierHundredths: number
  /** 1 (lowest) to 10 (highest): the order in which an operator's workers should serve channels. */
  priority: number
}

/** A channel's defaults plus what the platform itself imposes. */
export interface ChannelDefinition {
  channel: Channel
  label: string
  /** Where the message length limit comes from, for the docs and the dashboard. */
  lengthLimitSource: string
  defaults: Omit<ChannelSettings, "enabled">
}

/**
 * Channel defaults. Message length limits are the platforms' own where they publish one; multipliers reflect
 * what serving a turn on the channel costs beyond the model's tokens (template/session fees on WhatsApp,
 * media-heavy threads on Instagram), with the raw API cheapest because it carries no channel overhead.
 */
export const CHANNEL_DEFINITIONS: Readonly<Record<Channel, ChannelDefinition>> = Object.freeze({
  website: {
    channel: "website",
    label: "Website widget",
    lengthLimitSource: "omnimeter default (no platform limit)",
    defaults: {
      requestsPerMinute: 120,
      tokensPerMinute: 120_000,
      maxMessageLength: 4000,
      multiplierHundredths: 100,
      priority: 5,
    },
  },
  whatsapp: {
    channel: "whatsapp",
    label: "WhatsApp",
    lengthLimitSource: "WhatsApp Business text message body limit (4096)",
    defaults: {
      requestsPerMinute: 60,
      tokensPerMinute: 60_000,
      maxMessageLength: 4096,
      multiplierHundredths: 120,
      priority: 8,
    },
  },
  messenger: {
    channel: "messenger",
    label: "Facebook Messenger",
    lengthLimitSource: "Messenger Send API text limit (2000)",
    defaults: {
      requestsPerMinute: 60,
      tokensPerMinute: 60_000,
      maxMessageLength: 2000,
      multiplierHundredths: 110,
      priority: 6,
    },
  },
  instagram: {
    channel: "instagram",
    label: "Instagram Direct",
    lengthLimitSource: "Instagram Messaging API text limit (1000)",
    defaults: {
      requestsPerMinute: 40,
      tokensPerMinute: 40_000,
      maxMessageLength: 1000,
      multiplierHundredths: 115,
      priority: 6,
    },
  },
  telegram: {
    channel: "telegram",
    label: "Telegram",
    lengthLimitSource: "Telegram Bot API sendMessage text limit (4096)",
    defaults: {
      requestsPerMinute: 60,
      tokensPerMinute: 60_000,
      maxMessageLength: 4096,
      multiplierHundredths: 105,
      priority: 5,
    },
  },
  api: {
    channel: "api",
    label: "Raw API",
    lengthLimitSource: "omnimeter default (no platform limit)",
    defaults: {
      requestsPerMinute: 600,
      tokensPerMinute: 600_000,
      maxMessageLength: 32_000,
      multiplierHundredths: 90,
      priority: 4,
    },
  },
})

/** Bounds every channel setting must respect, whether it comes from a default or an override. */
export const CHANNEL_SETTING_BOUNDS = Object.freeze({
  requestsPerMinute: { min: 0, max: 1_000_000 },
  tokensPerMinute: { min: 0, max: 1_000_000_000 },
  maxMessageLength: { min: 1, max: 1_000_000 },
  /** 0.01x to 10.00x. */
  multiplierHundredths: { min: 1, max: 1000 },
  priority: { min: 1, max: 10 },
})

/** True when `value` names a supported channel. */
export function isChannel(value: unknown): value is Channel {
  return typeof value === "string" && (CHANNELS as readonly string[]).includes(value)
}
