/**
 * Maintenance of the partitioned ledger (migration 0007): monthly partitions created ahead of time, rows
 * that fell into the default partition moved to their month's partition, and whole months past the
 * retention dropped. Both steps are SQL functions that run as the schema owner, serialised by an advisory
 * lock, so several instances may run this job against one database.
 */
import type { Kysely } from "kysely"
import { sql } from "kysely"
import { PeriodicJob } from "../background.js"
import type { Clock } from "../core/clock.js"
import type { Database } from "./database.js"
import type { DB } from "./schema.js"

/** Months after the current one that always have a partition. */
export const LEDGER_MONTHS_AHEAD = 2

/**
 * Creates the partitions of the month of `now` and of the `monthsAhead` months after it, and a partition
 * for every month with rows in the default partition (moving them there). Resolves with how many it created.
 */
export async function ensureLedgerPartitions(
  db: Kysely<DB>,
  now: Date,
  monthsAhead: number = LEDGER_MONTHS_AHEAD,
): Promise<number> {
  const result = await sql<{ created: number }>`
    select omnimeter_ensure_ledger_partitions(${now.toISOString()}::timestamptz, ${monthsAhead}::int) as created
  `.execute(db)
  return Number(result.rows[0]?.created ?? 0)
}

/**
 * Retention: drops the monthly partitions that ended before the start of the UTC month `keepMonths`
 * months before `now`'s, the default partition's rows older than that, and their idempotency keys.
 * Analytics rollups and quota counters are kept. Resolves with how many partitions it dropped.
 */
export async function dropExpiredLedgerPartitions(
  db: Kysely<DB>,
  keepMonths: number,
  now: Date,
): Promise<number> {
  if (!Number.isInteger(keepMonths) || keepMonths < 1)
    throw new RangeError("keepMonths must be an integer >= 1")
  const result = await sql<{ dropped: number }>`
    select omnimeter_drop_ledger_partitions(${keepMonths}::int, ${now.toISOString()}::timestamptz) as dropped
  `.execute(db)
  return Number(result.rows[0]?.dropped ?? 0)
}

export interface LedgerPartition {
  name: string
  /** "default", or the bounds as PostgreSQL prints them. */
  bounds: string
}

/** The ledger's partitions, by name. */
export async function listLedgerPartitions(db: Kysely<DB>): Promise<LedgerPartition[]> {
  const result = await sql<{ name: string; bounds: string }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bounds
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'token_usage_logs'::regclass
    order by c.relname
  `.execute(db)
  return result.rows.map((row) => ({
    name: row.name,
    bounds: row.bounds === "DEFAULT" ? "default" : row.bounds,
  }))
}

export interface LedgerMaintenanceOptions {
  database: Database
  clock: Clock
  /** Full months of raw ledger rows kept before the current month; 0 keeps everything. */
  retentionMonths: number
  /** Pause between passes (default one hour). */
  intervalMs?: number
}

/** Runs the ledger's partition maintenance at start and then every interval. */
export class LedgerMaintenanceJob extends PeriodicJob {
  constructor(private readonly options: LedgerMaintenanceOptions) {
    // The first pass at start-up, then one per interval.
    super(options.intervalMs ?? 3_600_000, 0)
  }

  /** One pass; resolves with the number of partitions created plus dropped. */
  async runOnce(): Promise<number> {
    const now = new Date(this.options.clock.now())
    const db = this.options.database.db
    const created = await ensureLedgerPartitions(db, now)
    const dropped =
      this.options.retentionMonths > 0
        ? await dropExpiredLedgerPartitions(db, this.options.retentionMonths, now)
        : 0
    return created + dropped
  }
}
