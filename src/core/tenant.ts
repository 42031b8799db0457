/**
 * Limits an operation to one subscription: what a subscription's API key may see. Without a scope the
 * caller is trusted with every subscription (the library in the operator's backend, the admin key).
 */
export interface TenantScope {
  subscriptionId: string
}
