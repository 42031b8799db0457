import { describe, expect, it } from "vitest"
import {
  histogramPercentiles,
  LATENCY_RELATIVE_ACCURACY,
  latencyBucket,
  latencyOfBucket,
} from "./latency-histogram.js"

const within = (estimate: number, exact: number) =>
  Math.abs(estimate - exact) <= LATENCY_RELATIVE_ACCURACY * exact + 0.5

describe("the latency histogram", () => {
  it("reads every whole millisecond up to ten million back within 1% plus half a millisecond", () => {
    for (let ms = 0; ms <= 10_000_000; ms += ms < 5000 ? 1 : 997) {
      const back = latencyOfBucket(latencyBucket(ms))
      if (!within(back, ms)) expect({ ms, back }).toBeUndefined()
      // The reading stays inside the bucket it stands for.
      expect(latencyBucket(back)).toBe(latencyBucket(ms))
    }
  })

  it("is exact below 50 ms, where each millisecond has a bucket of its own", () => {
    for (let ms = 0; ms < 50; ms += 1) expect(latencyOfBucket(latencyBucket(ms))).toBe(ms)
  })

  it("finds percentile_disc's rank (ceil(p * n)) among the buckets, within the bound", () => {
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const latencies = Array.from({ length: 997 }, () => Math.floor(next() * next() * 20_000))
    const counts = new Map<number, number>()
    for (const ms of latencies) counts.set(latencyBucket(ms), (counts.get(latencyBucket(ms)) ?? 0) + 1)
    const sorted = [...latencies].sort((a, b) => a - b)
    const fractions = [0.01, 0.5, 0.9, 0.99, 1]
    const read = histogramPercentiles([...counts], fractions)
    fractions.forEach((p, i) => {
      const exact = sorted[Math.ceil(p * sorted.length) - 1] ?? 0
      expect(within(read[i] ?? Number.NaN, exact), `p${p}: ${read[i]} vs ${exact}`).toBe(true)
    })
  })

  it("answers null for no settles", () => {
    expect(histogramPercentiles([], [0.5])).toEqual([null])
    expect(histogramPercentiles([[3, 0]], [0.5, 0.9])).toEqual([null, null])
  })
})
