import { describe, expect, it } from "vitest"
import { billingPeriodAt } from "./period.js"

const d = (iso: string) => new Date(iso)

describe("billing periods", () => {
  it("runs from the anchor to the same time one month later", () => {
    const period = billingPeriodAt(d("2026-03-10T08:30:00Z"), d("2026-03-20T00:00:00Z"))
    expect(period).toEqual({ start: d("2026-03-10T08:30:00Z"), end: d("2026-04-10T08:30:00Z") })
  })

  it("starts the next period exactly at the boundary", () => {
    const anchor = d("2026-03-10T08:30:00Z")
    expect(billingPeriodAt(anchor, d("2026-04-10T08:29:59.999Z")).start).toEqual(anchor)
    expect(billingPeriodAt(anchor, d("2026-04-10T08:30:00Z")).start).toEqual(d("2026-04-10T08:30:00Z"))
  })

  it("clamps a 31st anchor to short months and returns to the 31st after", () => {
    const anchor = d("2026-01-31T00:00:00Z")
    expect(billingPeriodAt(anchor, d("2026-02-15T00:00:00Z"))).toEqual({
      start: d("2026-01-31T00:00:00Z"),
      end: d("2026-02-28T00:00:00Z"),
    })
    expect(billingPeriodAt(anchor, d("2026-03-01T00:00:00Z"))).toEqual({
      start: d("2026-02-28T00:00:00Z"),
      end: d("2026-03-31T00:00:00Z"),
    })
    expect(billingPeriodAt(anchor, d("2028-02-29T12:00:00Z")).start).toEqual(d("2028-02-29T00:00:00Z"))
  })

  it("crosses year ends and reaches back before the anchor", () => {
    const anchor = d("2025-11-15T00:00:00Z")
    expect(billingPeriodAt(anchor, d("2026-01-20T00:00:00Z")).start).toEqual(d("2026-01-15T00:00:00Z"))
    expect(billingPeriodAt(anchor, d("2025-10-01T00:00:00Z")).start).toEqual(d("2025-09-15T00:00:00Z"))
  })

  it("always contains the instant it was asked about, over four years of days", () => {
    const anchor = d("2024-01-31T23:59:59Z")
    for (
      let t = Date.parse("2023-12-01T00:00:00Z");
      t < Date.parse("2028-01-01T00:00:00Z");
      t += 86_400_000 / 3
    ) {
      const { start, end } = billingPeriodAt(anchor, new Date(t))
      expect(start.getTime()).toBeLessThanOrEqual(t)
      expect(end.getTime()).toBeGreaterThan(t)
      expect(billingPeriodAt(anchor, end).start).toEqual(end)
    }
  })
})
