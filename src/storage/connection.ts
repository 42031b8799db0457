/**
 * Connection faults of PostgreSQL, in one place: which errors mean "the database is unavailable", and a
 * pool that survives them.
 *
 * Design note. Goals, in order: (1) a lost connection never ends the process; (2) every caller whose call
 * failed because of it gets the typed, retryable {@link DatabaseUnavailableError}, never a bare driver
 * error; (3) the service heals by itself, well within 2 s of the database being back; (4) while the
 * database is away, calls fail at once instead of queueing on a dead server.
 *
 * - `pg` emits "error" on a client whose connection dies. pg-pool listens on idle clients only; a client
 *   checked out by a query or a transaction had no listener, and an unhandled "error" event ends Node.
 *   {@link GuardedPool} gives every client a listener for its whole life, from its "connect".
 * - The first connection loss marks the database down, and a probe (`select 1` on a fresh connection)
 *   retries with exponential backoff from 50 ms, capped at 400 ms, so recovery is seen at most ~0.5 s
 *   after the server accepts connections again. While down, `connect` throws at once (fail fast). A
 *   client whose connection died is released with its error, which makes the pool discard it: Kysely
 *   does not release a connection whose set-up statement failed, and the pool would otherwise leak it.
 * - PGlite runs in the process and cannot lose its connection; it never produces this error.
 */
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely"
import type pg from "pg"
import { DatabaseUnavailableError } from "../core/errors.js"

/** Node socket errors and SQLSTATEs that mean the connection is gone or the server is not accepting. */
const CONNECTION_LOSS_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "57P01", // admin_shutdown: pg_ctl stop/restart -m fast, pg_terminate_backend
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up, shutting down, in recovery
  "57P05", // idle_session_timeout
  "53300", // too_many_connections
])

/** The messages of `pg` and pg-pool for a dead or unusable connection (they carry no code). */
const CONNECTION_LOSS_MESSAGE =
  /connection terminated|connection ended|client has encountered a connection error|not queryable|timeout exceeded when trying to connect|terminating connection/i

/** pg-pool's message when no connection could be had within `connectionTimeoutMillis`. */
const POOL_TIMEOUT = /timeout exceeded when trying to connect/i

/**
 * Whether `error` means the database is unreachable (retryable) rather than that the statement is wrong.
 * SQLSTATE class 08 (connection exception) counts whole.
 * @example
 * isConnectionLoss(Object.assign(new Error("terminating connection"), { code: "57P01" })) // true
 * isConnectionLoss(Object.assign(new Error("duplicate key"), { code: "23505" })) // false
 */
export function isConnectionLoss(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true
  if (typeof error !== "object" || error === null) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === "string" && (CONNECTION_LOSS_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)))
    return true
  const message = (error as { message?: unknown }).message
  return typeof message === "string" && CONNECTION_LOSS_MESSAGE.test(message)
}

/** The database's availability as this process last saw it. */
export interface DatabaseAvailability {
  available: boolean
  /** While unavailable: since when, and the last error seen. */
  since?: Date
  error?: string
}

export interface GuardedPoolOptions {
  /** First probe delay after a connection loss. Default 50 ms. */
  probeInitialMs?: number
  /** Probe delay cap. Default 400 ms. */
  probeMaxMs?: number
  /** Seconds a caller is told to wait (`Retry-After`). Default 1. */
  retryAfterSeconds?: number
  /** Called on every change of availability, with the reason. */
  onAvailabilityChange?: (availability: DatabaseAvailability) => void
}

/**
 * A pg.Pool for Kysely's PostgresDialect that handles every client's "error" event, turns connection
 * failures into {@link DatabaseUnavailableError}, and fails fast while a probe waits for the server.
 *
 * @example
 * const pool = new GuardedPool(new pg.Pool({ connectionString }))
 * const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
 * pool.availability() // { available: true }
 */
export class GuardedPool implements PostgresPool {
  private down: { since: Date; error: string } | undefined
  private probing = false
  private closed = false
  private probeTimer: NodeJS.Timeout | undefined
  private readonly clients = new WeakMap<pg.PoolClient, GuardedClient>()
  private readonly probeInitialMs: number
  private readonly probeMaxMs: number
  readonly retryAfterSeconds: number
  private readonly onAvailabilityChange: ((availability: DatabaseAvailability) => void) | undefined

