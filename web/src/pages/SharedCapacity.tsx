/**
 * The subscription's shared capacity, priority curve and quota reserve (issue 13): a form on the
 * Configuration page, and a panel on the Overview showing what was shed for higher priorities. As
 * everywhere, the API judges validity: the form sends what was typed and shows the API's message next to
 * the field it names.
 */
import { type FormEvent, useState } from "react"
import { ApiError } from "../api/client.ts"
import type { ComprehensiveAnalyticsBody, SubscriptionBody } from "../api/types.ts"
import { ChannelName } from "../channels.tsx"
import { formatInteger, formatPercent } from "../format.ts"
import { useWorkspace } from "../session.ts"

const FIELDS = [
  {
    key: "requests_per_minute",
    label: "Shared requests per minute",
    hint: "all channels together; empty: no shared limit",
  },
  {
    key: "tokens_per_minute",
    label: "Shared tokens per minute",
    hint: "e.g. your provider's TPM limit; empty: no shared limit",
  },
  {
    key: "priority_curve",
    label: "Priority curve",
    hint: "percent of the capacity priorities 1…10 may fill, non-decreasing; empty: the default",
  },
  {
    key: "quota_reserve_percent",
    label: "Quota reserve (%)",
    hint: "the last part of the period's quota, 0–50, kept for high priorities",
  },
  {
    key: "quota_reserve_min_priority",
    label: "Reserve for priority",
    hint: "channels of at least this priority may use the reserve",
  },
] as const

type Field = (typeof FIELDS)[number]["key"]
type Draft = Record<Field, string>

function draftOf(s: SubscriptionBody): Draft {
  return {
    requests_per_minute: s.requests_per_minute === null ? "" : String(s.requests_per_minute),
    tokens_per_minute: s.tokens_per_minute === null ? "" : String(s.tokens_per_minute),
    priority_curve: s.priority_curve === null ? "" : s.priority_curve.join(", "),
    quota_reserve_percent: String(s.quota_reserve_percent),
    quota_reserve_min_priority: String(s.quota_reserve_min_priority),
  }
}

/** A number when the text is one, else the text itself, so that the API names the field. */
function numberOrText(text: string): unknown {
  const value = Number(text)
  return text !== "" && Number.isFinite(value) ? value : text
}

/** What changed, as the API takes it: an emptied capacity or curve is null. */
function patchOf(s: SubscriptionBody, draft: Draft): Record<string, unknown> {
  const original = draftOf(s)
  const patch: Record<string, unknown> = {}
  for (const { key } of FIELDS) {
    const text = draft[key].trim()
    if (text === original[key]) continue
    if (key === "priority_curve")
      patch[key] = text === "" ? null : text.split(",").map((part) => numberOrText(part.trim()))
    else if (text === "" && (key === "requests_per_minute" || key === "tokens_per_minute")) patch[key] = null
    else patch[key] = numberOrText(text)
  }
  return patch
}

