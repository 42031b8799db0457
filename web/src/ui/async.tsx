/**
 * Loading data with its three visible states: loading, failed (with the API's message and request id, and a
 * retry), and loaded.
 */
import { type ReactNode, useCallback, useEffect, useState } from "react"
import { ApiError } from "../api/client.ts"

export type AsyncState<T> =
  | { status: "loading" }
  | { status: "error"; error: ApiError }
  | { status: "ready"; data: T }

function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error
  return new ApiError(
    0,
    "client_error",
    error instanceof Error ? error.message : String(error),
    undefined,
    undefined,
  )
}

/** Runs `load` whenever `key` changes; `reload` runs it again. Stale answers are dropped. */
export function useAsync<T>(load: () => Promise<T>, key: string): [AsyncState<T>, () => void] {
  const [state, setState] = useState<AsyncState<T>>({ status: "loading" })
  const [attempt, setAttempt] = useState(0)
  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` names everything `load` depends on
  useEffect(() => {
    let live = true
    setState({ status: "loading" })
    load().then(
      (data) => live && setState({ status: "ready", data }),
      (error: unknown) => live && setState({ status: "error", error: asApiError(error) }),
    )
    return () => {
      live = false
    }
  }, [key, attempt])
  const reload = useCallback(() => setAttempt((n) => n + 1), [])
  return [state, reload]
}

export function Loading({ label }: { label: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}
    </div>
  )
}

export function ErrorMessage({ error, retry }: { error: ApiError; retry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <strong>
        {error.status ? `The API answered ${error.status} ${error.code}` : "Something went wrong"}
      </strong>
      <p>{error.message}</p>
      {error.requestId ? <p className="muted small">Request id: {error.requestId}</p> : null}
      {retry ? (
        <button type="button" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  )
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <strong>{title}</strong>
      {children ? <p>{children}</p> : null}
    </div>
  )
}

/** Renders `state` with the standard loading and error views. */
export function AsyncView<T>({
  state,
  retry,
  label,
  children,
}: {
  state: AsyncState<T>
  retry: () => void
  label: string
  children: (data: T) => ReactNode
}) {
  if (state.status === "loading") return <Loading label={label} />
  if (state.status === "error") return <ErrorMessage error={state.error} retry={retry} />
  return <>{children(state.data)}</>
}
