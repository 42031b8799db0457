/**
 * PostgreSQL dialects that keep no session state, so that a transaction pooler (PgBouncer in
 * `pool_mode=transaction`, Supabase's Supavisor, Neon, RDS Proxy) may hand every transaction to a different
 * server connection without changing what a statement may see.
 *
 * Design note. Goals in priority order: (1) every statement the service runs is subject to row level
 * security, whatever server connection it lands on; (2) nothing depends on a connection's history; (3) no
 * round trip is added. A session-level `SET ROLE` fails (1) and (2) under a pooler: the next transaction may
 * run on a server connection that never received it and so runs as the schema owner, which bypasses row
 * level security. So the role and the tenant are set per transaction, transaction-locally:
 * - an explicit transaction begins with `begin; set local role omnimeter_app; set local omnimeter.tenant =
 *   '*'` in ONE simple-protocol message, in place of the bare `begin`;
 * - a statement outside an explicit transaction is sent in the extended protocol behind a prelude that sets
 *   both with `set_config(..., true)`, in the same message and before the same Sync. PostgreSQL runs
 *   everything before a Sync in one implicit transaction, so the settings hold for the statement and end
 *   with its commit; PgBouncer keeps one server connection for it until the Sync's ReadyForQuery.
 * The prelude returns no row and its completion is not reported, so the caller sees only its statement.
 * Statements are never named (no server-side prepared statements); nothing is `SET` for the session.
 */
import {
  type CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresDialect,
  type PostgresDialectConfig,
  type PostgresPool,
  type QueryResult,
  sql,
  type TransactionSettings,
} from "kysely"
import pg from "pg"

/** The restricted role every statement of the service runs as; migration 0001 creates it. */
export const APP_ROLE = "omnimeter_app"

const APP_SCOPE = `set local role ${APP_ROLE}; set local omnimeter.tenant = '*'`

// Returns no row (both calls answer non-null), so no RowDescription/DataRow precedes the statement's own.
// Both calls are volatile: PostgreSQL evaluates them for the one row it filters out.
const PRELUDE = `select where set_config('role', '${APP_ROLE}', true) is null or set_config('omnimeter.tenant', '*', true) is null`

function beginStatement(settings: TransactionSettings): string {
  let begin = "begin"
  if (settings.isolationLevel || settings.accessMode) {
    begin = "start transaction"
    if (settings.isolationLevel) begin += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode) begin += ` ${settings.accessMode}`
  }
  return `${begin}; ${APP_SCOPE}`
}

/** The part of pg's wire connection a query uses to send extended-protocol messages. */
interface WireConnection {
  parse(message: { text: string; name: string; types: number[] }): void
  bind(message: { portal: string; statement: string; values: unknown[] }): void
  execute(message: { portal: string; rows: number }): void
}

/** pg.Query's extension points, which @types/pg does not declare. */
interface QueryInternals {
  prepare(connection: WireConnection): void
  handleCommandComplete(message: unknown, connection: WireConnection): void
}

type QueryCallback = (error: Error | null, result: pg.QueryResult) => void
const QueryBase = pg.Query as unknown as new (
  config: { text: string; values: unknown[]; queryMode: "extended" },
  callback: QueryCallback,
) => QueryInternals & pg.Submittable

/** One statement behind the prelude, both before one Sync: one round trip, one implicit transaction. */
class AppScopedQuery extends QueryBase {
  private preludeCompleted = false

  override prepare(connection: WireConnection): void {
    connection.parse({ text: PRELUDE, name: "", types: [] })
    connection.bind({ portal: "", statement: "", values: [] })
    connection.execute({ portal: "", rows: 0 })
    super.prepare(connection)
  }

  override handleCommandComplete(message: unknown, connection: WireConnection): void {
    if (!this.preludeCompleted) {
      this.preludeCompleted = true
      return
    }
    super.handleCommandComplete(message, connection)
  }
}

function toQueryResult<R>(result: pg.QueryResult): QueryResult<R> {
  const { command, rowCount, rows } = result
  if (command === "ROLLBACK" || command === "COMMIT") return { rows: [{ command } as R] }
  const changed = command === "INSERT" || command === "UPDATE" || command === "DELETE" || command === "MERGE"
  return {
    rows: (rows ?? []) as R[],
    ...(changed ? { numAffectedRows: BigInt(rowCount ?? 0) } : {}),
  }
}

/** Kysely's PostgreSQL configuration, plus how a driver error becomes the error callers see. */
export interface AppRoleDialectConfig extends PostgresDialectConfig {
  /**
   * Maps an error of a statement (e.g. a lost connection to `DatabaseUnavailableError`). When it returns
   * another error than it was given, the connection is taken as dead and is not reused.
   */
  translateError?: (error: unknown) => unknown
}

/** A pooled client whose every statement runs as the app role, in or outside an explicit transaction. */
class AppRoleConnection implements DatabaseConnection {
  inTransaction = false
  /** A connection whose rollback failed is in an unknown state: the pool must close it, not reuse it. */
  broken = false

