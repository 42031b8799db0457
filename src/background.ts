/**
 * Background jobs the server runs beside the HTTP service (webhook delivery, alert detectors, ledger
 * maintenance): each can run one pass on demand, which is how tests drive them with a manual clock, or loop
 * until stopped.
 */

/** A background job: one pass on demand, or a loop. */
export interface BackgroundJob {
  /** One pass; resolves with how much work it did. */
  runOnce(): Promise<number>
  /** Runs passes until stopped; a failing pass is reported to `onError` and the loop goes on. */
  start(onError?: (error: unknown) => void): void
  stop(): Promise<void>
}

/**
 * A job whose passes run one at a time, `intervalMs` apart (from the end of one pass to the start of the
 * next), the first after `firstDelayMs`. `stop` waits for the pass in progress.
 * @example
 * class Cleanup extends PeriodicJob {
 *   constructor() { super(60_000) }
 *   async runOnce() { return 0 }
 * }
 */
/** A job's timer never keeps the process alive by itself (a library's host decides when it exits). */
function unrefed(timer: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  timer.unref?.()
  return timer
}

export abstract class PeriodicJob implements BackgroundJob {
  private timer: ReturnType<typeof setTimeout> | undefined
  private running: Promise<unknown> | undefined
  private stopped = true

  protected constructor(
    private readonly intervalMs: number,
    private readonly firstDelayMs = intervalMs,
  ) {}

  abstract runOnce(): Promise<number>

  start(onError?: (error: unknown) => void): void {
    if (!this.stopped) return
    this.stopped = false
    const tick = () => {
      this.running = this.runOnce()
        .catch((error: unknown) => onError?.(error))
        .finally(() => {
          if (!this.stopped) this.timer = unrefed(setTimeout(tick, this.intervalMs))
        })
    }
    this.timer = unrefed(setTimeout(tick, this.firstDelayMs))
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    await this.running
  }
}
