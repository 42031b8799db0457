import { describe, expect, it } from "vitest"
import { assembleJourneys, median, type SessionRow } from "./journeys.js"

const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1) + minutes * 60_000)
const s = (person: string, channel: SessionRow["channel"], minutes: number): SessionRow => ({
  person,
  channel,
  startedAt: at(minutes),
})

describe("journeys", () => {
  const sessions = [
    s("a", "instagram", 0),
    s("a", "instagram", 10),
    s("a", "whatsapp", 70),
    s("a", "website", 100),
    s("b", "instagram", 0),
    s("b", "whatsapp", 30),
    s("c", "website", 5),
  ]

  it("counts each change of channel between consecutive sessions, with the median gap", () => {
    const answer = assembleJourneys(sessions)
    expect(answer.transitions).toEqual([
      { from: "instagram", to: "whatsapp", count: 2, medianGapSeconds: (60 + 30) * 30 },
      { from: "whatsapp", to: "website", count: 1, medianGapSeconds: 30 * 60 },
    ])
  })

  it("collapses repeats in paths and shares people among them", () => {
    const answer = assembleJourneys(sessions)
    expect(answer.topPaths).toEqual([
      { channels: ["instagram", "whatsapp"], people: 1, share: 1 / 3, conversionRate: null },
      { channels: ["instagram", "whatsapp", "website"], people: 1, share: 1 / 3, conversionRate: null },
      { channels: ["website"], people: 1, share: 1 / 3, conversionRate: null },
    ])
    expect(answer.crossChannelShare).toBeCloseTo(2 / 3, 12)
  })

  it("cuts a path at five steps", () => {
    const channels = ["website", "whatsapp", "website", "instagram", "api", "telegram", "messenger"] as const
    const answer = assembleJourneys(channels.map((channel, i) => s("z", channel, i * 60)))
    expect(answer.topPaths[0]?.channels).toEqual(["website", "whatsapp", "website", "instagram", "api"])
  })

  it("gives converters' first and last touch before the conversion, and conversion rates per path", () => {
    const answer = assembleJourneys(sessions, new Map([["a", at(80)]]))
    expect(answer.firstTouch).toEqual([{ channel: "instagram", people: 1 }])
    expect(answer.lastTouch).toEqual([{ channel: "whatsapp", people: 1 }])
    expect(answer.convertedPeople).toBe(1)
    expect(answer.topPaths.find((path) => path.channels.length === 3)?.conversionRate).toBe(1)
  })

  it("answers null shares with nobody", () => {
    expect(assembleJourneys([]).crossChannelShare).toBeNull()
  })

  it("takes the median of odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})
