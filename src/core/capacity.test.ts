import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  admissionThreshold,
  admitPercent,
  admits,
  DEFAULT_PRIORITY_CURVE,
  priorityCurveProblem,
  quotaLimitFor,
  shedUpToPriority,
} from "./capacity.js"

/** Any valid curve: ten sorted whole percents. */
const curves = fc
  .array(fc.integer({ min: 0, max: 100 }), { minLength: 10, maxLength: 10 })
  .map((values) => [...values].sort((a, b) => a - b))
const priorities = fc.integer({ min: 1, max: 10 })

describe("the priority curve", () => {
  it("runs by default from 50% at priority 1 to 100% at priority 10, linearly", () => {
    expect(DEFAULT_PRIORITY_CURVE).toEqual([50, 56, 61, 67, 72, 78, 83, 89, 94, 100])
    expect(priorityCurveProblem(DEFAULT_PRIORITY_CURVE)).toBeUndefined()
  })

  it("refuses a curve that gives a higher priority less than a lower one, naming both", () => {
    expect(priorityCurveProblem([50, 40, 60, 70, 80, 90, 95, 96, 97, 100])).toMatch(
      /priority 2 \(40%\).*priority 1/,
    )
  })

  it("refuses a curve of the wrong length or with a percent outside 0-100", () => {
    expect(priorityCurveProblem([50, 100])).toMatch(/10 percents/)
    expect(priorityCurveProblem([50, 56, 61, 67, 72, 78, 83, 89, 94, 101])).toMatch(/priority 10/)
    expect(priorityCurveProblem([-1, 56, 61, 67, 72, 78, 83, 89, 94, 100])).toMatch(/priority 1/)
  })

  it("lets priority 10 fill the whole capacity and priority 1 half of it", () => {
    expect(admissionThreshold(1000, admitPercent(10))).toBe(1000)
    expect(admissionThreshold(1000, admitPercent(1))).toBe(500)
    expect(admits({ capacity: 1000, used: 499, amount: 1, priority: 1 })).toBe(true)
    expect(admits({ capacity: 1000, used: 500, amount: 1, priority: 1 })).toBe(false)
    expect(admits({ capacity: 1000, used: 999, amount: 1, priority: 10 })).toBe(true)
    expect(admits({ capacity: 1000, used: 1000, amount: 1, priority: 10 })).toBe(false)
  })
})

describe("priority-aware admission", () => {
  it("never sheds a higher priority where it admits a lower one, at any utilisation and on any valid curve", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000_000 }),
        fc.integer({ min: 0, max: 1_000_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        priorities,
        priorities,
        fc.option(curves, { nil: null }),
        (capacity, used, amount, a, b, curve) => {
          const [low, high] = a <= b ? [a, b] : [b, a]
          const lowAdmitted = admits({ capacity, used, amount, priority: low, curve })
          const highAdmitted = admits({ capacity, used, amount, priority: high, curve })
          // Admitting the lower priority implies admitting the higher one.
          expect(!lowAdmitted || highAdmitted).toBe(true)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it("never admits past the capacity, whatever the priority", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        priorities,
        fc.option(curves, { nil: null }),
        (capacity, used, amount, priority, curve) => {
          if (admits({ capacity, used, amount, priority, curve }))
            expect(used + amount).toBeLessThanOrEqual(capacity)
        },
      ),
    )
  })

  it("names the highest priority being shed: every priority at or below it is refused, every one above admitted", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.option(curves, { nil: null }),
        (capacity, used, amount, curve) => {
          const shed = shedUpToPriority({ capacity, used, amount, curve })
          for (let priority = 1; priority <= 10; priority += 1)
            expect(admits({ capacity, used, amount, priority, curve })).toBe(priority > shed)
        },
      ),
    )
  })
})

describe("the quota reserve", () => {
  it("keeps the last percent of the limit for the reserve's priority and above", () => {
    const reserve = { percent: 10, minPriority: 8 }
    expect(quotaLimitFor(10_000, reserve, 7)).toBe(9000)
    expect(quotaLimitFor(10_000, reserve, 8)).toBe(10_000)
    expect(quotaLimitFor(10_001, reserve, 1)).toBe(9001)
    expect(quotaLimitFor(10_000, { percent: 0, minPriority: 8 }, 1)).toBe(10_000)
  })

  it("never gives a lower priority more of the quota than a higher one", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e15 }),
        fc.integer({ min: 0, max: 50 }),
        priorities,
        priorities,
        priorities,
        (limit, percent, minPriority, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a]
          const reserve = { percent, minPriority }
          expect(quotaLimitFor(limit, reserve, low)).toBeLessThanOrEqual(quotaLimitFor(limit, reserve, high))
          expect(quotaLimitFor(limit, reserve, low)).toBeGreaterThanOrEqual(Math.ceil(limit / 2))
        },
      ),
    )
  })
})
