/**
 * Per-channel settings. Each field says its rule in plain words, checks it before sending, and shows the
 * rule again when the API refuses a value (the API stays the judge: a refusal it names is shown next to
 * the field). Channels the plan lacks are shown locked, with the plan that unlocks them, and their fields
 * cannot be edited.
 */
import { type FormEvent, useState } from "react"
import { ApiError } from "../api/client.ts"
import type { ChannelCatalogEntry, ChannelConfig, ChannelConfigList } from "../api/types.ts"
import { ChannelName } from "../channels.tsx"
import { NUMBER_FIELDS, type NumberField, plainFieldError } from "../config-rules.ts"
import { formatInteger, formatMultiplier } from "../format.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { SharedCapacityForm } from "./SharedCapacity.tsx"

type Draft = Record<NumberField, string> & { enabled: boolean }

function draftOf(config: ChannelConfig): Draft {
  return {
    enabled: config.enabled,
    requests_per_minute: String(config.requests_per_minute),
    tokens_per_minute: String(config.tokens_per_minute),
    max_message_length: String(config.max_message_length),
    token_multiplier: String(config.token_multiplier),
    priority: String(config.priority),
  }
}

/** What changed, as the API expects it. Text that is not a number is sent as typed: the API names the field. */
function patchOf(config: ChannelConfig, draft: Draft): Record<string, unknown> {
  const patch: Record<string, unknown> = {}
  if (draft.enabled !== config.enabled) patch.enabled = draft.enabled
  for (const { key } of NUMBER_FIELDS) {
    const text = draft[key].trim()
    if (text === String(config[key])) continue
    const value = text === "" ? Number.NaN : Number(text)
    patch[key] = Number.isFinite(value) ? value : text
  }
  return patch
}

export function Configuration() {
  const { api, subscription, catalog } = useWorkspace()
  const [state, retry] = useAsync(
    () =>
      api.get<ChannelConfigList>(
        `/api/onboarding/subscription/${encodeURIComponent(subscription.id)}/channels/config`,
      ),
    `${subscription.id}:config`,
  )
  return (
    <div className="page">
      <div className="page-head">
        <h1>Configuration</h1>
        <p className="muted">
          Per-channel limits for <strong>{subscription.entity_id}</strong> on the{" "}
          <strong>{subscription.plan}</strong> plan. Changes apply to the next turn.
        </p>
        <DownloadCsv
          path={`/api/onboarding/subscription/${encodeURIComponent(subscription.id)}/channels/config`}
        />
      </div>
      <SharedCapacityForm />
      <AsyncView state={state} retry={retry} label="Loading channel settings…">
        {(list) => (
          <div className="config-grid">
            {list.channels.map((config) => (
              <ChannelForm
                key={config.channel}
                initial={config}
                entry={catalog.channels.find((c) => c.channel === config.channel)}
              />
            ))}
          </div>
        )}
      </AsyncView>
    </div>
  )
}

