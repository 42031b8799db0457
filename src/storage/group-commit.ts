/**
 * Group commit: the writes that arrive together go to the database as one batch, in one statement and one
 * transaction, so they share one commit (one WAL flush) instead of each paying for its own.
 *
 * Design note. Goals, in order: (1) every caller is answered only after its own write has committed, and
 * with its own outcome; (2) one caller's failure never fails the callers batched with it; (3) no added
 * latency when the database is idle; (4) as few round trips and commits as the load allows.
 *
 * - Lanes: `maxInFlight` lanes, each with its own queue and at most one batch in flight. `laneOf` puts
 *   an item in a lane; the meter uses the subscription, so two batches in flight never touch the same
 *   quota counter row: they never wait for each other's row locks and cannot deadlock on them. (A first
 *   version shared one queue across four in-flight batches; with 100 subscriptions nearly every pair of
 *   batches shared a counter row, and the row locks serialised them: measured 14 decisions per batch at
 *   54 ms per statement.) One hot subscription therefore uses one lane, and its batches simply grow.
 * - Batching is adaptive, with no timer to tune: while a lane's batch runs, new submissions queue; the
 *   moment it finishes, everything queued (up to `maxBatch`) leaves as the next batch. An idle lane sends
 *   at the end of the current event-loop turn (setImmediate), so what arrived in the same I/O poll
 *   travels together and a lone call waits for nothing else.
 * - Failure: a batch that throws a transient conflict (deadlock, serialization failure) is retried whole;
 *   an error the database reported re-runs each of its items alone, so only the item that fails on its
 *   own is rejected. A batch is one transaction and the database answered, so it wrote nothing and
 *   re-running it cannot double-write.
 * - Commit-unknown: when the connection dies while a batch runs (`unknownOutcome.isUnknown`), its
 *   transaction may or may not have committed: the reply to COMMIT can be lost after the commit. Such a
 *   batch is never re-run blind. Each item carries an id assigned before its first run; after the
 *   reconnect, `lookup` reads which items have rows. An item with a row is answered from that row (its
 *   decision, as committed). An item without one was not written (the batch rolled back, or it committed
 *   and this item wrote nothing, e.g. a duplicate): it is re-run, with the same id, and the re-run
 *   decides it afresh. A re-run that meets its own first run still in flight (the server had not yet seen
 *   the lost connection) collides on the pre-assigned id and is looked up again. Until `lookup` succeeds
 *   (at most `deadlineMs`), the callers wait; after that they get `unresolved(error)`, never a guess.
 * - Trade-offs: under load a caller waits for the batch ahead of it in its lane (at most one batch's
 *   time), which is what buys the throughput; a lane's batch is sequential, so one hot subscription is
 *   bounded by one connection's statement rate (times the batch size).
 */

/** The defaults of {@link GroupCommitOptions}. */
export const GROUP_COMMIT_DEFAULTS = Object.freeze({ maxBatch: 256, maxInFlight: 4 })

export interface GroupCommitOptions<I = unknown, O = unknown> {
  /** Most items per batch. Default 256. */
  maxBatch?: number
  /** Lanes, i.e. most batches in flight at once (PGlite: 1, it has one connection). Default 4. */
  maxInFlight?: number
  /** Which lane an item goes to (any integer; taken modulo the lanes). Default: round robin. */
  laneOf?: (item: I) => number
  /** How often a batch failing with a transient conflict is retried before it is split. Default 3. */
  conflictRetries?: number
  /** Called after each batch statement (also failed ones) with its size and duration, for metrics. */
  onBatch?: (size: number, seconds: number) => void
  /** How to resolve a batch whose outcome is unknown (see the design note); without it, such a batch is split. */
  unknownOutcome?: UnknownOutcomePolicy<I, O>
}

/** Resolution of a batch whose transaction may or may not have committed. */
export interface UnknownOutcomePolicy<I, O> {
  /** Whether this failure leaves the batch's outcome unknown (the connection died, or a re-run met its first run). */
  isUnknown: (error: unknown) => boolean
  /**
   * For each item, its output as committed, or undefined when nothing of it was written. Throws while the
   * database cannot be read; it is called again with backoff until `deadlineMs`.
   */
  lookup: (items: I[]) => Promise<Array<O | undefined>>
  /** The error for a caller whose item is still unresolved at the deadline; `written` says what is known. */
  unresolved: (error: unknown, written: "unknown" | "no") => unknown
  /** How long callers wait for the lookup. Default 3000 ms. */
  deadlineMs?: number
}

interface Pending<I, O> {
  item: I
  resolve: (value: O) => void
  reject: (error: unknown) => void
}

