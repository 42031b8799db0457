/**
 * Synthetic chat traffic for the demo and the benchmarks: deterministic (seeded), with daily and weekly
 * seasonality, a peak hour per channel in the subscription's local time, a growing channel and a declining
 * one, heavy-tailed token counts, and a pool of returning end users. Pure: it only computes turns.
 */
import { CHANNELS, type Channel } from "../core/channels.js"
import type { DenialReason } from "../core/decision.js"

/** A small fast PRNG (mulberry32): the same seed gives the same traffic. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface ChannelProfile {
  /** Average allowed turns per day at the start of the series. */
  dailyTurns: number
  /** Local hour (0-23) with the most traffic. */
  peakHour: number
  /** Relative change per day, e.g. 0.02 grows 2% a day. */
  dailyGrowth: number
  /** Multiplier for Saturday and Sunday. */
  weekendFactor: number
  /** Median raw tokens per turn. */
  medianTokens: number
  /** Size of the returning end-user pool. */
  users: number
  /** Share of turns denied, and why. */
  denialRate: number
  denialReason: DenialReason
}

/** A realistic mix: the website at office hours, WhatsApp in the evening, Instagram growing, Messenger fading. */
export const DEMO_PROFILES: Readonly<Record<Channel, ChannelProfile>> = {
  website: {
    dailyTurns: 420,
    peakHour: 14,
    dailyGrowth: 0.002,
    weekendFactor: 0.55,
    medianTokens: 380,
    users: 900,
    denialRate: 0.01,
    denialReason: "message_too_long",
  },
  whatsapp: {
    dailyTurns: 360,
    peakHour: 19,
    dailyGrowth: 0.006,
    weekendFactor: 1.25,
    medianTokens: 260,
    users: 700,
    denialRate: 0.02,
    denialReason: "rate_limited",
  },
  messenger: {
    dailyTurns: 220,
    peakHour: 12,
    dailyGrowth: -0.025,
    weekendFactor: 0.9,
    medianTokens: 240,
    users: 420,
    denialRate: 0.01,
    denialReason: "message_too_long",
  },
  instagram: {
    dailyTurns: 90,
    peakHour: 21,
    dailyGrowth: 0.045,
    weekendFactor: 1.4,
    medianTokens: 150,
    users: 300,
    denialRate: 0.03,
    denialReason: "message_too_long",
  },
  telegram: {
    dailyTurns: 120,
    peakHour: 9,
    dailyGrowth: 0.0,
    weekendFactor: 0.8,
    medianTokens: 300,
    users: 200,
    denialRate: 0.01,
    denialReason: "rate_limited",
  },
  api: {
    dailyTurns: 260,
    peakHour: 3,
    dailyGrowth: 0.01,
    weekendFactor: 0.7,
    medianTokens: 900,
    users: 40,
    denialRate: 0.015,
    denialReason: "rate_limited",
  },
}

export interface SyntheticTurn {
  channel: Channel
  createdAt: Date
  rawTokens: number
  userIdentifier: string
  sessionId: string
  chatbotId: string
  denialReason?: DenialReason
}

export interface TrafficOptions {
  /** First UTC instant of the series. */
  start: Date
  days: number
  /** The subscription's timezone offset in minutes east of UTC, for local peak hours. */
  utcOffsetMinutes: number
  channels: readonly Channel[]
  seed: number
  /** Scales every channel's volume. */
  scale?: number
  profiles?: Readonly<Record<Channel, ChannelProfile>>
}

function hourWeight(localHour: number, peakHour: number): number {
  const distance = Math.min(Math.abs(localHour - peakHour), 24 - Math.abs(localHour - peakHour))
  return 0.15 + Math.exp(-(distance * distance) / 8)
}

/** Yields turns in time order, hour by hour. */
export function* syntheticTraffic(options: TrafficOptions): Generator<SyntheticTurn> {
  const random = seededRandom(options.seed)
  const profiles = options.profiles ?? DEMO_PROFILES
  const scale = options.scale ?? 1
  const bots = ["support-bot", "sales-bot", "faq-bot"]
  for (let hour = 0; hour < options.days * 24; hour += 1) {
    const hourStart = options.start.getTime() + hour * 3_600_000
    const local = new Date(hourStart + options.utcOffsetMinutes * 60_000)
    const localHour = local.getUTCHours()
    const weekday = local.getUTCDay()
    for (const channel of options.channels) {
      const profile = profiles[channel]
      const day = Math.floor(hour / 24)
      const trend = Math.max(0.05, (1 + profile.dailyGrowth) ** day)
      const weekly = weekday === 0 || weekday === 6 ? profile.weekendFactor : 1
      const totalWeight = Array.from({ length: 24 }, (_, h) => hourWeight(h, profile.peakHour)).reduce(
        (a, b) => a + b,
        0,
      )
      const expected =
        (profile.dailyTurns * scale * trend * weekly * hourWeight(localHour, profile.peakHour)) / totalWeight
      const count = Math.floor(expected + random())
      for (let i = 0; i < count; i += 1) {
        const user = Math.floor(random() ** 1.6 * profile.users)
        const tokens = Math.max(
          1,
          Math.round(profile.medianTokens * Math.exp((random() + random() + random() - 1.5) * 0.9)),
        )
        const denied = random() < profile.denialRate
        yield {
          channel,
          createdAt: new Date(hourStart + Math.floor(random() * 3_600_000)),
          rawTokens: tokens,
          userIdentifier: `${channel}-user-${user}`,
          sessionId: `${channel}-${user}-${Math.floor(hour / 6)}`,
          chatbotId: bots[Math.floor(random() * bots.length)] ?? "support-bot",
          ...(denied ? { denialReason: profile.denialReason } : {}),
        }
      }
    }
  }
}

export { CHANNELS as DEMO_CHANNELS }
