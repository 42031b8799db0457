/**
 * The session tables after the commit (migration 0024): on PostgreSQL a consume queues its allowed turns in
 * session_queue (omnimeter_write_turns) instead of deriving ledger_sessions, session_spans, session_edges,
 * outcome_touches, journey_sessions and journey_gap_sessions in its transaction; omnimeter_sessions_derive
 * applies the queue with the ledger triggers' own functions. Every reader of those tables calls
 * {@link deriveSessions} for its subscription first, so an answer given after a consume returned includes
 * that turn; {@link SessionDeriveJob} keeps the queue short in the background.
 *
 * The embedded database derives them in the consume statement instead (migration 0026: its one connection
 * would run the deriver between two consumes anyway): nothing is queued there, the readers' probe finds
 * nothing, the job does not run, and {@link drainSessionQueue} applies at open what an older version left.
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

const TURNS_PER_STATEMENT = 500
const SUBSCRIPTIONS_PER_PASS = 100

/**
 * One pass over the queue: per subscription with queued turns (at most `subscriptionsPerPass`), statements
 * of at most `turnsPerStatement` turns, each its own transaction. Resolves with the turns derived.
 */
async function derivePass(db: Kysely<DB>, turnsPerStatement: number, subscriptionsPerPass: number) {
  const queued = await sql<{ subscription_id: string }>`
    select distinct subscription_id from session_queue limit ${subscriptionsPerPass}`.execute(db)
  let derived = 0
  for (const { subscription_id } of queued.rows) {
    for (;;) {
      const result = await sql<{ taken: number }>`
        select omnimeter_sessions_derive(${subscription_id}::uuid, ${turnsPerStatement}::int) as taken`.execute(
        db,
      )
      const taken = Number(result.rows[0]?.taken ?? 0)
      derived += taken
      if (taken < turnsPerStatement) break
    }
  }
  return derived
}

/**
 * Applies the whole queue, in the job's short statements (or `turnsPerStatement` turns each); resolves with
 * the turns derived. The embedded database calls it when it opens, for what a version before migration
 * 0026 left queued (one probe of an empty table otherwise); the demo, for the turns its first statements
 * queued.
 * A long queue wants longer statements: each one re-reads the sessions its turns belong to, so a
 * subscription's 30,000 turns cost 2.5 times as much in statements of 500 as in statements of 5,000
 * (bench/RESULTS.md, issue 18).
 * @example
 * await drainSessionQueue(db)
 */
export async function drainSessionQueue(
  db: Kysely<DB>,
  turnsPerStatement = TURNS_PER_STATEMENT,
): Promise<number> {
  let derived = 0
  for (;;) {
    const taken = await derivePass(db, turnsPerStatement, SUBSCRIPTIONS_PER_PASS)
    if (taken === 0) return derived
    derived += taken
  }
}

/**
 * Drains the session queue a few times a second: per subscription with queued turns, statements of at most
 * `turnsPerStatement` turns, each its own transaction. Its first pass runs at start-up, which drains what a
 * crash left queued. On a database that does not queue sessions (`capabilities.queuesSessions`: the
 * embedded one, which drained its queue when it opened) `start` starts nothing; `runOnce` still derives.
 */
export class SessionDeriveJob extends PeriodicJob {
  constructor(private readonly options: SessionDeriveOptions) {
    super(options.intervalMs ?? 250, 0)
  }

  override start(onError?: (error: unknown) => void): void {
    if (this.options.database.capabilities.queuesSessions) super.start(onError)
  }

  /** One pass; resolves with the number of turns derived. */
  runOnce(): Promise<number> {
    return derivePass(
      this.options.database.db,
      this.options.turnsPerStatement ?? TURNS_PER_STATEMENT,
      this.options.subscriptionsPerPass ?? SUBSCRIPTIONS_PER_PASS,
    )
  }
}
