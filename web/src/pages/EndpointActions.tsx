/**
 * Disable or enable, edit (URL, description, events) and delete one webhook endpoint, for the admin
 * console and the Alerts page alike. Deleting asks for a second click; the API's refusal appears next to
 * the field it names.
 */
import { useId, useState } from "react"
import { ALERT_TEXT } from "../alert-text.ts"
import type { AlertType, EndpointBody } from "../api/alert-types.ts"
import { type Api, ApiError } from "../api/client.ts"
import { ErrorMessage } from "../ui/async.tsx"
import "../dashboards.css"

/** The API's message for `field` (or a field under it), when the error names it. */
export function messageFor(error: ApiError | null, field: string): string | null {
  const blamed = error?.field
  return error && blamed && (blamed === field || blamed.startsWith(`${field}.`)) ? error.message : null
}

/** A labelled form field with the API's message for it. */
export function Field({
  id,
  label,
  error,
  children,
}: {
  id: string
  label: string
  error: string | null
  children: React.ReactNode
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {error ? (
        <p className="field-error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  )
}

/** `url` is the endpoint's API path; `onChanged` reloads the list after a change. */
export function EndpointActions({
  api,
  url,
  endpoint,
  onChanged,
}: {
  api: Api
  url: string
  endpoint: EndpointBody
  onChanged: () => void
}) {
  const id = useId()
  const [editing, setEditing] = useState(false)
  const [confirming, setConfirming] = useState(false)
  const [target, setTarget] = useState(endpoint.url)
  const [description, setDescription] = useState(endpoint.description ?? "")
  const [types, setTypes] = useState<string[]>(endpoint.event_types)
  const [error, setError] = useState<ApiError | null>(null)
  const act = async (fn: () => Promise<unknown>) => {
    setError(null)
    try {
      await fn()
      setEditing(false)
      setConfirming(false)
      onChanged()
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    }
  }
  const save = (event: React.FormEvent) => {
    event.preventDefault()
    void act(() =>
      api.patch(url, {
        url: target,
        description: description === "" ? null : description,
        event_types: types,
      }),
    )
  }
  const placed = ["url", "description", "event_types"].some((f) => messageFor(error, f))
  return (
    <>
      <div className="row-actions">
        <button
          type="button"
          className="secondary small"
          onClick={() => act(() => api.patch(url, { enabled: !endpoint.enabled }))}
        >
          {endpoint.enabled ? "Disable" : "Enable"}
        </button>
        <button type="button" className="secondary small" onClick={() => setEditing((e) => !e)}>
          {editing ? "Close editor" : "Edit"}
        </button>
        {confirming ? (
          <>
            <button type="button" className="danger small" onClick={() => act(() => api.delete(url))}>
              Delete this endpoint
            </button>
            <button type="button" className="link small" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </>
        ) : (
          <button type="button" className="secondary small" onClick={() => setConfirming(true)}>
            Delete…
          </button>
        )}
      </div>
      {editing ? (
        <form className="endpoint-edit" onSubmit={save} noValidate aria-label={`Edit ${endpoint.url}`}>
          <Field id={`${id}-url`} label="URL" error={messageFor(error, "url")}>
            <input id={`${id}-url`} value={target} onChange={(e) => setTarget(e.target.value)} />
          </Field>
          <Field id={`${id}-description`} label="Description" error={messageFor(error, "description")}>
            <input
              id={`${id}-description`}
              value={description}
              onChange={(e) => setDescription(e.target.value)}
            />
          </Field>
          <fieldset className="widget-channels">
            <legend>Events</legend>
            {(Object.entries(ALERT_TEXT) as [AlertType, string][]).map(([type, text]) => (
              <label key={type}>
                <input
                  type="checkbox"
                  checked={types.includes(type)}
                  onChange={(e) =>
                    setTypes((current) =>
                      e.target.checked ? [...current, type] : current.filter((t) => t !== type),
                    )
                  }
                />
                {text}
              </label>
            ))}
          </fieldset>
          {messageFor(error, "event_types") ? (
            <p className="field-error" role="alert">
              {messageFor(error, "event_types")}
            </p>
          ) : null}
          <div className="form-actions">
            <button type="submit">Save endpoint</button>
          </div>
        </form>
      ) : null}
      {error && !placed ? <ErrorMessage error={error} /> : null}
    </>
  )
}
