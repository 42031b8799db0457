/**
 * "Download CSV" for a table: the same API operation that fills the table, asked for `format=csv`, saved
 * under the name the server gives. The server streams it; the browser holds the file once, as a download.
 */
import { useContext, useState } from "react"
import type { Api, ApiError, Query } from "../api/client.ts"
import { WorkspaceContext } from "../session.ts"

export function DownloadCsv({
  path,
  query,
  label = "Download CSV",
  api: given,
}: {
  path: string
  query?: Query
  label?: string
  /** The client to ask with; by default the signed-in subscription view's (the admin console passes its own). */
  api?: Api
}) {
  const workspace = useContext(WorkspaceContext)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const api = given ?? workspace?.api
  if (!api) throw new Error("DownloadCsv outside a subscription view needs its api")
  const download = async () => {
    setBusy(true)
    setError(null)
    try {
      const { blob, filename } = await api.csv(path, query)
      const url = URL.createObjectURL(blob)
      const link = document.createElement("a")
      link.href = url
      link.download = filename
      document.body.append(link)
      link.click()
      link.remove()
      setTimeout(() => URL.revokeObjectURL(url), 10_000)
    } catch (failure) {
      setError((failure as ApiError).message)
    } finally {
      setBusy(false)
    }
  }
  return (
    <span className="download-csv">
      <button type="button" className="secondary small" onClick={download} disabled={busy}>
        {busy ? "Preparing…" : label}
      </button>
      {error ? (
        <span className="field-error" role="alert">
          {error}
        </span>
      ) : null}
    </span>
  )
}
