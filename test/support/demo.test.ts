import { describe, expect, it } from "vitest"
import { DEMO_SUBSCRIPTIONS } from "../../src/demo/seed.js"
import { seedStillCurrent, snapshotSubscriptions } from "./demo.js"

const at = (iso: string) => new Date(iso)

describe("whether the run's demo seed still tells today's story", () => {
  it("is current within one calendar day in UTC and every demo zone", () => {
    expect(seedStillCurrent(at("2026-03-10T01:00:00Z"), at("2026-03-10T03:30:00Z"))).toBe(true)
  })

  it("is not past UTC midnight", () => {
    expect(seedStillCurrent(at("2026-03-10T23:59:00Z"), at("2026-03-11T00:01:00Z"))).toBe(false)
  })

  it("is not past midnight in a demo zone while the UTC day is unchanged", () => {
    // Asia/Kolkata (UTC+5:30) starts its day at 18:30 UTC.
    expect(DEMO_SUBSCRIPTIONS.map((d) => d.timezone)).toContain("Asia/Kolkata")
    expect(seedStillCurrent(at("2026-03-10T18:29:00Z"), at("2026-03-10T18:31:00Z"))).toBe(false)
  })
})

describe("the snapshot's subscriptions", () => {
  it("come back with their dates as dates", () => {
    const anchor = at("2026-02-01T00:00:00Z")
    const [subscription] = snapshotSubscriptions({
      path: "/nowhere",
      seededAt: anchor.toISOString(),
      subscriptions: JSON.stringify([
        { id: "s", entityId: "e", periodAnchor: anchor, createdAt: anchor, updatedAt: anchor, tokenLimit: 5 },
      ]),
    })
    expect(subscription?.periodAnchor).toEqual(anchor)
    expect(subscription?.createdAt).toBeInstanceOf(Date)
    expect(subscription?.updatedAt).toBeInstanceOf(Date)
    expect(subscription?.tokenLimit).toBe(5)
  })
})
