/**
 * The turn log: a subscription's turns, newest first, with filters kept in the URL, more pages on demand,
 * a live refresh of the newest page, and a CSV download of every matching turn. A turn opens its own page
 * (TurnDetail): its decision, its settlement, and the other turns of its session.
 */
import { type FormEvent, useEffect, useState } from "react"
import type { TurnBody, TurnPage } from "../api/drilldown-types.ts"
import { ChannelName } from "../channels.tsx"
import { formatInteger, formatLocalTime } from "../format.ts"
import { REASON_TEXT } from "../reasons.ts"
import { href, navigate, useLinkHandler, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { ErrorMessage } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { LiveSwitch, useLive } from "../ui/live.tsx"
import "../drilldown.css"

/** The filters the API takes, by their API names. */
const FILTERS = [
  "channel",
  "chatbot_id",
  "user_identifier",
  "session_id",
  "decision",
  "reason",
  "from",
  "to",
] as const
type Filter = (typeof FILTERS)[number]
/**
 * The URL's name of each filter: the time range is `since`/`until` there, since `from`/`to` in a dashboard
 * URL are the analytics pages' period (local days), which the navigation carries from page to page.
 */
const URL_NAME: Record<Filter, string> = {
  channel: "channel",
  chatbot_id: "chatbot_id",
  user_identifier: "user_identifier",
  session_id: "session_id",
  decision: "decision",
  reason: "reason",
  from: "since",
  to: "until",
}
const URL_NAMES: readonly string[] = Object.values(URL_NAME)
const PAGE = 50

function filtersOf(query: URLSearchParams): Partial<Record<Filter, string>> {
  const filters: Partial<Record<Filter, string>> = {}
  for (const name of FILTERS) {
    const value = query.get(URL_NAME[name])
    if (value) filters[name] = value
  }
  return filters
}

/** A link to a page of this subscription, keeping the admin's subscription choice. */
export function useSubscriptionHref(): (path: string, query?: Record<string, string | undefined>) => string {
  const { me, subscription } = useWorkspace()
  return (path, query = {}) =>
    href(path, { subscription: me.kind === "admin" ? subscription.id : undefined, ...query })
}

export function Turns() {
  const { api, subscription, catalog } = useWorkspace()
  const location = useLocation()
  const filters = filtersOf(location.query)
  const path = `/api/subscriptions/${encodeURIComponent(subscription.id)}/turns`
  const key = `${subscription.id}:${JSON.stringify(filters)}`
  const live = useLive(() => api.get<TurnPage>(path, { ...filters, limit: PAGE }), key)
  // Older pages, loaded on demand below the live first page.
  const [older, setOlder] = useState<{ key: string; turns: TurnBody[]; next: string | null } | null>(null)
  const [olderError, setOlderError] = useState<{ key: string; error: Error } | null>(null)

  const first = live.state.status === "ready" ? live.state.data : null
  const shownOlder = older?.key === key ? older : null
  // A live refresh may bring turns that a loaded older page also holds: each turn once.
  const firstIds = new Set(first?.turns.map((turn) => turn.usage_id))
  const turns = [
    ...(first?.turns ?? []),
    ...(shownOlder?.turns.filter((t) => !firstIds.has(t.usage_id)) ?? []),
  ]
  const next = shownOlder ? shownOlder.next : (first?.next_cursor ?? null)

  const loadMore = async () => {
    if (!next) return
    try {
      const page = await api.get<TurnPage>(path, { ...filters, limit: PAGE, cursor: next })
      setOlder({ key, turns: [...(shownOlder?.turns ?? []), ...page.turns], next: page.next_cursor })
    } catch (error) {
      setOlderError({ key, error: error as Error })
    }
  }

  return (
    <div className="page">
      <div className="page-head">
        <h1>Turns</h1>
        <p className="muted">
          Every metered turn, newest first: what was decided, why, and what it cost. Times in your browser's
          timezone.
        </p>
      </div>
      <TurnFilters filters={filters} channels={catalog.channels.map((c) => c.channel)} />
      <section className="panel" aria-labelledby="turn-log-title">
        <div className="toolbar">
          <h2 id="turn-log-title">Turn log</h2>
          <LiveSwitch live={live} />
          <DownloadCsv path={path} query={filters} />
        </div>
        {live.state.status === "loading" ? <p className="muted">Loading turns…</p> : null}
        {live.state.status === "error" ? <ErrorMessage error={live.state.error} retry={live.retry} /> : null}
        {first && turns.length === 0 ? <p className="muted">No turn matches these filters.</p> : null}
        {turns.length > 0 ? <TurnTable turns={turns} /> : null}
        <div className="pager">
          {next ? (
            <button type="button" className="secondary" onClick={loadMore}>
              Load older turns
            </button>
          ) : first && turns.length > 0 ? (
            <span className="muted small">That is every matching turn.</span>
          ) : null}
          <span className="muted small">
            {turns.length > 0 ? `${formatInteger(turns.length)} shown` : ""}
          </span>
          {olderError?.key === key ? <span className="field-error">{olderError.error.message}</span> : null}
        </div>
      </section>
    </div>
  )
}

function TurnFilters({
  filters,
  channels,
}: {
  filters: Partial<Record<Filter, string>>
  channels: string[]
}) {
  const location = useLocation()
  const [draft, setDraft] = useState(filters)
  const text = JSON.stringify(filters)
  // biome-ignore lint/correctness/useExhaustiveDependencies: `text` is the filters' value
  useEffect(() => setDraft(filters), [text])
  const set = (name: Filter) => (event: { currentTarget: { value: string } }) => {
    const value = event.currentTarget.value
    setDraft((d) => ({ ...d, [name]: value }))
  }
  const submit = (event: FormEvent) => {
    event.preventDefault()
    const keep = Object.fromEntries(
      [...location.query.entries()].filter(([name]) => !URL_NAMES.includes(name)),
    )
    const chosen = Object.fromEntries(
      Object.entries(draft).map(([name, value]) => [
        URL_NAME[name as Filter],
        (name === "from" || name === "to") && value ? toInstant(value) : value?.trim() || undefined,
      ]),
    )
    navigate(href(location.path, { ...keep, ...chosen }))
  }
  const clear = () => {
    const keep = Object.fromEntries(
      [...location.query.entries()].filter(([name]) => !URL_NAMES.includes(name)),
    )
    navigate(href(location.path, keep))
  }
  return (
    <form className="panel turn-filters" onSubmit={submit} aria-label="Filters">
      <div className="field">
        <label htmlFor="f-channel">Channel</label>
        <select id="f-channel" value={draft.channel ?? ""} onChange={set("channel")}>
          <option value="">Any</option>
          {channels.map((channel) => (
            <option key={channel} value={channel}>
              {channel}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="f-chatbot">Chatbot</label>
        <input id="f-chatbot" value={draft.chatbot_id ?? ""} onChange={set("chatbot_id")} />
      </div>
      <div className="field">
        <label htmlFor="f-user">End user</label>
        <input id="f-user" value={draft.user_identifier ?? ""} onChange={set("user_identifier")} />
      </div>
      <div className="field">
        <label htmlFor="f-session">Session</label>
        <input id="f-session" value={draft.session_id ?? ""} onChange={set("session_id")} />
      </div>
      <div className="field">
        <label htmlFor="f-decision">Decision</label>
        <select id="f-decision" value={draft.decision ?? ""} onChange={set("decision")}>
          <option value="">Any</option>
          <option value="allowed">Allowed</option>
          <option value="denied">Denied</option>
        </select>
      </div>
      <div className="field">
        <label htmlFor="f-reason">Denial reason</label>
        <select id="f-reason" value={draft.reason ?? ""} onChange={set("reason")}>
          <option value="">Any</option>
          {Object.entries(REASON_TEXT).map(([reason, words]) => (
            <option key={reason} value={reason}>
              {words}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="f-from">From</label>
        <input id="f-from" type="datetime-local" value={toLocalInput(draft.from)} onChange={set("from")} />
      </div>
      <div className="field">
        <label htmlFor="f-to">Before</label>
        <input id="f-to" type="datetime-local" value={toLocalInput(draft.to)} onChange={set("to")} />
      </div>
      <div className="form-actions">
        <button type="submit">Apply filters</button>
        <button type="button" className="secondary" onClick={clear}>
          Clear
        </button>
      </div>
    </form>
  )
}

/** A datetime-local input's value (local wall time) as an instant; an instant passes through. */
function toInstant(value: string): string {
  if (/Z$|[+-]\d\d:\d\d$/.test(value)) return value
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? value : date.toISOString()
}

/** An instant as a datetime-local input's value, in the browser's timezone. */
function toLocalInput(value: string | undefined): string {
  if (!value) return ""
  if (!/Z$|[+-]\d\d:\d\d$/.test(value)) return value
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) return ""
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000)
  return local.toISOString().slice(0, 16)
}

export function DecisionBadge({ turn }: { turn: TurnBody }) {
  return turn.decision === "allowed" ? (
    <span className="decision decision-allowed">allowed</span>
  ) : (
    <span className="decision decision-denied" title={turn.denial_reason ?? undefined}>
      denied: {REASON_TEXT[turn.denial_reason ?? ""] ?? turn.denial_reason}
    </span>
  )
}

/** Turns as a table; each opens its own page. `current` marks one (a session's list on a turn's page). */
export function TurnTable({ turns, current }: { turns: TurnBody[]; current?: string }) {
  const onLink = useLinkHandler()
  const link = useSubscriptionHref()
  return (
    <div className="table-scroll">
      <table className="turn-log" data-testid="turn-log">
        <caption className="sr-only">Turns, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Channel</th>
            <th scope="col">Chatbot</th>
            <th scope="col">End user</th>
            <th scope="col">Session</th>
            <th scope="col">Decision</th>
            <th scope="col" className="num">
              Billed tokens
            </th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {turns.map((turn) => (
            <tr
              key={turn.usage_id}
              data-usage-id={turn.usage_id}
              aria-current={turn.usage_id === current ? "true" : undefined}
            >
              <th scope="row">
                <a href={link(`/turns/${turn.usage_id}`)} onClick={onLink}>
                  {formatLocalTime(turn.created_at)}
                </a>
              </th>
              <td>
                <ChannelName channel={turn.channel} />
              </td>
              <td>{turn.chatbot_id ?? "–"}</td>
              <td>{turn.user_identifier ?? "–"}</td>
              <td>{turn.session_id ?? "–"}</td>
              <td>
                <DecisionBadge turn={turn} />
              </td>
              <td className="num">{formatInteger(turn.billed_tokens)}</td>
              <td>{turn.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
