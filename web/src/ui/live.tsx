/**
 * Live view: a page's data fetched again on its own while the page is open. Polling every 10 s while the
 * tab is visible; while it is hidden the interval doubles after each poll, up to 5 minutes, and a return to
 * the tab refreshes at once. The switch (on by default) is remembered per tab; the time of the last update
 * is shown next to it. A refresh keeps the page's data on screen until the new answer arrives.
 */
import { useCallback, useEffect, useRef, useState } from "react"
import { ApiError } from "../api/client.ts"
import type { AsyncState } from "./async.tsx"

function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new ApiError(0, "client_error", message, undefined, undefined)
}

const VISIBLE_MS = 10_000
const HIDDEN_MAX_MS = 300_000
const STORAGE_KEY = "omnimeter.live"

function storedLive(): boolean {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY) !== "off"
  } catch {
    return true
  }
}

/** A counter that moves on each poll while `enabled`; see the module comment for the schedule. */
export function usePollTick(enabled: boolean): number {
  const [tick, setTick] = useState(0)
  useEffect(() => {
    if (!enabled) return
    let delay = VISIBLE_MS
    let timer: ReturnType<typeof setTimeout> | undefined
    const schedule = () => {
      timer = setTimeout(() => {
        setTick((n) => n + 1)
        delay = document.hidden ? Math.min(HIDDEN_MAX_MS, delay * 2) : VISIBLE_MS
        schedule()
      }, delay)
    }
    const onVisibility = () => {
      if (document.hidden) return
      clearTimeout(timer)
      delay = VISIBLE_MS
      setTick((n) => n + 1)
      schedule()
    }
    schedule()
    document.addEventListener("visibilitychange", onVisibility)
    return () => {
      clearTimeout(timer)
      document.removeEventListener("visibilitychange", onVisibility)
    }
  }, [enabled])
  return tick
}

export interface Live<T> {
  state: AsyncState<T>
  retry: () => void
  enabled: boolean
  setEnabled: (on: boolean) => void
  /** When the data on screen arrived. */
  updatedAt: Date | null
  /** A refresh failed; the data on screen is older (the switch shows it). */
  refreshError: ApiError | null
}

/**
 * Like useAsync, refreshed by the live schedule while the switch is on. `key` names what `load` depends
 * on; a new key loads afresh (with the loading state), a poll refreshes in place.
 */
export function useLive<T>(load: () => Promise<T>, key: string): Live<T> {
  const [enabled, setEnabledState] = useState(storedLive)
  const setEnabled = useCallback((on: boolean) => {
    setEnabledState(on)
    try {
      window.sessionStorage.setItem(STORAGE_KEY, on ? "on" : "off")
    } catch {
      // Storage can be disabled; the switch then lasts until reload.
    }
  }, [])
  const tick = usePollTick(enabled)
  const [state, setState] = useState<AsyncState<T>>({ status: "loading" })
  const [attempt, setAttempt] = useState(0)
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null)
  const [refreshError, setRefreshError] = useState<ApiError | null>(null)
  const loadRef = useRef(load)
  loadRef.current = load
  const handledTick = useRef(tick)

  // A new key (or a retry) loads afresh, showing the loading state.
  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` names everything `load` depends on
  useEffect(() => {
    let live = true
    setState({ status: "loading" })
    loadRef.current().then(
      (data) => {
        if (!live) return
        setState({ status: "ready", data })
        setUpdatedAt(new Date())
        setRefreshError(null)
      },
      (error: unknown) => live && setState({ status: "error", error: asApiError(error) }),
    )
    return () => {
      live = false
    }
  }, [key, attempt])

  // A poll refreshes in place: the data stays on screen until the new answer replaces it.
  useEffect(() => {
    if (tick === handledTick.current) return
    handledTick.current = tick
    let live = true
    loadRef.current().then(
      (data) => {
        if (!live) return
        setState({ status: "ready", data })
        setUpdatedAt(new Date())
        setRefreshError(null)
      },
      (error: unknown) => live && setRefreshError(asApiError(error)),
    )
    return () => {
      live = false
    }
  }, [tick])

  const retry = useCallback(() => setAttempt((n) => n + 1), [])
  return { state, retry, enabled, setEnabled, updatedAt, refreshError }
}

/** The on/off switch of a live page and the time of its last update. */
export function LiveSwitch({
  live,
}: {
  live: Pick<Live<unknown>, "enabled" | "setEnabled" | "updatedAt" | "refreshError">
}) {
  return (
    <div className="live" data-testid="live">
      <label className="live-switch">
        <input
          type="checkbox"
          role="switch"
          aria-checked={live.enabled}
          checked={live.enabled}
          onChange={(event) => live.setEnabled(event.currentTarget.checked)}
        />
        Live
      </label>
      <span className="muted small" aria-live="polite">
        {live.updatedAt
          ? `Updated ${live.updatedAt.toLocaleTimeString("en-US", { hour12: false })}`
          : "Not loaded yet"}
        {live.refreshError ? ` · refresh failed: ${live.refreshError.message}` : ""}
      </span>
    </div>
  )
}
