/**
 * API keys: who is calling. Keys are random 192-bit strings shown once; only their SHA-256 is stored.
 *
 * Verification answers from a small in-process cache for a few seconds, so the hot path does not pay a
 * database round trip per request. Revocation through this process is immediate; another instance may
 * accept a revoked key for at most `cacheTtlMs` (default 5 s).
 */
import { createHash, randomBytes } from "node:crypto"
import type { Clock } from "../core/clock.js"
import {
  type ApiKeyRow,
  countLiveAdminKeys,
  findLiveApiKeyByHash,
  insertApiKey,
  listSubscriptionKeys,
  revokeSubscriptionKey,
} from "../storage/api-keys.js"
import type { Database } from "../storage/database.js"

/** Who a request acts for. */
export type Principal =
  | { kind: "admin"; keyId: string }
  | { kind: "subscription"; subscriptionId: string; keyId: string }

export interface IssuedKey {
  /** The key itself: shown once, never stored. */
  key: string
  keyId: string
  prefix: string
  label: string | null
  createdAt: Date
}

const ADMIN_PREFIX = "om_admin_"
const SUBSCRIPTION_PREFIX = "om_sk_"

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex")
}

function newKey(prefix: string): string {
  return `${prefix}${randomBytes(24).toString("base64url")}`
}

export class KeyService {
  private readonly cache = new Map<string, { principal: Principal | undefined; expires: number }>()

  constructor(
    private readonly database: Database,
    private readonly clock: Clock,
    private readonly cacheTtlMs = 5000,
  ) {}

  /**
   * Makes sure the operator has an admin key. With `configured` (OMNIMETER_ADMIN_KEY) that key becomes the
   * only admin key. Without it, a key is generated on the first start and returned so it can be shown
   * once; later starts return nothing.
   */
  async ensureAdminKey(configured: string | undefined): Promise<{ generated?: string }> {
    const db = this.database.db
    if (configured) {
      const keyHash = hashKey(configured)
      await db
        .updateTable("api_keys")
        .set({ revoked_at: new Date(this.clock.now()) })
        .where("kind", "=", "admin")
        .where("key_hash", "<>", keyHash)
        .where("revoked_at", "is", null)
        .execute()
      await insertApiKey(db, {
        kind: "admin",
        subscriptionId: null,
        keyHash,
        prefix: configured.slice(0, 12),
        label: "env",
      })
      this.cache.clear()
      return {}
    }
    if ((await countLiveAdminKeys(db)) > 0) return {}
    const key = newKey(ADMIN_PREFIX)
    await insertApiKey(db, {
      kind: "admin",
      subscriptionId: null,
      keyHash: hashKey(key),
      prefix: key.slice(0, 12),
      label: "generated",
    })
    return { generated: key }
  }

  async issueSubscriptionKey(subscriptionId: string, label: string | null): Promise<IssuedKey> {
    const key = newKey(SUBSCRIPTION_PREFIX)
    const row = await insertApiKey(this.database.db, {
      kind: "subscription",
      subscriptionId,
      keyHash: hashKey(key),
      prefix: key.slice(0, 12),
      label,
    })
    return { key, keyId: row.id, prefix: row.prefix, label: row.label, createdAt: row.createdAt }
  }

  /** Revokes a key of the subscription; false when it has no such live key. */
  async revokeSubscriptionKey(subscriptionId: string, keyId: string): Promise<boolean> {
    const revoked = await revokeSubscriptionKey(
      this.database.db,
      subscriptionId,
      keyId,
      new Date(this.clock.now()),
    )
    if (revoked) this.cache.delete(revoked.keyHash)
    return revoked !== undefined
  }

  listSubscriptionKeys(subscriptionId: string): Promise<ApiKeyRow[]> {
    return listSubscriptionKeys(this.database.db, subscriptionId)
  }

  /** The principal a bearer token stands for, or undefined for an unknown or revoked key. */
  async authenticate(token: string): Promise<Principal | undefined> {
    if (token.length < 16 || token.length > 200) return undefined
    const keyHash = hashKey(token)
    const now = this.clock.now()
    const cached = this.cache.get(keyHash)
    if (cached && cached.expires > now) return cached.principal
    const row = await findLiveApiKeyByHash(this.database.db, keyHash)
    const principal: Principal | undefined = !row
      ? undefined
      : row.kind === "admin" || row.subscriptionId === null
        ? { kind: "admin", keyId: row.id }
        : { kind: "subscription", subscriptionId: row.subscriptionId, keyId: row.id }
    if (this.cache.size > 10_000) this.cache.clear()
    this.cache.set(keyHash, { principal, expires: now + this.cacheTtlMs })
    return principal
  }
}