  constructor(
    readonly client: pg.PoolClient,
    private readonly translateError: (error: unknown) => unknown,
  ) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const values = [...compiled.parameters]
    try {
      if (this.inTransaction) return toQueryResult<R>(await this.client.query(compiled.sql, values))
      const result = await new Promise<pg.QueryResult>((resolve, reject) => {
        this.client.query(
          new AppScopedQuery({ text: compiled.sql, values, queryMode: "extended" }, (error, answer) =>
            error ? reject(error) : resolve(answer),
          ),
        )
      })
      return toQueryResult<R>(result)
    } catch (error) {
      throw this.translated(error)
    }
  }

  private translated(error: unknown): unknown {
    const translated = this.translateError(error)
    if (translated !== error) this.broken = true
    return translated
  }

  // biome-ignore lint/correctness/useYield: streaming needs a cursor, which omnimeter does not configure
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming is not supported by omnimeter's PostgreSQL dialect")
  }

  /** Runs raw control statements (begin, commit) as they are, outside the prelude. */
  async control(text: string): Promise<pg.QueryResult> {
    try {
      return await this.client.query(text)
    } catch (error) {
      throw this.translated(error)
    }
  }
}

function own(connection: DatabaseConnection): AppRoleConnection {
  if (!(connection instanceof AppRoleConnection)) throw new Error("not a connection of this driver")
  return connection
}

class AppRoleDriver implements Driver {
  private pool: PostgresPool | undefined
  private readonly created = new WeakSet<pg.PoolClient>()

  constructor(private readonly config: AppRoleDialectConfig) {}

  async init(): Promise<void> {
    this.pool = typeof this.config.pool === "function" ? await this.config.pool() : this.config.pool
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (!this.pool) throw new Error("driver has already been destroyed")
    const client = (await this.pool.connect()) as unknown as pg.PoolClient
    const connection = new AppRoleConnection(client, this.config.translateError ?? ((error) => error))
    if (!this.created.has(client)) {
      this.created.add(client)
      await this.config.onCreateConnection?.(connection)
    }
    await this.config.onReserveConnection?.(connection)
    return connection
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await own(connection).control(beginStatement(settings))
    own(connection).inTransaction = true
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const mine = own(connection)
    try {
      const result = await mine.control("commit")
      // PostgreSQL completes COMMIT with a ROLLBACK tag when an earlier error left the transaction aborted.
      if (result.command === "ROLLBACK")
        throw new Error("the transaction was rolled back instead of committed")
    } finally {
      mine.inTransaction = false
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const mine = own(connection)
    try {
      await mine.control("rollback")
    } catch (error) {
      mine.broken = true
      throw error
    } finally {
      mine.inTransaction = false
    }
  }

  async savepoint(connection: DatabaseConnection, name: string) {
    await own(connection).control(`savepoint ${quoteIdentifier(name)}`)
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string) {
    await own(connection).control(`rollback to savepoint ${quoteIdentifier(name)}`)
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string) {
    await own(connection).control(`release savepoint ${quoteIdentifier(name)}`)
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const mine = own(connection)
    mine.client.release(mine.broken)
  }

  async destroy(): Promise<void> {
    const pool = this.pool
    this.pool = undefined
    await pool?.end()
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

/**
 * The service's dialect: every statement runs as {@link APP_ROLE} with the trusted tenant '*', set
 * transaction-locally, so it is correct behind a transaction pooler as well as on a direct connection.
 * Takes Kysely's PostgreSQL configuration (`pool`, `onCreateConnection`, `onReserveConnection`; no cursor)
 * and `translateError`.
 * @example
 * const db = new Kysely<DB>({ dialect: new AppRoleDialect({ pool: new pg.Pool({ connectionString }) }) })
 */
export class AppRoleDialect extends PostgresDialect {
  constructor(private readonly appConfig: AppRoleDialectConfig) {
    super(appConfig)
  }

  override createDriver(): Driver {
    return new AppRoleDriver(this.appConfig)
  }
}

// Kysely's own migration lock key: an instance of an earlier version, holding it at session level, and this
// one, holding it for its transaction, still exclude each other during a rolling upgrade.
const MIGRATION_LOCK = sql.lit(BigInt("3853314791062309107"))

/**
 * Kysely's PostgreSQL adapter holds a session-level advisory lock across the migration run. Behind a
 * transaction pooler its lock, its transaction and its unlock may reach three different server connections:
 * the unlock fails and the lock stays held on a connection nobody owns, blocking every later migration.
 * This one opens the migration's transaction itself and takes a transaction-level lock in it; the
 * migrator's own `begin` joins that transaction (PostgreSQL warns and carries on) and its commit or rollback
 * ends it, releasing the lock with it.
 */
class TransactionLockAdapter extends PostgresAdapter {
  override async acquireMigrationLock(db: Kysely<unknown>): Promise<void> {
    await sql`begin`.execute(db)
    try {
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(db)
    } catch (error) {
      await sql`rollback`.execute(db)
      throw error
    }
  }

  override async releaseMigrationLock(): Promise<void> {}
}

/**
 * The schema owner's dialect, for the migrator: a transaction-level migration lock, correct behind a
 * transaction pooler as well as on a direct connection.
 * @example
 * const owner = new Kysely<unknown>({ dialect: new MigrationDialect({ pool: new pg.Pool({ max: 1 }) }) })
 */
export class MigrationDialect extends PostgresDialect {
  override createAdapter(): DialectAdapter {
    return new TransactionLockAdapter()
  }
}
