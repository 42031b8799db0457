/**
 * A Kysely dialect over embedded PGlite, so one query builder serves PGlite and PostgreSQL alike.
 * (Kysely ships one from 0.29, which needs Node 22; this is the same design for the 0.28 line.)
 *
 * PGlite is a single connection. A mutex hands it to one Kysely "connection" at a time, so a transaction's
 * statements are never interleaved with another caller's.
 *
 * PGlite runs PostgreSQL synchronously on this thread, and its promises settle as microtasks: a chain of
 * awaited statements (a detector pass over every subscription, an import, the demo's seed) never gives the
 * event loop a turn, so timers, health checks and even static files waited for the whole chain (41.9 s
 * measured during a 10-minute soak, bench/RESULTS.md issue 18). {@link EventLoopSlicer} yields before a
 * statement once PGlite has held the thread for a slice without a break. A single statement still runs to
 * its end: only a worker thread would take that off the event loop.
 */
import type { PGlite } from "@electric-sql/pglite"
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
} from "kysely"

class Mutex {
  private tail: Promise<void> = Promise.resolve()
  async lock(): Promise<() => void> {
    let release: () => void = () => {}
    const next = new Promise<void>((resolve) => {
      release = resolve
    })
    const previous = this.tail
    this.tail = previous.then(() => next)
    await previous
    return release
  }
}

/**
 * Gives the event loop a turn (setImmediate) when statements have kept the thread busy for `sliceMs` since
 * it last had one. One that already had a turn (an idle server, a request arriving) costs nothing: a
 * single consume never waits.
 * @example
 * const slicer = new EventLoopSlicer(10)
 * await slicer.beforeStatement() // yields only inside a long chain of statements
 */
export class EventLoopSlicer {
  /** When the thread started its current run of statements without a turn of the event loop; 0: it had one. */
  private busySince = 0
  private readonly markTurn = () => {
    this.busySince = 0
  }

  constructor(private readonly sliceMs = 10) {}

  async beforeStatement(): Promise<void> {
    const now = performance.now()
    if (this.busySince === 0) {
      this.busySince = now
      setImmediate(this.markTurn)
    } else if (now - this.busySince >= this.sliceMs) {
      // markTurn was queued first, so it runs before this resumes; the next statement starts a new slice.
      await new Promise<void>((resolve) => setImmediate(resolve))
      this.busySince = performance.now()
      setImmediate(this.markTurn)
    }
  }
}

class PGliteConnection implements DatabaseConnection {
  private readonly slicer = new EventLoopSlicer()

  constructor(private readonly pglite: PGlite) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    await this.slicer.beforeStatement()
    if (compiled.parameters.length === 0 && compiled.sql.includes(";")) {
      // Migrations and session set-up send several statements; only the simple protocol takes them.
      const results = await this.pglite.exec(compiled.sql)
      const last = results[results.length - 1]
      return { rows: (last?.rows ?? []) as R[], numAffectedRows: BigInt(last?.affectedRows ?? 0) }
    }
    const result = await this.pglite.query<R>(compiled.sql, compiled.parameters as unknown[])
    return {
      rows: result.rows,
      ...(result.affectedRows !== undefined ? { numAffectedRows: BigInt(result.affectedRows) } : {}),
    }
  }

  // biome-ignore lint/correctness/useYield: streaming is not offered by PGlite; the generator only throws.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("PGlite does not support streaming queries")
  }
}

class PGliteDriver implements Driver {
  private readonly mutex = new Mutex()
  private readonly connection: PGliteConnection
  private release: (() => void) | undefined

  constructor(private readonly pglite: PGlite) {
    this.connection = new PGliteConnection(pglite)
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    this.release = await this.mutex.lock()
    return this.connection
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"))
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"))
  }

  async releaseConnection(): Promise<void> {
    const release = this.release
    this.release = undefined
    release?.()
  }

  async destroy(): Promise<void> {
    if (!this.pglite.closed) await this.pglite.close()
  }
}

/** Kysely over an open PGlite instance; closing the Kysely instance closes PGlite. */
export class PGliteDialect implements Dialect {
  constructor(private readonly pglite: PGlite) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter()
  }
  createDriver(): Driver {
    return new PGliteDriver(this.pglite)
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler()
  }
  // biome-ignore lint/suspicious/noExplicitAny: Kysely's own signature takes Kysely<any>.
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db)
  }
}
