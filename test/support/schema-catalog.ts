/**
 * The hand-written Kysely types (src/storage/schema.ts) against the real catalog.
 *
 * TypeScript types are erased, so the declared side is read from the source with the TypeScript compiler's
 * type checker: it resolves the aliases (`Timestamp`, `Decimal`) and Kysely's `ColumnType` and `Generated`
 * to the type a select returns and the type an insert accepts. The catalog side is `information_schema`
 * (plus `pg_class` for partitions). Both are reduced to a small model, and {@link compareSchema}, a pure
 * function, lists every difference as a sentence naming the table and the column.
 */
import { resolve } from "node:path"
import { type QueryExecutorProvider, sql } from "kysely"
import ts from "typescript"

/** A column as schema.ts declares it. */
export interface DeclaredColumn {
  /** What a select returns, without null: e.g. ["string"], ["Date"], ["string[]"], ["object"]. */
  kinds: string[]
  /** The select type admits null. */
  nullable: boolean
  /** An insert may leave it out (`Generated`, or an insert type admitting undefined). */
  insertOptional: boolean
  /** The select type as written by the checker, for messages. */
  text: string
}

/** Table name -> column name -> column. */
export type DeclaredSchema = Map<string, Map<string, DeclaredColumn>>

/** One row of information_schema.columns, for a relation of the public schema. */
export interface CatalogColumn {
  table: string
  /** "BASE TABLE" (also partitioned tables) or "VIEW". */
  tableType: string
  column: string
  /** information_schema.columns.udt_name: int8, text, _numeric (an array), ... */
  udtName: string
  nullable: boolean
  hasDefault: boolean
}

/** Relations of the catalog that schema.ts does not describe, each with the reason. */
export interface CatalogExceptions {
  /** Exact names, e.g. the migrator's own tables. */
  relations: Readonly<Record<string, string>>
}

export const SCHEMA_FILE = resolve("src/storage/schema.ts")

/**
 * Reads the `DB` interface of a schema file. `sourceText` replaces the file's contents (to check a
 * deliberately wrong variant); the file's directory still resolves its imports (kysely).
 */
export function readDeclaredSchema(fileName: string = SCHEMA_FILE, sourceText?: string): DeclaredSchema {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ["lib.es2022.d.ts"],
    types: [],
    skipLibCheck: true,
  }
  const host = ts.createCompilerHost(options, true)
  if (sourceText !== undefined) {
    const getSourceFile = host.getSourceFile.bind(host)
    const readFile = host.readFile.bind(host)
    host.getSourceFile = (name, language, onError, shouldCreate) =>
      resolve(name) === resolve(fileName)
        ? ts.createSourceFile(name, sourceText, language, true)
        : getSourceFile(name, language, onError, shouldCreate)
    host.readFile = (name) => (resolve(name) === resolve(fileName) ? sourceText : readFile(name))
  }
  const program = ts.createProgram({ rootNames: [fileName], options, host })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(fileName)
  if (!source) throw new Error(`${fileName}: not found`)
  const dbDeclaration = source.statements.find(
    (statement): statement is ts.InterfaceDeclaration =>
      ts.isInterfaceDeclaration(statement) && statement.name.text === "DB",
  )
  if (!dbDeclaration) throw new Error(`${fileName}: no interface DB`)
  const schema: DeclaredSchema = new Map()
  const dbType = checker.getTypeAtLocation(dbDeclaration)
  for (const table of checker.getPropertiesOfType(dbType)) {
    const tableType = checker.getTypeOfSymbolAtLocation(table, dbDeclaration)
    const columns = new Map<string, DeclaredColumn>()
    for (const column of checker.getPropertiesOfType(tableType)) {
      columns.set(
        column.name,
        declaredColumn(checker, checker.getTypeOfSymbolAtLocation(column, dbDeclaration)),
      )
    }
    schema.set(table.name, columns)
  }
  return schema
}