  constructor(
    private readonly pool: pg.Pool,
    options: GuardedPoolOptions = {},
  ) {
    this.probeInitialMs = options.probeInitialMs ?? 50
    this.probeMaxMs = options.probeMaxMs ?? 400
    this.retryAfterSeconds = options.retryAfterSeconds ?? 1
    this.onAvailabilityChange = options.onAvailabilityChange
    // Idle clients: pg-pool discards them itself; this only notes the loss.
    pool.on("error", (error) => this.noteFailure(error))
    // Every client, for its whole life (checked out too): without a listener the event would end the process.
    pool.on("connect", (client) => client.on("error", (error) => this.noteFailure(error)))
  }

  availability(): DatabaseAvailability {
    return this.down
      ? { available: false, since: this.down.since, error: this.down.error }
      : { available: true }
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.down) {
      this.startProbe()
      throw this.unavailable(
        `the database is unavailable since ${this.down.since.toISOString()} (${this.down.error})`,
      )
    }
    let client: pg.PoolClient
    try {
      client = await this.pool.connect()
    } catch (error) {
      throw this.translate(error)
    }
    // One wrapper per connection for its whole life: Kysely recognises a connection by this object and
    // runs its set-up statement only the first time it sees it.
    let guarded = this.clients.get(client)
    if (!guarded) {
      guarded = new GuardedClient(client, this)
      this.clients.set(client, guarded)
    }
    guarded.released = false
    return guarded
  }

  async end(): Promise<void> {
    this.closed = true
    if (this.probeTimer) clearTimeout(this.probeTimer)
    await this.pool.end()
  }

  /** The error a caller sees: connection losses become {@link DatabaseUnavailableError}, others pass. */
  translate(error: unknown): unknown {
    if (error instanceof DatabaseUnavailableError) return error
    if (!isConnectionLoss(error)) return error
    // pg-pool's connect timeout also fires when every connection is busy: that caller is told to retry,
    // but a saturated pool is not a lost database, so it does not switch the instance to fail-fast.
    if (!POOL_TIMEOUT.test(error instanceof Error ? error.message : "")) this.noteFailure(error)
    const reason = error instanceof Error ? error.message : String(error)
    return this.unavailable(`the database connection was lost (${reason})`, error)
  }

  private unavailable(message: string, cause?: unknown): DatabaseUnavailableError {
    return new DatabaseUnavailableError(
      `The database is unavailable; retry in ${this.retryAfterSeconds} s: ${message}`,
      this.retryAfterSeconds,
      undefined,
      cause === undefined ? undefined : { cause },
    )
  }

  private noteFailure(error: unknown): void {
    if (!isConnectionLoss(error) || this.closed) return
    if (POOL_TIMEOUT.test(error instanceof Error ? error.message : "")) return
    const message = error instanceof Error ? error.message : String(error)
    if (this.down) {
      this.down.error = message
    } else {
      this.down = { since: new Date(), error: message }
      this.notify()
    }
    this.startProbe()
  }

  private startProbe(): void {
    if (this.probing || this.closed) return
    this.probing = true
    let delay = this.probeInitialMs
    const attempt = () => {
      this.probeTimer = undefined
      if (this.closed || !this.down) {
        this.probing = false
        return
      }
      this.pool.query("select 1").then(
        () => {
          this.probing = false
          this.down = undefined
          this.notify()
        },
        (error: unknown) => {
          if (this.down) this.down.error = error instanceof Error ? error.message : String(error)
          delay = Math.min(delay * 2, this.probeMaxMs)
          this.probeTimer = setTimeout(attempt, delay)
          this.probeTimer.unref()
        },
      )
    }
    this.probeTimer = setTimeout(attempt, delay)
    this.probeTimer.unref()
  }

  private notify(): void {
    try {
      this.onAvailabilityChange?.(this.availability())
    } catch {
      // A broken observer must not break the pool.
    }
  }
}

/** A checked-out client whose failures are translated, and which is discarded once its connection died. */
class GuardedClient implements PostgresPoolClient {
  released = false

  constructor(
    private readonly client: pg.PoolClient,
    private readonly guard: GuardedPool,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>
  query<R>(
    input: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof input !== "string") {
      // A cursor (Kysely's streaming) is a pg Submittable; its errors reach its reader.
      return this.client.query(input as unknown as pg.Submittable) as unknown as PostgresCursor<R>
    }
    const result = this.client.query(input, parameters ? [...parameters] : []) as unknown as Promise<
      PostgresQueryResult<R>
    >
    return result.catch((error: unknown) => {
      const translated = this.guard.translate(error)
      // The connection is dead: give it back now, with the error, so that the pool discards it even if
      // nobody else releases it (Kysely does not when a new connection's set-up statement fails).
      if (translated !== error) this.release(true)
      throw translated
    })
  }

  release(destroy?: boolean): void {
    if (this.released) return
    this.released = true
    this.client.release(destroy === true ? true : undefined)
  }
}