interface Lane<I, O> {
  queue: Array<Pending<I, O>>
  busy: boolean
  scheduled: boolean
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
 * const committer = new GroupCommitter((turns: BatchTurn[]) => consumeBatch(db, turns), {
 *   maxInFlight: 4,
 *   laneOf: (turn) => Number.parseInt(turn.subscriptionId.slice(0, 8), 16),
 * })
 * const outcome = await committer.submit(turn) // resolved after the batch holding it has committed
 * ```
 */
export class GroupCommitter<I, O> {
  private readonly maxBatch: number
  private readonly conflictRetries: number
  private readonly laneOf: (item: I) => number
  private readonly onBatch: ((size: number, seconds: number) => void) | undefined
  private readonly unknownOutcome: UnknownOutcomePolicy<I, O> | undefined
  private readonly lanes: Array<Lane<I, O>>
  private nextLane = 0
  private readonly idleWaiters: Array<() => void> = []

  constructor(
    private readonly execute: (items: I[]) => Promise<O[]>,
    options: GroupCommitOptions<I, O> = {},
  ) {
    this.maxBatch = options.maxBatch ?? GROUP_COMMIT_DEFAULTS.maxBatch
    const maxInFlight = options.maxInFlight ?? GROUP_COMMIT_DEFAULTS.maxInFlight
    this.conflictRetries = options.conflictRetries ?? 3
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer (got ${this.maxBatch})`)
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new RangeError(`maxInFlight must be a positive integer (got ${maxInFlight})`)
    if (!Number.isInteger(this.conflictRetries) || this.conflictRetries < 0)
      throw new RangeError(`conflictRetries must be zero or a positive integer (got ${this.conflictRetries})`)
    this.lanes = Array.from({ length: maxInFlight }, () => ({ queue: [], busy: false, scheduled: false }))
    this.laneOf = options.laneOf ?? (() => this.nextLane++)
    this.onBatch = options.onBatch
    this.unknownOutcome = options.unknownOutcome
  }

  /** Resolves with the item's own output once the batch holding it has committed. */
  submit(item: I): Promise<O> {
    const index = Math.abs(Math.trunc(this.laneOf(item))) % this.lanes.length
    const lane = this.lanes[Number.isFinite(index) ? index : 0] ?? this.lanes[0]
    return new Promise<O>((resolve, reject) => {
      if (!lane) return reject(new Error("no lane"))
      lane.queue.push({ item, resolve, reject })
      if (!lane.busy && !lane.scheduled) {
        lane.scheduled = true
        setImmediate(() => {
          lane.scheduled = false
          this.pump(lane)
        })
      }
    })
  }

  /** Resolves once nothing is queued or running. */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Items queued and batches running, for metrics and tests. */
  get pending(): { queued: number; inFlight: number } {
    return {
      queued: this.lanes.reduce((sum, lane) => sum + lane.queue.length, 0),
      inFlight: this.lanes.filter((lane) => lane.busy).length,
    }
  }

  private idle(): boolean {
    return this.lanes.every((lane) => !lane.busy && lane.queue.length === 0)
  }

  private pump(lane: Lane<I, O>): void {
    if (lane.busy || lane.queue.length === 0) return
    const batch = lane.queue.splice(0, this.maxBatch)
    lane.busy = true
    void this.run(batch).finally(() => {
      lane.busy = false
      if (lane.queue.length > 0) this.pump(lane)
      else if (this.idle()) for (const wake of this.idleWaiters.splice(0)) wake()
    })
  }

  private async run(batch: Array<Pending<I, O>>): Promise<void> {
    let outputs: O[] | undefined
    for (let attempt = 0; outputs === undefined; attempt += 1) {
      const started = performance.now()
      try {
        outputs = await this.execute(batch.map((p) => p.item))
        this.observe(batch.length, started)
        if (outputs.length !== batch.length)
          throw new Error(`a batch of ${batch.length} answered ${outputs.length} outputs`)
      } catch (error) {
        this.observe(batch.length, started)
        outputs = undefined
        if (isTransient(error) && attempt < this.conflictRetries) continue
        if (this.unknownOutcome?.isUnknown(error))
          return this.resolveUnknown(this.unknownOutcome, batch, error)
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

  /** Answers every item of a batch whose outcome is unknown by looking, then re-runs what was not written. */
  private async resolveUnknown(
    policy: UnknownOutcomePolicy<I, O>,
    batch: Array<Pending<I, O>>,
    error: unknown,
  ): Promise<void> {
    const deadline = performance.now() + (policy.deadlineMs ?? 3000)
    let pending = batch
    let lastError = error
    let delay = 25
    for (let rerun = 0; pending.length > 0; ) {
      let found: Array<O | undefined>
      try {
        found = await policy.lookup(pending.map((p) => p.item))
      } catch (lookupError) {
        if (policy.isUnknown(lookupError) && performance.now() + delay < deadline) {
          await new Promise((resolve) => setTimeout(resolve, delay))
          delay = Math.min(delay * 2, 400)
          continue
        }
        for (const p of pending) p.reject(policy.unresolved(lastError, "unknown"))
        return
      }
      const notWritten: Array<Pending<I, O>> = []
      for (const [i, p] of pending.entries()) {
        const output = found[i]
        if (output === undefined) notWritten.push(p)
        else p.resolve(output)
      }
      pending = notWritten
      if (pending.length === 0) return
      if (rerun >= this.conflictRetries || performance.now() >= deadline) {
        for (const p of pending) p.reject(policy.unresolved(lastError, "no"))
        return
      }
      // Nothing of these was written: run them again, as they are (same ids).
      rerun += 1
      const started = performance.now()
      try {
        const outputs = await this.execute(pending.map((p) => p.item))
        this.observe(pending.length, started)
        if (outputs.length !== pending.length)
          throw new Error(`a batch of ${pending.length} answered ${outputs.length} outputs`)
        for (const [i, p] of pending.entries()) p.resolve(outputs[i] as O)
        return
      } catch (rerunError) {
        this.observe(pending.length, started)
        lastError = rerunError
        if (policy.isUnknown(rerunError) || isTransient(rerunError)) continue
        // The database answered with an error of its own: nothing was written; find the item to blame.
        for (const p of pending) await this.run([p])
        return
      }
    }
  }

  private observe(size: number, started: number): void {
    try {
      this.onBatch?.(size, (performance.now() - started) / 1000)
    } catch {
      // A broken metrics hook must not fail a committed batch.
    }
  }
}