export function SharedCapacityForm() {
  const { api, subscription, refreshSubscription } = useWorkspace()
  const [draft, setDraft] = useState(() => draftOf(subscription))
  const [current, setCurrent] = useState(subscription)
  const [error, setError] = useState<ApiError | null>(null)
  const [saved, setSaved] = useState(false)
  const [busy, setBusy] = useState(false)
  const patch = patchOf(current, draft)
  const dirty = Object.keys(patch).length > 0
  const fieldError = (field: string) => {
    if (!error?.field?.startsWith(field)) return null
    const prefix = `${error.field}: `
    return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message
  }

  async function submit(event: FormEvent) {
    event.preventDefault()
    if (!dirty) return
    setBusy(true)
    setError(null)
    try {
      const updated = await api.patch<SubscriptionBody>(
        `/api/subscriptions/${encodeURIComponent(current.id)}`,
        patch,
      )
      setCurrent(updated)
      setDraft(draftOf(updated))
      setSaved(true)
      refreshSubscription()
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

  const formError = error && !FIELDS.some((f) => error.field?.startsWith(f.key)) ? error : null
  return (
    <form
      className="panel shared-capacity"
      onSubmit={submit}
      noValidate
      aria-labelledby="shared-capacity-title"
      data-testid="shared-capacity-form"
    >
      <h2 id="shared-capacity-title">Shared capacity and priority</h2>
      <p className="muted small">
        A capacity shared by all channels. When its use in the last minute passes what a channel's priority
        may fill, that channel's turns are shed (<code>capacity_shed</code>), keeping the rest of the minute
        for higher priorities.
      </p>
      <CurveTable curve={current.effective_priority_curve} />
      <div className="fields">
        {FIELDS.map((field) => {
          const message = fieldError(field.key)
          const id = `shared-${field.key}`
          return (
            <div className="field" key={field.key}>
              <label htmlFor={id}>{field.label}</label>
              <input
                id={id}
                name={field.key}
                inputMode={field.key === "priority_curve" ? "text" : "numeric"}
                value={draft[field.key]}
                onChange={(e) => {
                  setDraft({ ...draft, [field.key]: e.target.value })
                  setSaved(false)
                }}
                aria-invalid={message ? true : undefined}
                aria-describedby={`${id}-hint${message ? ` ${id}-error` : ""}`}
              />
              <span className="hint" id={`${id}-hint`}>
                {field.hint}
              </span>
              {message ? (
                <span className="field-error" id={`${id}-error`} role="alert">
                  {message}
                </span>
              ) : null}
            </div>
          )
        })}
      </div>
      {formError ? (
        <p className="field-error" role="alert">
          {formError.message}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" disabled={!dirty || busy}>
          {busy ? "Saving…" : "Save"}
        </button>
        <button
          type="button"
          className="secondary"
          disabled={!dirty || busy}
          onClick={() => {
            setDraft(draftOf(current))
            setError(null)
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

/** The curve in effect as a table: priority, and the percent of the capacity it may fill. */
function CurveTable({ curve }: { curve: number[] }) {
  return (
    <table className="curve-table" data-testid="priority-curve">
      <caption className="muted small">Percent of the shared capacity each priority may fill</caption>
      <thead>
        <tr>
          <th scope="row">Priority</th>
          {curve.map((_, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the index is the priority
            <th scope="col" key={i}>
              {i + 1}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        <tr>
          <th scope="row">May fill</th>
          {curve.map((percent, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: the index is the priority
            <td key={i}>{formatPercent(percent)}</td>
          ))}
        </tr>
      </tbody>
    </table>
  )
}

/** The Overview's panel: the shared capacity, the reserve, and what each channel had shed in the period. */
export function SheddingPanel({ analytics }: { analytics: ComprehensiveAnalyticsBody }) {
  const { subscription } = useWorkspace()
  const capacity = [
    subscription.requests_per_minute === null
      ? null
      : `${formatInteger(subscription.requests_per_minute)} requests`,
    subscription.tokens_per_minute === null
      ? null
      : `${formatInteger(subscription.tokens_per_minute)} tokens`,
  ].filter((part) => part !== null)
  const rows = analytics.channels
    .map((c) => ({
      channel: c.channel,
      shed: c.denied_by_reason.capacity_shed,
      reserved: c.denied_by_reason.quota_reserved,
      turns: c.message_count + c.denied_count,
    }))
    .filter((r) => r.shed > 0 || r.reserved > 0)
  const totals = analytics.totals.denied_by_reason
  if (capacity.length === 0 && subscription.quota_reserve_percent === 0 && rows.length === 0) return null
  return (
    <section className="panel" aria-labelledby="shedding-title" data-testid="shedding">
      <h2 id="shedding-title">Shared capacity and shedding</h2>
      <dl className="quota-facts">
        <div>
          <dt>Shared capacity</dt>
          <dd data-testid="shared-capacity">
            {capacity.length > 0 ? `${capacity.join(" and ")} per minute` : "none"}
          </dd>
        </div>
        <div>
          <dt>Quota reserve</dt>
          <dd data-testid="quota-reserve">
            {subscription.quota_reserve_percent > 0
              ? `${formatPercent(subscription.quota_reserve_percent)} for priority ${subscription.quota_reserve_min_priority}+`
              : "none"}
          </dd>
        </div>
        <div>
          <dt>Shed for priority</dt>
          <dd data-testid="shed-total">{formatInteger(totals.capacity_shed)}</dd>
        </div>
        <div>
          <dt>Refused by the reserve</dt>
          <dd data-testid="reserved-total">{formatInteger(totals.quota_reserved)}</dd>
        </div>
      </dl>
      {rows.length > 0 ? (
        <table className="data-table" data-testid="shedding-table">
          <thead>
            <tr>
              <th scope="col">Channel</th>
              <th scope="col">Shed (capacity)</th>
              <th scope="col">Refused (reserve)</th>
              <th scope="col">Share of its turns</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.channel} data-channel={r.channel}>
                <th scope="row">
                  <ChannelName channel={r.channel} />
                </th>
                <td>{formatInteger(r.shed)}</td>
                <td>{formatInteger(r.reserved)}</td>
                <td>
                  {r.turns > 0
                    ? formatPercent(Math.round((1000 * (r.shed + r.reserved)) / r.turns) / 10)
                    : "–"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted small">Nothing was shed in this period.</p>
      )}
    </section>
  )
}
