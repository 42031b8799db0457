/**
 * A tiny client-side router: the path picks the page, the query carries the subscription and the period,
 * so a reload or a shared link shows the same view. The server answers every page path with index.html.
 */
import { useCallback, useEffect, useState } from "react"

export interface Location {
  path: string
  query: URLSearchParams
}

function current(): Location {
  return { path: window.location.pathname, query: new URLSearchParams(window.location.search) }
}

const listeners = new Set<() => void>()

/** Goes to `path` (with its query), adding a history entry unless `replace`. */
export function navigate(path: string, replace = false): void {
  if (replace) window.history.replaceState(null, "", path)
  else window.history.pushState(null, "", path)
  for (const listener of listeners) listener()
}

/** The current location, re-rendering on navigation and on the back button. */
export function useLocation(): Location {
  const [location, setLocation] = useState(current)
  useEffect(() => {
    const update = () => setLocation(current())
    listeners.add(update)
    window.addEventListener("popstate", update)
    return () => {
      listeners.delete(update)
      window.removeEventListener("popstate", update)
    }
  }, [])
  return location
}

/** Builds a path with a query, dropping empty values. */
export function href(path: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value)
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

/** An onClick for in-app links: lets modified clicks (new tab) through, handles plain ones here. */
export function useLinkHandler(): (event: React.MouseEvent<HTMLAnchorElement>) => void {
  return useCallback((event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey)
      return
    event.preventDefault()
    navigate(event.currentTarget.getAttribute("href") ?? "/")
  }, [])
}
