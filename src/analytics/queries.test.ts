import { describe, expect, it } from "vitest"
import { dayMasks, wholeUtcDays } from "./queries.js"

describe("wholeUtcDays", () => {
  it("keeps only the UTC days entirely inside the interval", () => {
    expect(wholeUtcDays(new Date("2026-01-14T18:30:00Z"), new Date("2026-01-17T18:30:00Z"))).toEqual({
      first: new Date("2026-01-15T00:00:00Z"),
      end: new Date("2026-01-17T00:00:00Z"),
    })
    expect(wholeUtcDays(new Date("2026-01-14T18:30:00Z"), new Date("2026-01-15T18:30:00Z"))).toBeUndefined()
  })
})

describe("dayMasks", () => {
  it("sets bit d for day of year d + 1, one mask per UTC year, leap days included", () => {
    const masks = dayMasks(new Date("2028-12-30T00:00:00Z"), new Date("2029-01-02T00:00:00Z"))
    expect([...masks.keys()]).toEqual([2028, 2029])
    const late = masks.get(2028) ?? ""
    expect(late).toHaveLength(366)
    expect([...late].flatMap((bit, i) => (bit === "1" ? [i] : []))).toEqual([364, 365])
    expect(masks.get(2029)?.indexOf("1")).toBe(0)
    expect(masks.get(2029)?.lastIndexOf("1")).toBe(0)
  })
})
