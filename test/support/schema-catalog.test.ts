/**
 * The catalog comparison on its own, without a database: a small schema source read by the type checker
 * against a hand-written catalog, so each kind of difference is shown to be found and named.
 */
import { resolve } from "node:path"
import { describe, expect, it } from "vitest"
import {
  type CatalogColumn,
  compareSchema,
  type RelationSecurity,
  readDeclaredSchema,
  rowLevelSecurityProblems,
} from "./schema-catalog.js"

// Beside the real schema, so that `kysely` resolves as it does there; the file itself is never written.
const VIRTUAL_FILE = resolve("src/storage/virtual-schema-under-test.ts")

const SOURCE = `
import type { ColumnType, Generated } from "kysely"
type Timestamp = ColumnType<Date, Date | string, Date | string>
export interface NotesTable {
  id: Generated<string>
  subscription_id: string
  body: string | null
  stars: number
  tags: string[]
  meta: ColumnType<Record<string, unknown>, string, string>
  created_at: Timestamp
  state: "open" | "closed"
}
export interface NoteTotalsView {
  subscription_id: string
  notes: number
}
export interface DB {
  notes: NotesTable
  note_totals: NoteTotalsView
}
`

function column(
  table: string,
  name: string,
  udtName: string,
  extra: Partial<CatalogColumn> = {},
): CatalogColumn {
  return {
    table,
    tableType: "BASE TABLE",
    column: name,
    udtName,
    nullable: false,
    hasDefault: false,
    ...extra,
  }
}

const CATALOG: CatalogColumn[] = [
  column("notes", "id", "uuid", { hasDefault: true }),
  column("notes", "subscription_id", "uuid"),
  column("notes", "body", "text", { nullable: true }),
  column("notes", "stars", "int8"),
  column("notes", "tags", "_text"),
  column("notes", "meta", "jsonb"),
  column("notes", "created_at", "timestamptz"),
  column("notes", "state", "text"),
  // information_schema calls every column of a view nullable: not compared.
  column("note_totals", "subscription_id", "uuid", { tableType: "VIEW", nullable: true }),
  column("note_totals", "notes", "int8", { tableType: "VIEW", nullable: true }),
  column("kysely_migration", "name", "varchar"),
]

const EXCEPTIONS = { relations: { kysely_migration: "the migrator's bookkeeping" } }

describe("comparing schema.ts with the catalog", () => {
  const declared = readDeclaredSchema(VIRTUAL_FILE, SOURCE)

  it("finds nothing when the two agree", () => {
    expect(compareSchema(declared, CATALOG, EXCEPTIONS)).toEqual([])
  })

  it("names each table and column that differ", () => {
    const drifted = CATALOG.filter((c) => !(c.table === "notes" && c.column === "state")).map((c) =>
      c.column === "stars"
        ? { ...c, udtName: "numeric" }
        : c.column === "body"
          ? { ...c, nullable: false }
          : c.column === "id"
            ? { ...c, hasDefault: false }
            : c,
    )
    drifted.push(column("notes", "pinned", "bool", { nullable: true }), column("audit", "at", "timestamptz"))
    expect(compareSchema(declared, drifted, { relations: { ...EXCEPTIONS.relations, gone: "old" } })).toEqual(
      [
        "gone: listed as an exception (old) but not in the database",
        "audit: in the database (at) but not in schema.ts's DB",
        "notes.id: schema.ts lets an insert leave it out, but it is NOT NULL without a default",
        "notes.body: NOT NULL in the database, schema.ts says string | null",
        "notes.body: schema.ts lets an insert leave it out, but it is NOT NULL without a default",
        "notes.stars: database type numeric reads as string, schema.ts says number",
        'notes.state: declared in schema.ts ("open" | "closed") but not in the database',
        "notes.pinned: in the database (bool, nullable) but not in schema.ts",
      ],
    )
  })

  it("says so when a database type has no known mapping", () => {
    const odd = CATALOG.map((c) => (c.column === "tags" ? { ...c, udtName: "tsvector" } : c))
    expect(compareSchema(declared, odd, EXCEPTIONS)).toEqual([
      "notes.tags: database type tsvector has no known TypeScript mapping",
    ])
  })
})

describe("checking row level security", () => {
  const table = (name: string, extra: Partial<RelationSecurity> = {}): RelationSecurity => ({
    name,
    kind: "table",
    root: null,
    columns: ["subscription_id"],
    rowSecurity: true,
    policies: [
      { name: "tenant_isolation", roles: ["public"], using: "omnimeter_tenant_allows(subscription_id)" },
    ],
    appCanAccess: true,
    securityInvoker: false,
    owner: "postgres",
    ...extra,
  })
  const rules = {
    internal: ["kysely_migration"],
    tenantKeys: { accounts: "id" },
    shared: { plans: "a price list" },
  }

  it("accepts tenant tables under a policy on their key, shared tables and closed partitions", () => {
    expect(
      rowLevelSecurityProblems(
        [
          table("notes"),
          table("accounts", {
            columns: ["id"],
            policies: [{ name: "p", roles: ["omnimeter_app"], using: "omnimeter_tenant_allows(id)" }],
          }),
          table("plans", { columns: ["name"], rowSecurity: false, policies: [] }),
          table("notes_2026", { kind: "partition", root: "notes", appCanAccess: false, rowSecurity: false }),
          table("kysely_migration", { columns: ["name"], appCanAccess: false }),
        ],
        rules,
      ),
    ).toEqual([])
  })

  it("rejects a policy that does not look at the tenant key, or binds another role", () => {
    expect(
      rowLevelSecurityProblems(
        [
          table("notes", { policies: [{ name: "p", roles: ["public"], using: "true" }] }),
          table("accounts", {
            columns: ["id"],
            policies: [{ name: "p", roles: ["auditor"], using: "omnimeter_tenant_allows(id)" }],
          }),
          table("plans", { columns: ["name"] }),
          table("kysely_migration", { columns: ["name"] }),
        ],
        rules,
      ),
    ).toEqual([
      "notes: holds tenant data but no policy for omnimeter_app looks at its tenant key subscription_id",
      "accounts: holds tenant data but no policy for omnimeter_app looks at its tenant key id",
      "kysely_migration: the migrator's table is open to omnimeter_app",
    ])
  })
})
