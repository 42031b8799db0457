/**
 * The session tables after the commit (migration 0024): a consume queues its allowed turns in session_queue
 * (omnimeter_write_turns) instead of deriving ledger_sessions, session_spans, session_edges,
 * outcome_touches, journey_sessions and journey_gap_sessions in its transaction; omnimeter_sessions_derive
 * applies the queue with the ledger triggers' own functions. Every reader of those tables calls
 * {@link deriveSessions} for its subscription first, so an answer given after a consume returned includes
 * that turn; {@link SessionDeriveJob} keeps the queue short in the background.
 */
import { type Kysely, sql } from "kysely"
import { PeriodicJob } from "../background.js"
import type { Database } from "./database.js"
import type { DB } from "./schema.js"

/**
 * Applies every queued turn of one subscription (waiting for a deriver already applying some), before a
 * read of its session tables. Cheap when nothing is queued: one index probe. Resolves with the turns taken.
 * @example
 * await deriveSessions(db, subscriptionId)
 * const figures = await rollupFigures(db, range)
 */
export async function deriveSessions(db: Kysely<DB>, subscriptionId: string): Promise<number> {
  const result = await sql<{ taken: number }>`
    select omnimeter_sessions_derive(${subscriptionId}::uuid, null) as taken`.execute(db)
  return Number(result.rows[0]?.taken ?? 0)
}

export interface SessionDeriveOptions {
  database: Database
  /** Pause between passes (default 250 ms). */
  intervalMs?: number
  /** Turns applied per statement (default 500): short statements, so the embedded database's one connection serves requests between them. */
  turnsPerStatement?: number
  /** Subscriptions per pass (default 100). */
  subscriptionsPerPass?: number
}

/**
 * Drains the session queue a few times a second: per subscription with queued turns, statements of at most
 * `turnsPerStatement` turns, each its own transaction. Its first pass runs at start-up, which drains what a
 * crash left queued.
 */
export class SessionDeriveJob extends PeriodicJob {
  constructor(private readonly options: SessionDeriveOptions) {
    super(options.intervalMs ?? 250, 0)
  }

  /** One pass; resolves with the number of turns derived. */
  async runOnce(): Promise<number> {
    const db = this.options.database.db
    const limit = this.options.turnsPerStatement ?? 500
    const queued = await sql<{ subscription_id: string }>`
      select distinct subscription_id from session_queue
      limit ${this.options.subscriptionsPerPass ?? 100}`.execute(db)
    let derived = 0
    for (const { subscription_id } of queued.rows) {
      for (;;) {
        const result = await sql<{ taken: number }>`
          select omnimeter_sessions_derive(${subscription_id}::uuid, ${limit}::int) as taken`.execute(db)
        const taken = Number(result.rows[0]?.taken ?? 0)
        derived += taken
        if (taken < limit) break
      }
    }
    return derived
  }
}