function declaredColumn(checker: ts.TypeChecker, type: ts.Type): DeclaredColumn {
  // Kysely's ColumnType<S, I, U> is { __select__: S; __insert__: I; __update__: U }; Generated<S> is
  // ColumnType<S, S | undefined, S>. A plain type is all three.
  const select = brandedPart(checker, type, "__select__") ?? type
  const insert = brandedPart(checker, type, "__insert__") ?? type
  const selectMembers = select.isUnion() ? select.types : [select]
  const insertMembers = insert.isUnion() ? insert.types : [insert]
  const present = selectMembers.filter(
    (member) => !(member.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined)),
  )
  return {
    kinds: [...new Set(present.map((member) => kindOf(checker, member)))].sort(),
    nullable: selectMembers.some((member) => member.flags & ts.TypeFlags.Null),
    insertOptional: insertMembers.some(
      (member) => member.flags & (ts.TypeFlags.Null | ts.TypeFlags.Undefined),
    ),
    text: checker.typeToString(select),
  }
}

function brandedPart(checker: ts.TypeChecker, type: ts.Type, name: string): ts.Type | undefined {
  const property = type.getProperty(name)
  const declaration = property?.valueDeclaration ?? property?.declarations?.[0]
  return property && declaration ? checker.getTypeOfSymbolAtLocation(property, declaration) : undefined
}

/** The runtime shape of one non-null member of a select type. */
function kindOf(checker: ts.TypeChecker, type: ts.Type): string {
  if (type.flags & (ts.TypeFlags.String | ts.TypeFlags.StringLiteral)) return "string"
  if (type.flags & (ts.TypeFlags.Number | ts.TypeFlags.NumberLiteral)) return "number"
  if (type.flags & (ts.TypeFlags.Boolean | ts.TypeFlags.BooleanLiteral)) return "boolean"
  if (type.flags & (ts.TypeFlags.BigInt | ts.TypeFlags.BigIntLiteral)) return "bigint"
  if (type.flags & (ts.TypeFlags.Unknown | ts.TypeFlags.Any)) return "unknown"
  if (checker.isArrayType(type)) {
    const [element] = checker.getTypeArguments(type as ts.TypeReference)
    return `${element ? kindOf(checker, element) : "unknown"}[]`
  }
  const name = type.getSymbol()?.getName()
  if (name === "Date") return "Date"
  if (name === "Uint8Array" || name === "Buffer") return "bytes"
  return "object"
}

/**
 * What a select returns for a column of this catalog type, with the drivers as openDatabase configures them
 * (int8 parsed to number on both engines; numeric left as an exact string; timestamps as Date).
 */
export function expectedKind(udtName: string): string | undefined {
  if (udtName.startsWith("_")) {
    const element = expectedKind(udtName.slice(1))
    return element === undefined ? undefined : `${element}[]`
  }
  switch (udtName) {
    case "uuid":
    case "text":
    case "varchar":
    case "bpchar":
    case "name":
    case "citext":
    case "bit":
    case "varbit":
    case "numeric":
    case "inet":
    case "cidr":
      return "string"
    case "int2":
    case "int4":
    case "int8":
    case "float4":
    case "float8":
    case "oid":
      return "number"
    case "bool":
      return "boolean"
    case "timestamptz":
    case "timestamp":
    case "date":
      return "Date"
    case "json":
    case "jsonb":
      return "json"
    case "bytea":
      return "bytes"
    default:
      return undefined
  }
}

function compatible(expected: string, kinds: readonly string[]): boolean {
  // JSON may hold anything; the declared type says which shape this column stores (not a Date, though).
  if (expected === "json") return kinds.length > 0 && !kinds.includes("Date")
  return kinds.length === 1 && kinds[0] === expected
}

/**
 * Every difference between the declared schema and the catalog, as sentences naming table and column.
 * Views report every column nullable in information_schema, so their nullability is not compared.
 */
