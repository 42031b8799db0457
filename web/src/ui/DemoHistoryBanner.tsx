/**
 * The demo's history as it loads: `omnimeter demo` prints its keys once each subscription's current billing
 * period is written and writes the older days in the background. While it does, this says how far it is and
 * that figures before a day are incomplete; once done, that the history is complete. Polls
 * `GET /api/demo/history` every 3 s while loading; a server that runs no demo answers `none` and shows nothing.
 */
import { useEffect, useState } from "react"
import type { Api } from "../api/client.ts"
import type { DemoHistoryBody } from "../api/types.ts"
import { formatInteger, formatLocalTime } from "../format.ts"

const LOADING_POLL_MS = 3_000
const RETRY_MS = 15_000

export function DemoHistoryBanner({ api }: { api: Api }) {
  const [status, setStatus] = useState<DemoHistoryBody | null>(null)
  const [sawLoading, setSawLoading] = useState(false)
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async () => {
      try {
        const next = await api.get<DemoHistoryBody>("/api/demo/history")
        if (stopped) return
        setStatus(next)
        if (next.state === "loading") {
          setSawLoading(true)
          timer = setTimeout(poll, LOADING_POLL_MS)
        }
      } catch {
        // A server without this endpoint (older) or a passing error: the banner is a hint, try later.
        if (!stopped) timer = setTimeout(poll, RETRY_MS)
      }
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [api])

  if (status?.state === "loading") {
    return (
      <div className="history-banner" role="status" data-testid="demo-history">
        <strong>The demo history is still loading</strong>: {formatInteger(status.loaded_turns)} of{" "}
        {formatInteger(status.total_turns)} turns written.
        {status.complete_since
          ? ` Figures before ${formatLocalTime(status.complete_since)} are incomplete;`
          : null}{" "}
        the broadcast's alerts and the outcomes come last. Quota and new turns are exact already.
      </div>
    )
  }
  if (status?.state === "failed") {
    return (
      <div className="history-banner history-failed" role="alert" data-testid="demo-history">
        <strong>The demo history failed to load</strong>: {status.error}
      </div>
    )
  }
  if (status?.state === "loaded" && sawLoading) {
    return (
      <div className="history-banner history-loaded" role="status" data-testid="demo-history">
        <strong>The demo history is loaded</strong>: all {formatInteger(status.total_turns)} turns. Reload a
        page to see its full figures.
      </div>
    )
  }
  return null
}
