/**
 * The migrated database's catalog against what the code assumes, on PGlite and PostgreSQL: the hand-written
 * Kysely types (schema.ts) match information_schema, and every table of tenant data is under row level
 * security. Each check is also run on a deliberately broken variant, to show that it fails and names what
 * is wrong.
 */
import { readFileSync } from "node:fs"
import type { Kysely } from "kysely"
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openTestDatabase, type TestDatabase } from "../../test/support/database.js"
import {
  type CatalogColumn,
  type CatalogExceptions,
  compareSchema,
  type DeclaredSchema,
  type RelationSecurity,
  readCatalog,
  readDeclaredSchema,
  readRelationSecurity,
  rowLevelSecurityProblems,
  SCHEMA_FILE,
  type TenancyRules,
} from "../../test/support/schema-catalog.js"
import type { DB } from "./schema.js"

/** The migrator's own tables: bookkeeping the service never reads. */
const MIGRATOR_TABLES = ["kysely_migration", "kysely_migration_lock"]

const EXCEPTIONS: CatalogExceptions = {
  relations: {
    kysely_migration: "the migrator's bookkeeping",
    kysely_migration_lock: "the migrator's lock",
    channel_usage_analytics:
      "a view for operators' SQL (the product's daily aggregate); the service reads the rollups",
  },
}

const TENANCY: TenancyRules = {
  internal: MIGRATOR_TABLES,
  tenantKeys: { subscriptions: "id" },
  // A table without a subscription_id must be listed here or above.
  shared: { model_prices: "the operator's price list: one per deployment, read by every tenant" },
}

let database: TestDatabase
let declared: DeclaredSchema
let catalog: CatalogColumn[]
let relations: RelationSecurity[]

let opened: number

beforeAll(async () => {
  opened = Date.now()
  database = await openTestDatabase()
  declared = readDeclaredSchema()
  catalog = await database.asOwner((db) => readCatalog(db))
  relations = await database.asOwner((db) => readRelationSecurity(db))
})
afterAll(async () => database.close())

class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super("rolled back")
  }
}

/** Runs `fn` as the owner and rolls back what it changed, returning its result. */
async function rolledBack<T>(fn: (db: Kysely<DB>) => Promise<T>): Promise<T> {
  try {
    await database.asOwner(async (db) => {
      throw new Rollback(await fn(db))
    })
  } catch (error) {
    if (error instanceof Rollback) return error.value as T
    throw error
  }
  throw new Error("unreachable: asOwner returned without the rollback")
}

describe("src/storage/schema.ts against the migrated catalog", () => {
  it("declares every table and column the migrations create, with the type and nullability they read as", () => {
    expect(compareSchema(declared, catalog, EXCEPTIONS)).toEqual([])
  })

  it("reads the declared types through Kysely's ColumnType and Generated", () => {
    // A few columns of each shape, so a reader that silently saw nothing could not pass the test above.
    expect(declared.size).toBeGreaterThanOrEqual(13)
    expect(declared.get("subscriptions")?.get("id")).toMatchObject({
      kinds: ["string"],
      insertOptional: true,
    })
    expect(declared.get("subscriptions")?.get("token_limit")).toMatchObject({
      kinds: ["number"],
      nullable: false,
    })
    expect(declared.get("token_usage_logs")?.get("settled_at")).toMatchObject({
      kinds: ["Date"],
      nullable: true,
    })
    expect(declared.get("alert_settings")?.get("quota_thresholds")).toMatchObject({ kinds: ["string[]"] })
    expect(declared.get("alerts")?.get("data")).toMatchObject({ kinds: ["object"] })
    expect(catalog.some((column) => column.table === "token_usage_logs_default")).toBe(false)
  })

  it("names the table and column of every difference in a deliberately wrong schema.ts", () => {
    const text = readFileSync(SCHEMA_FILE, "utf8")
    const wrong = text
      .replace(/\n {2}token_limit: number\n/, "\n  token_limit: string\n")
      .replace(/\n {2}plan: string\n/, "\n")
      .replace(/\n {2}outcome: string \| null\n/, "\n  outcome: string\n  mood: string | null\n")
      .replace(/\n {2}created_at: Generated<Date>\n {2}revoked_at/, "\n  created_at: Date\n  revoked_at")
      .replace(
        /\n {2}subscription_id: string\n {2}period_start: Timestamp/,
        "\n  subscription_id: Generated<string>\n  period_start: Timestamp",
      )
      .replace(/\n {2}channel_user_days: ChannelUserDaysTable\n/, "\n")
    expect(wrong).not.toBe(text)
    expect(compareSchema(readDeclaredSchema(SCHEMA_FILE, wrong), catalog, EXCEPTIONS).sort()).toEqual(
      [
        "channel_user_days: in the database (subscription_id, year, channel, user_identifier, days, chatbot_id, first_day, last_day) but not in schema.ts's DB",
        "quota_counters.subscription_id: schema.ts lets an insert leave it out, but it is NOT NULL without a default",
        "subscriptions.plan: in the database (text) but not in schema.ts",
        "subscriptions.token_limit: database type int8 reads as number, schema.ts says string",
        "token_usage_logs.mood: declared in schema.ts (string | null) but not in the database",
        "token_usage_logs.outcome: nullable in the database, schema.ts says string (no null)",
      ].sort(),
    )
  })
})

