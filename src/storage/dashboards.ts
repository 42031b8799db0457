/**
 * The saved dashboards repository (migration 0015). Every function takes the Kysely instance it runs on,
 * so the caller chooses the tenant scope (row level security) and the transaction.
 */
import { type Kysely, type Selectable, sql } from "kysely"
import type { Widget } from "../core/dashboards.js"
import type { DashboardsTable, DB } from "./schema.js"

export interface DashboardRow {
  id: string
  subscriptionId: string
  name: string
  widgets: Widget[]
  version: number
  createdAt: Date
  updatedAt: Date
}

function toDashboard(row: Selectable<DashboardsTable>): DashboardRow {
  const widgets = typeof row.widgets === "string" ? JSON.parse(row.widgets) : row.widgets
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    name: row.name,
    widgets: widgets as Widget[],
    version: Number(row.version),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

/** A subscription's dashboards, oldest first. */
export async function listDashboards(db: Kysely<DB>, subscriptionId: string): Promise<DashboardRow[]> {
  const rows = await db
    .selectFrom("dashboards")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at")
    .orderBy("id")
    .execute()
  return rows.map(toDashboard)
}

export async function findDashboard(
  db: Kysely<DB>,
  subscriptionId: string,
  dashboardId: string,
): Promise<DashboardRow | undefined> {
  const row = await db
    .selectFrom("dashboards")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", dashboardId)
    .executeTakeFirst()
  return row ? toDashboard(row) : undefined
}

/** How many dashboards the subscription has, after serialising creations for it in this transaction. */
export async function lockAndCountDashboards(db: Kysely<DB>, subscriptionId: string): Promise<number> {
  // A transaction-level advisory lock per subscription: two creations at once cannot both pass the limit.
  await sql`select pg_advisory_xact_lock(hashtextextended(${`dashboards:${subscriptionId}`}, 0))`.execute(db)
  const row = await db
    .selectFrom("dashboards")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("subscription_id", "=", subscriptionId)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export async function insertDashboard(
  db: Kysely<DB>,
  input: { subscriptionId: string; name: string; widgets: Widget[] },
): Promise<DashboardRow> {
  const row = await db
    .insertInto("dashboards")
    .values({
      subscription_id: input.subscriptionId,
      name: input.name,
      widgets: JSON.stringify(input.widgets),
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return toDashboard(row)
}

/**
 * Changes a dashboard and bumps its version; with `expectedVersion`, only if the version is still that.
 * Undefined when no row matched (absent, or another version).
 */
export async function updateDashboard(
  db: Kysely<DB>,
  subscriptionId: string,
  dashboardId: string,
  patch: { name?: string; widgets?: Widget[] },
  expectedVersion?: number,
): Promise<DashboardRow | undefined> {
  let query = db
    .updateTable("dashboards")
    .set((eb) => ({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.widgets !== undefined ? { widgets: JSON.stringify(patch.widgets) } : {}),
      version: eb("version", "+", 1),
      updated_at: sql<Date>`now()`,
    }))
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", dashboardId)
  if (expectedVersion !== undefined) query = query.where("version", "=", expectedVersion)
  const row = await query.returningAll().executeTakeFirst()
  return row ? toDashboard(row) : undefined
}

export async function deleteDashboard(
  db: Kysely<DB>,
  subscriptionId: string,
  dashboardId: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom("dashboards")
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", dashboardId)
    .executeTakeFirst()
  return Number(result.numDeletedRows) > 0
}
