/**
 * PostgreSQL dialects that keep no session state, so that a transaction pooler (PgBouncer in
 * `pool_mode=transaction`, Supabase's Supavisor, Neon, RDS Proxy) may hand every transaction to a different
 * server connection without changing what a statement may see.
 *
 * Design note. Goals in priority order: (1) every statement the service runs is subject to row level
 * security, whatever server connection it lands on; (2) nothing depends on a connection's history; (3) the
 * fewest round trips. A session-level `SET ROLE` fails (1) and (2) under a pooler: the next transaction may
 * run on a server connection that never received it and so runs as the schema owner, which bypasses row
 * level security. So the role and the tenant are set per transaction:
 * - an explicit transaction begins with `begin; set local role omnimeter_app; set local omnimeter.tenant = '*'`
 *   in ONE simple-protocol message: no round trip is added to it;
 * - a statement outside an explicit transaction is wrapped in one (that message, the statement, `commit`):
 *   two round trips more than a bare statement. The hot path pays it once per group-commit batch, not per
 *   turn (bench/RESULTS.md has the figures).
 * `local` settings end with their transaction, commit or rollback, so nothing is left on the server
 * connection for the next client. Statements are never named (no server-side prepared statements).
 */
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresDialect,
  type QueryCompiler,
  type QueryResult,
  sql,
  type TransactionSettings,
} from "kysely"

/** The restricted role every statement of the service runs as; migration 0001 creates it. */
export const APP_ROLE = "omnimeter_app"

const APP_SCOPE = `set local role ${APP_ROLE}; set local omnimeter.tenant = '*'`

function beginStatement(settings: TransactionSettings): string {
  let begin = "begin"
  if (settings.isolationLevel || settings.accessMode) {
    begin = "start transaction"
    if (settings.isolationLevel) begin += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode) begin += ` ${settings.accessMode}`
  }
  return `${begin}; ${APP_SCOPE}`
}

/** A pooled connection whose every statement runs in a transaction scoped to the app role. */
class AppRoleConnection implements DatabaseConnection {
  inTransaction = false

  constructor(readonly inner: DatabaseConnection) {}

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (this.inTransaction) return this.inner.executeQuery<R>(compiled)
    await this.inner.executeQuery(CompiledQuery.raw(beginStatement({})))
    let result: QueryResult<R>
    try {
      result = await this.inner.executeQuery<R>(compiled)
    } catch (error) {
      await this.inner.executeQuery(CompiledQuery.raw("rollback")).catch(() => {})
      throw error
    }
    await this.inner.executeQuery(CompiledQuery.raw("commit"))
    return result
  }

  async *streamQuery<R>(compiled: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    if (this.inTransaction) {
      yield* this.inner.streamQuery<R>(compiled, chunkSize)
      return
    }
    await this.inner.executeQuery(CompiledQuery.raw(beginStatement({})))
    let completed = false
    try {
      yield* this.inner.streamQuery<R>(compiled, chunkSize)
      completed = true
    } finally {
      await this.inner.executeQuery(CompiledQuery.raw(completed ? "commit" : "rollback"))
    }
  }
}

function unwrap(connection: DatabaseConnection): AppRoleConnection {
  if (!(connection instanceof AppRoleConnection)) throw new Error("not a connection of this driver")
  return connection
}

class AppRoleDriver implements Driver {
  private readonly wrapped = new WeakMap<DatabaseConnection, AppRoleConnection>()

  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init()
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection()
    let wrapped = this.wrapped.get(connection)
    if (!wrapped) {
      wrapped = new AppRoleConnection(connection)
      this.wrapped.set(connection, wrapped)
    }
    // A connection released mid-transaction is discarded by the pool; a reused one starts outside one.
    wrapped.inTransaction = false
    return wrapped
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const own = unwrap(connection)
    await own.inner.executeQuery(CompiledQuery.raw(beginStatement(settings)))
    own.inTransaction = true
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const own = unwrap(connection)
    try {
      await this.inner.commitTransaction(own.inner)
    } finally {
      own.inTransaction = false
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const own = unwrap(connection)
    try {
      await this.inner.rollbackTransaction(own.inner)
    } finally {
      own.inTransaction = false
    }
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler["compileQuery"]) {
    await this.inner.savepoint?.(unwrap(connection).inner, name, compile)
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ) {
    await this.inner.rollbackToSavepoint?.(unwrap(connection).inner, name, compile)
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compile: QueryCompiler["compileQuery"],
  ) {
    await this.inner.releaseSavepoint?.(unwrap(connection).inner, name, compile)
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(unwrap(connection).inner)
  }

  destroy(): Promise<void> {
    return this.inner.destroy()
  }
}

/**
 * The service's dialect: every statement runs as {@link APP_ROLE} with the trusted tenant '*', set
 * transaction-locally, so it is correct behind a transaction pooler as well as on a direct connection.
 * @example
 * const db = new Kysely<DB>({ dialect: new AppRoleDialect({ pool: new pg.Pool({ connectionString }) }) })
 */
export class AppRoleDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new AppRoleDriver(super.createDriver())
  }
}

// Any fixed key will do; this one is hashtext('omnimeter_migrations').
const MIGRATION_LOCK = sql`hashtext('omnimeter_migrations')`

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
