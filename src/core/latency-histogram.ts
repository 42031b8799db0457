/**
 * Response-time percentiles from a log-spaced histogram (issue 14), the read side of the database's
 * `omnimeter_latency_bucket` (src/storage/functions/latency_bucket.sql). Bucket 0 holds 0 ms; bucket
 * i >= 1 holds the latencies in (g^(i-2), g^(i-1)] milliseconds, g = (1 + a) / (1 - a), a = 0.01. A bucket
 * reads back as 2 g^(i-1) / (g + 1) (DDSketch's estimate, within a = 1% of every value in the bucket),
 * rounded to a whole millisecond and kept inside the bucket's whole milliseconds. So a percentile read
 * here differs from the exact one (`percentile_disc` over the raw latencies) by at most 1% of it plus
 * half a millisecond, and is exact below 50 ms, where every whole millisecond has its own bucket.
 */

/** The relative accuracy of a histogram percentile: 1%. */
export const LATENCY_RELATIVE_ACCURACY = 0.01
const GAMMA = (1 + LATENCY_RELATIVE_ACCURACY) / (1 - LATENCY_RELATIVE_ACCURACY)

/**
 * The bucket of a latency, as the database computes it (for tests and for reading a raw latency).
 * @example latencyBucket(0) // 0
 * @example latencyBucket(1) // 1
 */
export function latencyBucket(latencyMs: number): number {
  if (latencyMs <= 0) return 0
  return 1 + Math.ceil(Math.log(latencyMs) / Math.log(GAMMA))
}

/**
 * The whole milliseconds a bucket stands for: within 1% (plus rounding) of any latency in it.
 * @example latencyOfBucket(latencyBucket(1000)) // 1000 ± 10
 */
export function latencyOfBucket(bucket: number): number {
  if (bucket <= 0) return 0
  const upper = GAMMA ** (bucket - 1)
  const lower = GAMMA ** (bucket - 2)
  const estimate = Math.round((2 * upper) / (GAMMA + 1))
  // The bucket's whole milliseconds are floor(lower) + 1 .. floor(upper) (1 for bucket 1).
  const least = bucket === 1 ? 1 : Math.floor(lower) + 1
  const most = Math.max(least, Math.floor(upper))
  return Math.min(most, Math.max(least, estimate))
}

/**
 * `percentile_disc` of each fraction over a histogram: the bucket holding the ceil(p * n)-th smallest
 * latency, read back by {@link latencyOfBucket}; null for an empty histogram.
 * @example histogramPercentiles([[latencyBucket(100), 3], [latencyBucket(900), 1]], [0.5, 0.99]) // [100, 900] ± 1%
 */
export function histogramPercentiles(
  counts: ReadonlyArray<readonly [bucket: number, turns: number]>,
  fractions: readonly number[],
): Array<number | null> {
  const sorted = counts.filter(([, turns]) => turns > 0).sort(([a], [b]) => a - b)
  const total = sorted.reduce((sum, [, turns]) => sum + turns, 0)
  if (total === 0) return fractions.map(() => null)
  return fractions.map((fraction) => {
    const rank = Math.max(1, Math.ceil(fraction * total))
    let seen = 0
    for (const [bucket, turns] of sorted) {
      seen += turns
      if (seen >= rank) return latencyOfBucket(bucket)
    }
    return latencyOfBucket(sorted.at(-1)?.[0] ?? 0)
  })
}
