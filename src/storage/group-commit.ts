/**
 * Group commit: the writes that arrive together go to the database as one batch, in one statement and one
 * transaction, so they share one commit (one WAL flush) instead of each paying for its own.
 *
 * Design note. Goals, in order: (1) every caller is answered only after its own write has committed, and
 * with its own outcome; (2) one caller's failure never fails the callers batched with it; (3) no added
 * latency when the database is idle; (4) as few round trips and commits as the load allows.
 *
 * - Batching is adaptive, with no timer to tune: up to `maxInFlight` batches run at once; while they do,
 *   new submissions queue; the moment one finishes, everything queued (up to `maxBatch`) leaves as the next
 *   batch. An idle committer sends a submission at the end of the current event-loop turn (setImmediate),
 *   so what arrived in the same I/O poll travels together and a lone call waits for nothing else.
 * - Failure: a batch that throws a transient conflict (deadlock, serialization failure) is retried whole;
 *   any other error re-runs each of its items alone, so only the item that fails on its own is rejected.
 *   A batch is one transaction, so a failed attempt wrote nothing and re-running it cannot double-write.
 * - Trade-offs: under load a caller waits for the batch ahead of it (at most one batch's time), which is
 *   what buys the throughput; `maxInFlight` above 1 keeps several connections busy but batches that touch
 *   one hot row queue on its lock, so it helps spread load, not a single hot key.
 */

export interface GroupCommitOptions {
  /** Most items per batch. Default 256. */
  maxBatch?: number
  /** Most batches running at once (PGlite: 1, it has one connection). Default 4. */
  maxInFlight?: number
  /** How often a batch failing with a transient conflict is retried before it is split. Default 3. */
  conflictRetries?: number
}

interface Pending<I, O> {
  item: I
  resolve: (value: O) => void
  reject: (error: unknown) => void
}

/** SQLSTATEs that mean "nothing was written, try again": deadlock detected, serialization failure. */
const TRANSIENT = new Set(["40P01", "40001"])

function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === "string" && TRANSIENT.has(code)
}

/**
 * Collects submissions into batches run by `execute`, which must return one output per item, in order,
 * and must write all or nothing.
 *
 * @example
 * ```ts
 * const committer = new GroupCommitter((turns: BatchTurn[]) => consumeBatch(db, turns), { maxInFlight: 4 })
 * const outcome = await committer.submit(turn) // resolved after the batch holding it has committed
 * ```
 */
export class GroupCommitter<I, O> {
  private readonly maxBatch: number
  private readonly maxInFlight: number
  private readonly conflictRetries: number
  private queue: Array<Pending<I, O>> = []
  private inFlight = 0
  private scheduled = false
  private readonly idleWaiters: Array<() => void> = []

  constructor(
    private readonly execute: (items: I[]) => Promise<O[]>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256
    this.maxInFlight = options.maxInFlight ?? 4
    this.conflictRetries = options.conflictRetries ?? 3
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer (got ${this.maxBatch})`)
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1)
      throw new RangeError(`maxInFlight must be a positive integer (got ${this.maxInFlight})`)
    if (!Number.isInteger(this.conflictRetries) || this.conflictRetries < 0)
      throw new RangeError(`conflictRetries must be zero or a positive integer (got ${this.conflictRetries})`)
  }

  /** Resolves with the item's own output once the batch holding it has committed. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      this.schedule()
    })
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Items queued and batches running, for metrics and tests. */
  get pending(): { queued: number; inFlight: number } {
    return { queued: this.queue.length, inFlight: this.inFlight }
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch)
      this.inFlight += 1
      void this.run(batch).finally(() => {
        this.inFlight -= 1
        if (this.queue.length > 0) this.pump()
        else if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake()
      })
    }
  }

  private async run(batch: Array<Pending<I, O>>): Promise<void> {
    let outputs: O[] | undefined
    for (let attempt = 0; outputs === undefined; attempt += 1) {
      try {
        outputs = await this.execute(batch.map((p) => p.item))
        if (outputs.length !== batch.length)
          throw new Error(`a batch of ${batch.length} answered ${outputs.length} outputs`)
      } catch (error) {
        outputs = undefined
        if (isTransient(error) && attempt < this.conflictRetries) continue
        if (batch.length === 1) {
          batch[0]?.reject(error)
          return
        }
        // Split: each item alone, so only an item that fails by itself is rejected.
        for (const pending of batch) await this.run([pending])
        return
      }
    }
    for (const [i, pending] of batch.entries()) pending.resolve(outputs[i] as O)
  }
}