export function compareSchema(
  declared: DeclaredSchema,
  catalog: readonly CatalogColumn[],
  exceptions: CatalogExceptions,
): string[] {
  const problems: string[] = []
  const byTable = new Map<string, CatalogColumn[]>()
  for (const column of catalog) byTable.set(column.table, [...(byTable.get(column.table) ?? []), column])

  for (const [table, reason] of Object.entries(exceptions.relations)) {
    if (!byTable.has(table))
      problems.push(`${table}: listed as an exception (${reason}) but not in the database`)
    if (declared.has(table))
      problems.push(`${table}: listed as an exception (${reason}) but declared in schema.ts`)
  }
  for (const [table, columns] of byTable) {
    if (!declared.has(table) && !(table in exceptions.relations))
      problems.push(
        `${table}: in the database (${columns.map((c) => c.column).join(", ")}) but not in schema.ts's DB`,
      )
  }
  for (const [table, columns] of declared) {
    const actual = byTable.get(table)
    if (!actual) {
      problems.push(`${table}: declared in schema.ts but no such table or view in the database`)
      continue
    }
    const actualByName = new Map(actual.map((column) => [column.column, column]))
    for (const [name, column] of columns) {
      const found = actualByName.get(name)
      if (!found) {
        problems.push(`${table}.${name}: declared in schema.ts (${column.text}) but not in the database`)
        continue
      }
      const expected = expectedKind(found.udtName)
      if (expected === undefined)
        problems.push(`${table}.${name}: database type ${found.udtName} has no known TypeScript mapping`)
      else if (!compatible(expected, column.kinds))
        problems.push(
          `${table}.${name}: database type ${found.udtName} reads as ${expected}, schema.ts says ${column.text}`,
        )
      const isView = found.tableType === "VIEW"
      if (!isView && found.nullable && !column.nullable)
        problems.push(`${table}.${name}: nullable in the database, schema.ts says ${column.text} (no null)`)
      if (!isView && !found.nullable && column.nullable)
        problems.push(`${table}.${name}: NOT NULL in the database, schema.ts says ${column.text}`)
      if (!isView && column.insertOptional && !found.nullable && !found.hasDefault)
        problems.push(
          `${table}.${name}: schema.ts lets an insert leave it out, but it is NOT NULL without a default`,
        )
    }
    for (const found of actual) {
      if (!columns.has(found.column))
        problems.push(
          `${table}.${found.column}: in the database (${found.udtName}${found.nullable ? ", nullable" : ""}) but not in schema.ts`,
        )
    }
  }
  return problems
}

/**
 * The columns of every relation of the public schema that the service can reach: tables, partitioned
 * tables and views, without partitions (a partition is reached through its parent). Read it as the owner:
 * information_schema shows a role only what it holds privileges on.
 */
export async function readCatalog(db: QueryExecutorProvider): Promise<CatalogColumn[]> {
  const result = await sql<{
    table_name: string
    table_type: string
    column_name: string
    udt_name: string
    is_nullable: string
    has_default: boolean
  }>`
    select c.table_name, t.table_type, c.column_name, c.udt_name, c.is_nullable,
      (c.column_default is not null or c.is_identity = 'YES') as has_default
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    join pg_class k on k.relname = c.table_name and k.relnamespace = 'public'::regnamespace
    where c.table_schema = 'public' and not k.relispartition
    order by c.table_name, c.ordinal_position`.execute(db)
  return result.rows.map((row) => ({
    table: row.table_name,
    tableType: row.table_type,
    column: row.column_name,
    udtName: row.udt_name,
    nullable: row.is_nullable === "YES",
    hasDefault: row.has_default,
  }))
}

/** The service's database role (migration 0001); row level security binds it. */
export const APP_ROLE = "omnimeter_app"

/** A relation of the public schema as row level security sees it. */
export interface RelationSecurity {
  name: string
  kind: "table" | "partitioned table" | "partition" | "view" | "other"
  /** For a partition, the partitioned table at the top of its tree. */
  root: string | null
  columns: string[]
  rowSecurity: boolean
  policies: { name: string; roles: string[]; using: string | null }[]
  /** The service's role holds SELECT, INSERT, UPDATE or DELETE on it. */
  appCanAccess: boolean
  securityInvoker: boolean
  owner: string
}

