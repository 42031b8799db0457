/**
 * How far the demo's history is loaded. `omnimeter demo` prints its keys once the current billing periods
 * are written (what quota decisions need) and writes the older history in the background; this is what the
 * API (`GET /api/demo/history`), the dashboard's banner and the CLI say about it meanwhile. A server that
 * runs no demo keeps the state `none`.
 */

export interface DemoHistoryStatus {
  /** none: no demo history in this server; loading; loaded; failed (the error says why). */
  state: "none" | "loading" | "loaded" | "failed"
  /** Ledger rows the demo's history holds in all, and how many of them are written. */
  totalTurns: number
  loadedTurns: number
  /** The first turn of the history (the start of its first day). */
  startsAt: Date | null
  /**
   * Every demo subscription's turns from this instant on are written; figures before it are incomplete
   * while the state is loading. The broadcast's alerts and the outcomes come last.
   */
  completeSince: Date | null
  finishedAt: Date | null
  error: string | null
}

/**
 * The demo history's progress, written by the seed and read by the API.
 * @example
 * const history = new DemoHistory()
 * history.begin(193_000, start, currentPeriodsSince)
 * history.written(2_000, olderPeriodStart)
 * history.finish()
 */
export class DemoHistory {
  private current: DemoHistoryStatus = {
    state: "none",
    totalTurns: 0,
    loadedTurns: 0,
    startsAt: null,
    completeSince: null,
    finishedAt: null,
    error: null,
  }

  status(): DemoHistoryStatus {
    return { ...this.current }
  }

  /** The seed starts: `totalTurns` to write, the first beginning at `startsAt`. */
  begin(totalTurns: number, startsAt: Date): void {
    this.current = { ...this.current, state: "loading", totalTurns, loadedTurns: 0, startsAt }
  }

  /** `turns` more are written; every subscription's turns since `completeSince` are now all written. */
  written(turns: number, completeSince?: Date): void {
    this.current = {
      ...this.current,
      loadedTurns: this.current.loadedTurns + turns,
      ...(completeSince ? { completeSince } : {}),
    }
  }

  finish(at = new Date()): void {
    this.current = { ...this.current, state: "loaded", finishedAt: at }
  }

  fail(error: unknown, at = new Date()): void {
    const message = error instanceof Error ? error.message : String(error)
    this.current = { ...this.current, state: "failed", finishedAt: at, error: message }
  }
}
