/**
 * Adds a webhook endpoint: URL, description and the event types, sent as typed; the API validates (URL
 * scheme, private addresses, event types) and its message appears next to the field it names. The signing
 * secret is in the creation answer only, so it is shown here once, to be stored by the user.
 */
import { useId, useState } from "react"
import { ALERT_TEXT } from "../alert-text.ts"
import type { AlertType } from "../api/alert-types.ts"
import { ApiError } from "../api/client.ts"
import { useWorkspace } from "../session.ts"
import { ErrorMessage } from "../ui/async.tsx"

interface Created {
  id?: string
  url?: string
  secret?: string
  error?: { code: string; message: string; field?: string }
}

export function WebhookForm({ onCreated }: { onCreated: () => void }) {
  const { api, subscription } = useWorkspace()
  const id = useId()
  const [url, setUrl] = useState("")
  const [description, setDescription] = useState("")
  const [types, setTypes] = useState<AlertType[]>(Object.keys(ALERT_TEXT) as AlertType[])
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const [secret, setSecret] = useState<{ url: string; secret: string } | null>(null)

  const fieldOf = (e: ApiError | null) => e?.field?.split(".")[0]
  const blamed = fieldOf(error)
  const message = (field: string) => (blamed === field && error ? error.message : null)

  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    setSecret(null)
    try {
      const answer = await api.postRaw<Created>(
        `/api/subscriptions/${encodeURIComponent(subscription.id)}/webhooks`,
        { url, description: description === "" ? null : description, event_types: types },
      )
      if (answer.status === 201 && answer.body.secret && answer.body.url) {
        setSecret({ url: answer.body.url, secret: answer.body.secret })
        setUrl("")
        setDescription("")
        onCreated()
      } else {
        setError(
          new ApiError(
            answer.status,
            answer.body.error?.code ?? "http_error",
            answer.body.error?.message ?? `The server answered ${answer.status}.`,
            answer.body.error?.field,
            answer.headers.get("x-request-id") ?? undefined,
          ),
        )
      }
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : null)
    } finally {
      setBusy(false)
    }
  }

  const toggle = (type: AlertType, on: boolean) =>
    setTypes((current) => (on ? [...current, type] : current.filter((t) => t !== type)))

  return (
    <form className="webhook-form" onSubmit={submit} aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Add an endpoint</h3>
      <div className="field">
        <label htmlFor={`${id}-url`}>URL</label>
        <input
          id={`${id}-url`}
          type="url"
          required
          value={url}
          placeholder="https://example.com/omnimeter"
          onChange={(e) => setUrl(e.target.value)}
          aria-invalid={message("url") ? true : undefined}
          aria-describedby={message("url") ? `${id}-url-error` : undefined}
        />
        {message("url") ? (
          <p className="field-error" id={`${id}-url-error`}>
            {message("url")}
          </p>
        ) : null}
      </div>
      <div className="field">
        <label htmlFor={`${id}-description`}>Description (optional)</label>
        <input
          id={`${id}-description`}
          value={description}
          maxLength={200}
          onChange={(e) => setDescription(e.target.value)}
        />
      </div>
      <fieldset className="event-types">
        <legend>Events</legend>
        {(Object.entries(ALERT_TEXT) as [AlertType, string][]).map(([type, text]) => (
          <label key={type}>
            <input
              type="checkbox"
              checked={types.includes(type)}
              onChange={(e) => toggle(type, e.target.checked)}
            />
            {text}
          </label>
        ))}
        {message("event_types") ? <p className="field-error">{message("event_types")}</p> : null}
      </fieldset>
      {error && !["url", "event_types"].includes(blamed ?? "") ? <ErrorMessage error={error} /> : null}
      <div className="form-actions">
        <button type="submit" disabled={busy}>
          {busy ? "Adding…" : "Add endpoint"}
        </button>
      </div>
      {secret ? (
        <div className="secret" role="status" data-testid="webhook-secret">
          <strong>Added {secret.url}.</strong> Its signing secret, shown this once — store it now:
          <code>{secret.secret}</code>
        </div>
      ) : null}
    </form>
  )
}
