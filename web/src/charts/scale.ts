/** Axis arithmetic shared by the charts: a "nice" maximum and its ticks. */

/** The tick step for an axis from 0 to about `value` in about `count` steps: 1, 2 or 5 times a power of ten. */
export function niceStep(value: number, count = 4): number {
  if (!(value > 0)) return 0.25
  const raw = value / count
  const power = 10 ** Math.floor(Math.log10(raw))
  for (const step of [1, 2, 5, 10]) if (step * power >= raw) return step * power
  return 10 * power
}

/**
 * The top of the axis: the first multiple of {@link niceStep} at or above `value` (at least 1), so that every
 * tick reads as a round number (never 62.5K).
 */
export function niceMax(value: number, count = 4): number {
  if (!(value > 0)) return 1
  const step = niceStep(value, count)
  return Math.max(1, Math.ceil(value / step - 1e-9) * step)
}

/**
 * The ticks from 0 to `max` (a {@link niceMax}): the smallest step of 1, 2 or 5 times a power of ten that
 * divides `max` into at most 6 parts, so every tick is a round number.
 */
export function ticks(max: number): number[] {
  const power = 10 ** (Math.floor(Math.log10(max > 0 ? max : 1)) - 1)
  let step = max / 4
  search: for (const scale of [1, 10, 100]) {
    for (const base of [1, 2, 5]) {
      const candidate = base * scale * power
      const parts = max / candidate
      if (parts <= 6 + 1e-9 && Math.abs(parts - Math.round(parts)) < 1e-9) {
        step = candidate
        break search
      }
    }
  }
  const out: number[] = []
  for (let i = 0; i * step <= max * (1 + 1e-9); i += 1) out.push(Number((i * step).toPrecision(12)))
  return out
}

/**
 * Indexes of at most about `wanted` labels spread evenly over `length` points, every `step`-th from the
 * first. The last point gets a label too when it is far enough from the one before; a regular label is never
 * dropped to make room for it (on a 24-hour axis, 22:00 stays).
 */
export function labelIndexes(length: number, wanted: number): number[] {
  if (length <= wanted) return Array.from({ length }, (_, i) => i)
  const step = Math.ceil(length / wanted)
  const picked: number[] = []
  for (let i = 0; i < length; i += step) picked.push(i)
  const last = picked[picked.length - 1] ?? 0
  if (last !== length - 1 && length - 1 - last >= step * 0.75) picked.push(length - 1)
  return picked
}
