import { describe, expect, it } from "vitest"
import { parseChannels, resolveAnalyticsRange } from "./analytics-range.js"
import { ValidationError } from "./errors.js"

const now = new Date("2026-11-25T12:00:00Z")

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof ValidationError) return error.field
    throw error
  }
  return undefined
}

describe("resolveAnalyticsRange", () => {
  it("defaults to the 30 days ending today in the subscription's timezone", () => {
    expect(resolveAnalyticsRange({}, "UTC", now)).toMatchObject({
      timeZone: "UTC",
      from: "2026-10-27",
      to: "2026-11-25",
      days: 30,
      previousFrom: "2026-09-27",
      previousTo: "2026-10-26",
    })
  })

  it("takes today from the timezone, which may already be tomorrow", () => {
    expect(resolveAnalyticsRange({}, "Pacific/Kiritimati", new Date("2026-11-25T11:00:00Z")).to).toBe(
      "2026-11-26",
    )
    expect(resolveAnalyticsRange({ tz: "Pacific/Pago_Pago" }, "Pacific/Kiritimati", now).to).toBe(
      "2026-11-25",
    )
  })

  it("defaults from to 29 days before a given to", () => {
    expect(resolveAnalyticsRange({ to: "2026-03-31" }, "UTC", now)).toMatchObject({
      from: "2026-03-02",
      days: 30,
    })
  })

  it("the previous period is equally long and ends the day before from", () => {
    expect(resolveAnalyticsRange({ from: "2026-03-01", to: "2026-03-31" }, "UTC", now)).toMatchObject({
      days: 31,
      previousFrom: "2026-01-29",
      previousTo: "2026-02-28",
    })
  })

  it("accepts a single day and exactly 400 days", () => {
    expect(resolveAnalyticsRange({ from: "2026-02-28", to: "2026-02-28" }, "UTC", now).days).toBe(1)
    expect(resolveAnalyticsRange({ from: "2025-06-01", to: "2026-07-05" }, "UTC", now).days).toBe(400)
  })

  it("rejects bad input naming the parameter", () => {
    expect(fieldOf(() => resolveAnalyticsRange({ from: "2026-02-29" }, "UTC", now))).toBe("from")
    expect(fieldOf(() => resolveAnalyticsRange({ to: "26-01-01" }, "UTC", now))).toBe("to")
    expect(fieldOf(() => resolveAnalyticsRange({ from: "2026-03-02", to: "2026-03-01" }, "UTC", now))).toBe(
      "from",
    )
    expect(fieldOf(() => resolveAnalyticsRange({ from: "2025-06-01", to: "2026-07-06" }, "UTC", now))).toBe(
      "from",
    )
    expect(fieldOf(() => resolveAnalyticsRange({ tz: "Nowhere/Land" }, "UTC", now))).toBe("tz")
    expect(fieldOf(() => resolveAnalyticsRange({}, "Nowhere/Land", now))).toBe("tz")
    expect(fieldOf(() => resolveAnalyticsRange({ channels: "sms" }, "UTC", now))).toBe("channels")
  })
})

describe("parseChannels", () => {
  it("returns every channel when absent, and the named ones in catalog order without duplicates", () => {
    expect(parseChannels(undefined)).toEqual([
      "website",
      "whatsapp",
      "messenger",
      "instagram",
      "telegram",
      "api",
    ])
    expect(parseChannels("api, whatsapp,api")).toEqual(["whatsapp", "api"])
  })

  it("rejects an empty list and unknown names", () => {
    expect(() => parseChannels("")).toThrow(ValidationError)
    expect(() => parseChannels("website,")).toThrow(/unknown channel ""/)
    expect(() => parseChannels("Website")).toThrow(/unknown channel "Website"/)
  })
})
