/** API keys, by hash. */
import type { Kysely } from "kysely"
import type { DB } from "./schema.js"

export interface ApiKeyRow {
  id: string
  kind: "admin" | "subscription"
  subscriptionId: string | null
  prefix: string
  label: string | null
  createdAt: Date
  revokedAt: Date | null
}

const columns = ["id", "kind", "subscription_id", "prefix", "label", "created_at", "revoked_at"] as const

function toRow(row: {
  id: string
  kind: string
  subscription_id: string | null
  prefix: string
  label: string | null
  created_at: Date
  revoked_at: Date | null
}): ApiKeyRow {
  return {
    id: row.id,
    kind: row.kind as ApiKeyRow["kind"],
    subscriptionId: row.subscription_id,
    prefix: row.prefix,
    label: row.label,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  }
}

export async function insertApiKey(
  db: Kysely<DB>,
  key: {
    kind: ApiKeyRow["kind"]
    subscriptionId: string | null
    keyHash: string
    prefix: string
    label: string | null
  },
): Promise<ApiKeyRow> {
  const row = await db
    .insertInto("api_keys")
    .values({
      kind: key.kind,
      subscription_id: key.subscriptionId,
      key_hash: key.keyHash,
      prefix: key.prefix,
      label: key.label,
    })
    .onConflict((oc) => oc.column("key_hash").doUpdateSet({ revoked_at: null }))
    .returning(columns)
    .executeTakeFirstOrThrow()
  return toRow(row)
}

/** The live (unrevoked) key with this hash. */
export async function findLiveApiKeyByHash(db: Kysely<DB>, keyHash: string): Promise<ApiKeyRow | undefined> {
  const row = await db
    .selectFrom("api_keys")
    .select(columns)
    .where("key_hash", "=", keyHash)
    .where("revoked_at", "is", null)
    .executeTakeFirst()
  return row && toRow(row)
}

export async function countLiveAdminKeys(db: Kysely<DB>): Promise<number> {
  const row = await db
    .selectFrom("api_keys")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("kind", "=", "admin")
    .where("revoked_at", "is", null)
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

export async function listSubscriptionKeys(db: Kysely<DB>, subscriptionId: string): Promise<ApiKeyRow[]> {
  const rows = await db
    .selectFrom("api_keys")
    .select(columns)
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at")
    .execute()
  return rows.map(toRow)
}

/** Revokes a subscription's key; returns its hash so caches can forget it, or undefined if there is none. */
export async function revokeSubscriptionKey(
  db: Kysely<DB>,
  subscriptionId: string,
  keyId: string,
  now: Date,
): Promise<{ keyHash: string } | undefined> {
  const row = await db
    .updateTable("api_keys")
    .set({ revoked_at: now })
    .where("id", "=", keyId)
    .where("subscription_id", "=", subscriptionId)
    .where("revoked_at", "is", null)
    .returning("key_hash")
    .executeTakeFirst()
  return row && { keyHash: row.key_hash }
}
