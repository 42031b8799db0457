/** Axis arithmetic shared by the charts: a "nice" maximum and its ticks. */

/** The smallest of 1, 2, 2.5, 5 x 10^n at or above `value` (at least 1). */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power
  return 10 * power
}

/** `count + 1` evenly spaced ticks from 0 to `max`. */
export function ticks(max: number, count = 4): number[] {
  return Array.from({ length: count + 1 }, (_, i) => (max * i) / count)
}

/** Indexes of at most `wanted` labels spread over `length` points, always including the last. */
export function labelIndexes(length: number, wanted: number): number[] {
  if (length <= wanted) return Array.from({ length }, (_, i) => i)
  const step = Math.ceil(length / wanted)
  const picked: number[] = []
  for (let i = 0; i < length; i += step) picked.push(i)
  if (picked[picked.length - 1] !== length - 1) {
    // Too close to the last label to share the axis with it: give way.
    if (length - 1 - (picked[picked.length - 1] ?? 0) < step * 0.75) picked.pop()
    picked.push(length - 1)
  }
  return picked
}