describe("the test database", () => {
  it("is a copy of the run's migrated database, not migrated again", async () => {
    // test/support/database.global.ts migrated it before this file started; the copy found nothing pending.
    const applied = await database.asOwner((db) =>
      sql<{ timestamp: string }>`select timestamp from kysely_migration`.execute(db),
    )
    expect(applied.rows.length).toBeGreaterThan(0)
    for (const row of applied.rows) expect(Date.parse(row.timestamp)).toBeLessThan(opened)
  })
})

describe("row level security over every table of tenant data", () => {
  it("binds the service's role on every tenant table, partition and view", async () => {
    expect(rowLevelSecurityProblems(relations, TENANCY)).toEqual([])
    const tenantTables = relations.filter(
      (relation) =>
        (relation.kind === "table" || relation.kind === "partitioned table") &&
        !MIGRATOR_TABLES.includes(relation.name) &&
        !(relation.name in TENANCY.shared),
    )
    // The thirteen tenant tables of migrations 0001-0007 at least (a later migration may add more).
    expect(tenantTables.map((relation) => relation.name)).toEqual(
      expect.arrayContaining([
        "alert_settings",
        "alerts",
        "api_keys",
        "channel_configurations",
        "channel_usage_buckets",
        "channel_usage_hourly",
        "channel_user_days",
        "experiments",
        "person_identifiers",
        "quota_counters",
        "subscriptions",
        "token_usage_logs",
        "usage_idempotency_keys",
        "webhook_deliveries",
        "webhook_endpoints",
        "turn_details",
        "outcomes",
        "feedback",
      ]),
    )
    for (const relation of tenantTables) expect(relation.rowSecurity, relation.name).toBe(true)
    expect(relations.filter((relation) => relation.kind === "partition").length).toBeGreaterThan(0)
  })

  it("the service's role is neither superuser nor exempt from row level security", async () => {
    const role = await database.asOwner((db) =>
      sql<{ rolsuper: boolean; rolbypassrls: boolean }>`
        select rolsuper, rolbypassrls from pg_roles where rolname = 'omnimeter_app'`.execute(db),
    )
    expect(role.rows).toEqual([{ rolsuper: false, rolbypassrls: false }])
  })

  it("names the relation of every hole punched into it on purpose", async () => {
    const broken = await rolledBack(async (db) => {
      await sql`alter table alerts disable row level security`.execute(db)
      await sql`drop policy tenant_isolation on channel_user_days`.execute(db)
      await sql`grant select on token_usage_logs_default to omnimeter_app`.execute(db)
      await sql`create table scratch_notes (id integer)`.execute(db)
      await sql`create view scratch_keys as select subscription_id, prefix from api_keys`.execute(db)
      await sql`grant select on scratch_keys to omnimeter_app`.execute(db)
      return readRelationSecurity(db)
    })
    expect(rowLevelSecurityProblems(broken, TENANCY).sort()).toEqual(
      [
        "alerts: holds tenant data but row level security is off",
        "channel_user_days: holds tenant data but no policy for omnimeter_app looks at its tenant key subscription_id",
        "scratch_keys: a view omnimeter_app can read that runs as its owner (no security_invoker)",
        "scratch_notes: no subscription_id column and not classified: list it as tenant-owned (with its key) or shared (with why)",
        "token_usage_logs_default: a partition of token_usage_logs that omnimeter_app can reach around its parent's policies",
      ].sort(),
    )
    // Rolled back: the database is as the migrations left it.
    expect(
      rowLevelSecurityProblems(await database.asOwner((db) => readRelationSecurity(db)), TENANCY),
    ).toEqual([])
  })
})