/** Every table, partition and view of the public schema, with its policies and the app role's access. */
export async function readRelationSecurity(db: QueryExecutorProvider): Promise<RelationSecurity[]> {
  const relations = await sql<{
    name: string
    relkind: string
    relispartition: boolean
    root: string | null
    columns: string[]
    rowsecurity: boolean
    app_can_access: boolean
    security_invoker: boolean
    owner: string
  }>`
    select k.relname as name, k.relkind, k.relispartition,
      case when k.relispartition then pg_partition_root(k.oid)::regclass::text end as root,
      array(select a.attname::text from pg_attribute a
            where a.attrelid = k.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
      k.relrowsecurity as rowsecurity,
      has_table_privilege(${APP_ROLE}, k.oid, 'SELECT, INSERT, UPDATE, DELETE') as app_can_access,
      coalesce(k.reloptions && array['security_invoker=true', 'security_invoker=on', 'security_invoker=1'],
        false) as security_invoker,
      pg_get_userbyid(k.relowner)::text as owner
    from pg_class k
    where k.relnamespace = 'public'::regnamespace and k.relkind in ('r', 'p', 'v', 'm', 'f')
    order by k.relname`.execute(db)
  const policies = await sql<{ tablename: string; policyname: string; roles: string[]; qual: string | null }>`
    select tablename::text, policyname::text, roles::text[] as roles, qual
    from pg_policies where schemaname = 'public'`.execute(db)
  return relations.rows.map((row) => ({
    name: row.name,
    kind: row.relispartition
      ? "partition"
      : row.relkind === "r"
        ? "table"
        : row.relkind === "p"
          ? "partitioned table"
          : row.relkind === "v"
            ? "view"
            : "other",
    root: row.root,
    columns: row.columns,
    rowSecurity: row.rowsecurity,
    policies: policies.rows
      .filter((policy) => policy.tablename === row.name)
      .map((policy) => ({ name: policy.policyname, roles: policy.roles, using: policy.qual })),
    appCanAccess: row.app_can_access,
    securityInvoker: row.security_invoker,
    owner: row.owner,
  }))
}

export interface TenancyRules {
  /** Tables the service never reads: the migrator's bookkeeping. */
  internal: readonly string[]
  /** Tenant tables whose tenant key is not `subscription_id`, with that key (subscriptions: its id). */
  tenantKeys: Readonly<Record<string, string>>
  /** Tables without tenant data, each with the reason. */
  shared: Readonly<Record<string, string>>
}

/**
 * Every way tenant data could escape row level security, as sentences naming the relation: a tenant table
 * (a `subscription_id` column, or listed in `tenantKeys`) without row level security, or without a policy
 * for the service's role that looks at its tenant key; a table nobody has classified; a partition the
 * service could read around its parent's policies; a view that reads as its owner (no security_invoker);
 * the migrator's tables open to the service.
 */
export function rowLevelSecurityProblems(
  relations: readonly RelationSecurity[],
  rules: TenancyRules,
): string[] {
  const problems: string[] = []
  const byName = new Map(relations.map((relation) => [relation.name, relation]))
  for (const name of [...rules.internal, ...Object.keys(rules.tenantKeys), ...Object.keys(rules.shared)]) {
    if (!byName.has(name)) problems.push(`${name}: named in the tenancy rules but not in the database`)
  }
  for (const relation of relations) {
    const { name } = relation
    if (rules.internal.includes(name)) {
      if (relation.appCanAccess) problems.push(`${name}: the migrator's table is open to ${APP_ROLE}`)
      continue
    }
    if (relation.kind === "view" || relation.kind === "other") {
      if (relation.appCanAccess && !relation.securityInvoker)
        problems.push(
          `${name}: a ${relation.kind} ${APP_ROLE} can read that runs as its owner (no security_invoker)`,
        )
      continue
    }
    if (relation.owner === APP_ROLE)
      problems.push(`${name}: owned by ${APP_ROLE}, so its policies do not bind it`)
    if (relation.kind === "partition") {
      const protectedAlone = relation.rowSecurity && relation.policies.length > 0
      if (relation.appCanAccess && !protectedAlone)
        problems.push(
          `${name}: a partition of ${relation.root} that ${APP_ROLE} can reach around its parent's policies`,
        )
      continue
    }
    const key =
      rules.tenantKeys[name] ?? (relation.columns.includes("subscription_id") ? "subscription_id" : undefined)
    if (key === undefined) {
      if (!(name in rules.shared))
        problems.push(
          `${name}: no subscription_id column and not classified: list it as tenant-owned (with its key) or shared (with why)`,
        )
      continue
    }
    if (!relation.rowSecurity) problems.push(`${name}: holds tenant data but row level security is off`)
    const keyPattern = new RegExp(`\\b${key}\\b`)
    const binding = relation.policies.filter(
      (policy) =>
        (policy.roles.includes("public") || policy.roles.includes(APP_ROLE)) &&
        policy.using !== null &&
        keyPattern.test(policy.using),
    )
    if (binding.length === 0)
      problems.push(`${name}: holds tenant data but no policy for ${APP_ROLE} looks at its tenant key ${key}`)
  }
  return problems
}
