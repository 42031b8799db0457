/**
 * The signed-in key. Kept in sessionStorage: it survives a reload of this tab and is gone when the tab
 * closes, so a key pasted on a shared machine does not linger.
 */
import { createContext, useContext } from "react"
import type { Api } from "./api/client.ts"
import type { ChannelCatalog, MeBody, SubscriptionBody } from "./api/types.ts"

const STORAGE_KEY = "omnimeter.api_key"

export function storedKey(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY)
  } catch {
    return null
  }
}

export function storeKey(key: string | null): void {
  try {
    if (key === null) window.sessionStorage.removeItem(STORAGE_KEY)
    else window.sessionStorage.setItem(STORAGE_KEY, key)
  } catch {
    // Storage can be disabled; the session then lasts until reload.
  }
}

/** What every page of a signed-in subscription view reads. */
export interface Workspace {
  api: Api
  me: MeBody
  subscription: SubscriptionBody
  catalog: ChannelCatalog
  /** Fetches the subscription again (quota, status) after a change. */
  refreshSubscription(): void
}

export const WorkspaceContext = createContext<Workspace | null>(null)

export function useWorkspace(): Workspace {
  const workspace = useContext(WorkspaceContext)
  if (!workspace) throw new Error("useWorkspace outside a signed-in subscription view")
  return workspace
}
