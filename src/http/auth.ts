/**
 * Authentication (`Authorization: Bearer <key>`) and the two authorization rules every route uses:
 * admin-only, or "this subscription or the admin". A subscription key asking about another subscription
 * gets the same 404 as a subscription that does not exist: no existence leak.
 */
import type { FastifyReply, FastifyRequest } from "fastify"
import type { KeyService, Principal } from "../auth/keys.js"
import { OmnimeterError } from "../core/errors.js"
import type { TenantScope } from "../core/tenant.js"

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | undefined
  }
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (!header) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/**
 * An onRequest hook that requires a valid key and records who it belongs to. It runs before the body is
 * read: a caller without a valid key makes the server buffer and parse nothing (the error handler then
 * closes the connection instead of reading the rest of the body).
 */
export function authenticate(keys: KeyService) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const token = bearer(request)
    if (!token) throw new OmnimeterError("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.")
    const principal = await keys.authenticate(token)
    if (!principal) throw new OmnimeterError("unauthorized", "The API key is unknown or revoked.")
    request.principal = principal
  }
}

function principalOf(request: FastifyRequest): Principal {
  if (!request.principal)
    throw new OmnimeterError("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.")
  return request.principal
}

/** Throws unless the caller holds the admin key. */
export function requireAdmin(request: FastifyRequest): void {
  if (principalOf(request).kind !== "admin") {
    throw new OmnimeterError("forbidden", "This operation needs the admin key.")
  }
}

/**
 * The tenant scope for acting on `subscriptionId`: none for the admin (trusted with every subscription),
 * the subscription itself for its own key, and a 404 for any other subscription.
 */
export function scopeFor(request: FastifyRequest, subscriptionId: string): TenantScope | undefined {
  const principal = principalOf(request)
  if (principal.kind === "admin") return undefined
  if (principal.subscriptionId !== subscriptionId) {
    throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
  }
  return { subscriptionId }
}

/** The scope of whatever the caller's key is limited to (undefined for the admin). */
export function callerScope(request: FastifyRequest): TenantScope | undefined {
  const principal = principalOf(request)
  return principal.kind === "admin" ? undefined : { subscriptionId: principal.subscriptionId }
}
