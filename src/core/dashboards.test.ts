import { describe, expect, it } from "vitest"
import { PERIOD_PRESETS, presetDays, WIDGET_CATALOG, WIDGET_KINDS, widgetProblem } from "./dashboards.js"
import { daysBetweenInclusive } from "./time-zones.js"

describe("period presets", () => {
  it("cover the last N complete days, ending yesterday", () => {
    expect(presetDays("last_7_days", "2026-03-10")).toEqual({ from: "2026-03-03", to: "2026-03-09" })
    expect(presetDays("last_30_days", "2026-03-01")).toEqual({ from: "2026-01-30", to: "2026-02-28" })
  })

  it("cover exactly as many days as their name says, across a year end and a leap day", () => {
    for (const today of ["2026-01-01", "2024-03-01", "2026-07-15"] as const) {
      for (const preset of PERIOD_PRESETS) {
        const { from, to } = presetDays(preset, today)
        expect(daysBetweenInclusive(from, to)).toBe(Number(/\d+/.exec(preset)?.[0]))
        expect(to < today).toBe(true)
      }
    }
  })
})

describe("widget rules beyond the schema", () => {
  it("accepts every kind with the channels it needs", () => {
    const widgets = WIDGET_KINDS.map((kind) =>
      WIDGET_CATALOG[kind].oneChannel ? { kind, channels: ["api" as const] } : { kind },
    )
    expect(widgetProblem(widgets)).toBeNull()
  })

  it("names the first widget whose channels cannot be drawn", () => {
    expect(widgetProblem([{ kind: "totals" }, { kind: "channel_trend", channels: [] }])).toEqual([
      "widgets.1.channels",
      "a channel_trend widget shows exactly one channel: name one",
    ])
    expect(widgetProblem([{ kind: "hourly_distribution", channels: ["api", "website"] }])?.[0]).toBe(
      "widgets.0.channels",
    )
    expect(widgetProblem([{ kind: "totals", channels: ["api", "api"] }])).toEqual([
      "widgets.0.channels",
      "names a channel twice",
    ])
    expect(widgetProblem([{ kind: "quota", channels: ["api"] }])?.[0]).toBe("widgets.0.channels")
  })
})
