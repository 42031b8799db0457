/** The source of "now". Real code uses {@link systemClock}; tests pass a {@link ManualClock}. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() })

/** A clock that only moves when told to. */
export class ManualClock implements Clock {
  constructor(private current: number = Date.parse("2026-01-15T12:00:00Z")) {}
  now(): number {
    return this.current
  }
  set(at: Date | number): void {
    this.current = typeof at === "number" ? at : at.getTime()
  }
  advance(ms: number): void {
    this.current += ms
  }
}