function ChannelForm({ initial, entry }: { initial: ChannelConfig; entry: ChannelCatalogEntry | undefined }) {
  const { api, subscription } = useWorkspace()
  const [config, setConfig] = useState(initial)
  const [draft, setDraft] = useState(() => draftOf(initial))
  const [error, setError] = useState<ApiError | null>(null)
  const [checks, setChecks] = useState<Partial<Record<NumberField, string>>>({})
  const [saved, setSaved] = useState(false)
  const [busy, setBusy] = useState(false)
  const edit = (next: Draft) => {
    setDraft(next)
    setSaved(false)
    setChecks({})
  }

  const patch = patchOf(config, draft)
  const dirty = Object.keys(patch).length > 0
  const locked = !config.in_plan
  const id = (field: string) => `${config.channel}-${field}`
  const fieldError = (field: string) => {
    const checked = checks[field as NumberField]
    if (checked) return checked
    if (!error || error.field !== field) return null
    const isNumber = NUMBER_FIELDS.some((f) => f.key === field)
    // The API's own words are a validator's ("must be <= 10"); the rule in plain words says more.
    if (isNumber) {
      return plainFieldError(field as NumberField, draft[field as NumberField]) ?? error.message
    }
    const prefix = `${field}: `
    return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
  }

  async function submit(event: FormEvent) {
    event.preventDefault()
    if (!dirty || locked) return
    const found: Partial<Record<NumberField, string>> = {}
    for (const { key } of NUMBER_FIELDS) {
      if (!(key in patch)) continue
      const message = plainFieldError(key, draft[key])
      if (message) found[key] = message
    }
    setChecks(found)
    if (Object.keys(found).length > 0) {
      setError(null)
      return
    }
    setBusy(true)
    setError(null)
    try {
      const updated = await api.put<ChannelConfig>(
        `/api/onboarding/subscription/${encodeURIComponent(subscription.id)}/channels/${config.channel}/config`,
        patch,
      )
      setConfig(updated)
      setDraft(draftOf(updated))
      setSaved(true)
    } catch (caught) {
      setError(
        caught instanceof ApiError
          ? caught
          : new ApiError(0, "client_error", String(caught), undefined, undefined),
      )
    } finally {
      setBusy(false)
    }
  }

  const formError =
    error && !NUMBER_FIELDS.some((f) => f.key === error.field) && error.field !== "enabled" ? error : null
  const enabledError = fieldError("enabled")
  return (
    <form
      className={`panel channel-form${locked ? " locked" : ""}`}
      onSubmit={submit}
      noValidate
      aria-labelledby={id("title")}
      data-channel={config.channel}
    >
      <div className="channel-form-head">
        <h2 id={id("title")}>
          <ChannelName channel={config.channel} />
        </h2>
        {locked ? (
          <span className="badge badge-locked" data-testid="locked">
            <LockIcon />
            {config.required_plan ? `${config.required_plan} plan` : "not in plan"}
          </span>
        ) : (
          <span className={`badge ${config.enabled ? "badge-on" : "badge-off"}`}>
            {config.enabled ? "enabled" : "disabled"}
          </span>
        )}
      </div>
      {locked ? (
        <p className="lock-note" id={id("lock")}>
          Not in the {subscription.plan} plan. The <strong>{config.required_plan ?? "a higher"}</strong> plan
          unlocks {entry?.label ?? config.channel}.
        </p>
      ) : null}
      <fieldset className="channel-fields" disabled={locked}>
        <legend className="sr-only">{entry?.label ?? config.channel} settings</legend>
        <div className="switch-row">
          <input
            id={id("enabled")}
            type="checkbox"
            checked={draft.enabled}
            onChange={(e) => edit({ ...draft, enabled: e.target.checked })}
            aria-invalid={enabledError ? true : undefined}
            aria-describedby={enabledError ? id("enabled-error") : locked ? id("lock") : undefined}
          />
          <label htmlFor={id("enabled")}>Enabled</label>
        </div>
        {enabledError ? (
          <p className="field-error" id={id("enabled-error")} role="alert">
            {enabledError}
          </p>
        ) : null}
        <div className="fields">
          {NUMBER_FIELDS.map((field) => {
            const message = fieldError(field.key)
            const defaultValue = entry?.defaults[field.key]
            const overridden = config.overridden.includes(field.key)
            return (
              <div className="field" key={field.key}>
                <label htmlFor={id(field.key)}>{field.label}</label>
                <input
                  id={id(field.key)}
                  name={field.key}
                  inputMode={field.key === "token_multiplier" ? "decimal" : "numeric"}
                  value={draft[field.key]}
                  onChange={(e) => edit({ ...draft, [field.key]: e.target.value })}
                  aria-invalid={message ? true : undefined}
                  aria-describedby={`${id(field.key)}-hint${message ? ` ${id(field.key)}-error` : ""}`}
                />
                <span className="hint" id={`${id(field.key)}-hint`}>
                  {field.hint}
                  {defaultValue !== undefined ? (
                    <>
                      {" · default "}
                      {field.key === "token_multiplier"
                        ? formatMultiplier(defaultValue)
                        : formatInteger(defaultValue)}
                      {overridden ? <span className="badge badge-custom">custom</span> : null}
                    </>
                  ) : null}
                </span>
                {message ? (
                  <span className="field-error" id={`${id(field.key)}-error`} role="alert">
                    {message}
                  </span>
                ) : null}
              </div>
            )
          })}
        </div>
      </fieldset>
      {formError ? (
        <p className="field-error" role="alert">
          {formError.message}
        </p>
      ) : null}
      <div className="form-actions" hidden={locked}>
        <button type="submit" disabled={!dirty || busy}>
          {busy ? "Saving…" : "Save"}
        </button>
        <button
          type="button"
          className="secondary"
          disabled={!dirty || busy}
          onClick={() => {
            setDraft(draftOf(config))
            setError(null)
            setChecks({})
          }}
        >
          Reset
        </button>
        <span className="saved" role="status">
          {saved ? "Saved" : ""}
        </span>
      </div>
    </form>
  )
}

function LockIcon() {
  return (
    <svg className="icon" viewBox="0 0 16 16" width="12" height="12" aria-hidden="true" focusable="false">
      <path
        d="M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5A1 1 0 0 1 13 8v6a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V8a1 1 0 0 1 1-1h.5Zm1.5 0h4V5a2 2 0 1 0-4 0v2Z"
        fill="currentColor"
      />
    </svg>
  )
}
