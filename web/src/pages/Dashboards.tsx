/**
 * Saved dashboards (issue 16): the list of a subscription's views, one view with its widgets (its URL is
 * the link to share), and the editor (name, widgets from the catalog with their filters, their order).
 * The API validates; its message appears next to the field it names.
 */
import { useCallback, useMemo, useRef, useState } from "react"
import { ApiError, type Query } from "../api/client.ts"
import type {
  DashboardBody,
  DashboardListBody,
  PeriodPreset,
  WidgetDraft,
  WidgetKind,
} from "../api/dashboard-types.ts"
import { useChannelLabel } from "../channels.tsx"
import { formatLocalTime } from "../format.ts"
import { href, navigate, useLinkHandler } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, ErrorMessage, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import {
  DashboardWidget,
  type Loader,
  ONE_CHANNEL,
  PERIOD_LABELS,
  WIDGET_LABELS,
} from "./DashboardWidget.tsx"
import "../dashboards.css"

function useDashboardPaths() {
  const { subscription, me } = useWorkspace()
  const base = `/api/subscriptions/${encodeURIComponent(subscription.id)}/dashboards`
  const page = (path: string) =>
    href(path, { subscription: me.kind === "admin" ? subscription.id : undefined })
  return { base, page }
}

/** /dashboards: every saved view, and a way to start a new one. */
export function DashboardList() {
  const { api, subscription } = useWorkspace()
  const { base, page } = useDashboardPaths()
  const onLink = useLinkHandler()
  const [state, retry] = useAsync(() => api.get<DashboardListBody>(base), subscription.id)
  return (
    <div className="page">
      <div className="page-head">
        <h1>Dashboards</h1>
        <a className="button-link" href={page("/dashboards/new")} onClick={onLink}>
          New dashboard
        </a>
        <DownloadCsv path={base} label="Download list CSV" />
      </div>
      <p className="muted">
        Saved views of this subscription: pick charts and tables, each with its own period, channels and
        chatbot. Anyone with a key for this subscription can open a view by its link.
      </p>
      <AsyncView state={state} retry={retry} label="Loading dashboards…">
        {({ dashboards }) =>
          dashboards.length === 0 ? (
            <Empty title="No saved dashboards yet">
              Create one with “New dashboard”: choose the widgets, their period and channels, and save.
            </Empty>
          ) : (
            <ul className="dashboard-list" data-testid="dashboard-list">
              {dashboards.map((d) => (
                <li key={d.id} className="panel" data-dashboard={d.id}>
                  <a href={page(`/dashboards/${d.id}`)} onClick={onLink} className="dashboard-name">
                    {d.name}
                  </a>
                  <p className="muted small">
                    {d.widgets.length} {d.widgets.length === 1 ? "widget" : "widgets"}:{" "}
                    {d.widgets.map((w) => w.title ?? WIDGET_LABELS[w.kind]).join(", ") || "none yet"}
                  </p>
                  <p className="muted small">Changed {formatLocalTime(d.updated_at)}</p>
                </li>
              ))}
            </ul>
          )
        }
      </AsyncView>
    </div>
  )
}

/** /dashboards/new: the editor on an empty view; saving opens it. */
export function NewDashboard() {
  const { api } = useWorkspace()
  const { base, page } = useDashboardPaths()
  return (
    <div className="page">
      <div className="page-head">
        <h1>New dashboard</h1>
      </div>
      <DashboardEditor
        initial={{ name: "", widgets: [{ kind: "totals", period: "last_30_days", channels: [] }] }}
        onSave={async (draft) => {
          const created = await api.post<DashboardBody>(base, draft)
          navigate(page(`/dashboards/${created.id}`))
        }}
        onCancel={() => navigate(page("/dashboards"))}
      />
    </div>
  )
}

/** /dashboards/{id}: the saved view, its widgets drawn in order; edit, share or delete it. */
export function DashboardView({ id }: { id: string }) {
  const { api, subscription } = useWorkspace()
  const { base, page } = useDashboardPaths()
  const onLink = useLinkHandler()
  const [version, setVersion] = useState(0)
  const [editing, setEditing] = useState(false)
  const [confirmDelete, setConfirmDelete] = useState(false)
  const [deleteError, setDeleteError] = useState<ApiError | null>(null)
  const url = `${base}/${encodeURIComponent(id)}`
  const [state, retry] = useAsync(() => api.get<DashboardBody>(url), `${subscription.id}:${id}:${version}`)

  // One answer per distinct question while this view is shown (reloaded with the dashboard).
  const answers = useRef(new Map<string, Promise<unknown>>())
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new version starts with fresh answers
  const load = useMemo<Loader>(() => {
    answers.current = new Map()
    return <T,>(path: string, query: Query) => {
      const key = `${path}?${JSON.stringify(query)}`
      let answer = answers.current.get(key)
      if (!answer) {
        answer = api.get<T>(path, query)
        answer.catch(() => answers.current.delete(key))
        answers.current.set(key, answer)
      }
      return answer as Promise<T>
    }
  }, [api, version])
  const reload = useCallback(() => setVersion((v) => v + 1), [])

  const remove = async () => {
    setDeleteError(null)
    try {
      await api.delete(url)
      navigate(page("/dashboards"))
    } catch (error) {
      if (error instanceof ApiError) setDeleteError(error)
    }
  }

  return (
    <div className="page">
      <AsyncView state={state} retry={retry} label="Loading the dashboard…">
        {(dashboard) => (
          <>
            <div className="page-head">
              <p className="breadcrumb">
                <a href={page("/dashboards")} onClick={onLink}>
                  Dashboards
                </a>{" "}
                / {dashboard.name}
              </p>
              <h1>{dashboard.name}</h1>
            </div>
            {editing ? (
              <DashboardEditor
                initial={{
                  name: dashboard.name,
                  widgets: dashboard.widgets.map((w) => ({
                    kind: w.kind,
                    title: w.title,
                    period: w.period,
                    channels: w.channels,
                    chatbot_id: w.chatbot_id,
                  })),
                }}
                onSave={async (draft) => {
                  await api.patch<DashboardBody>(url, { ...draft, version: dashboard.version })
                  setEditing(false)
                  reload()
                }}
                onCancel={() => setEditing(false)}
                onReload={() => {
                  setEditing(false)
                  reload()
                }}
              />
            ) : (
              <>
                <div className="dashboard-actions">
                  <button type="button" onClick={() => setEditing(true)}>
                    Edit
                  </button>
                  <ShareLink />
                  {confirmDelete ? (
                    <>
                      <button type="button" className="danger" onClick={remove}>
                        Delete “{dashboard.name}”
                      </button>
                      <button type="button" className="secondary" onClick={() => setConfirmDelete(false)}>
                        Keep it
                      </button>
                    </>
                  ) : (
                    <button type="button" className="secondary" onClick={() => setConfirmDelete(true)}>
                      Delete…
                    </button>
                  )}
                </div>
                {deleteError ? <ErrorMessage error={deleteError} /> : null}
                <p className="muted small">
                  Days in {dashboard.timezone} (the subscription's timezone); each period ends with the last
                  complete day. Version {dashboard.version}, changed {formatLocalTime(dashboard.updated_at)}.
                </p>
                {dashboard.widgets.length === 0 ? (
                  <Empty title="This dashboard has no widgets">Edit it to add charts and tables.</Empty>
                ) : (
                  <div className="widgets" data-testid="widgets">
                    {dashboard.widgets.map((widget, index) => (
                      <DashboardWidget
                        // biome-ignore lint/suspicious/noArrayIndexKey: widgets have no id; order is their identity
                        key={`${dashboard.version}:${index}`}
                        widget={widget}
                        index={index}
                        load={load}
                      />
                    ))}
                  </div>
                )}
              </>
            )}
          </>
        )}
      </AsyncView>
    </div>
  )
}

/** The view's address, to copy: it opens this dashboard for anyone signed in to this subscription. */
function ShareLink() {
  const [copied, setCopied] = useState<boolean | null>(null)
  const link = window.location.href
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link)
      setCopied(true)
    } catch {
      setCopied(false)
    }
  }
  return (
    <span className="share">
      <label className="sr-only" htmlFor="share-link">
        Link to this dashboard
      </label>
      <input id="share-link" readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
      <button type="button" className="secondary" onClick={copy}>
        Copy link
      </button>
      {copied === true ? (
        <span className="small saved" role="status">
          Copied
        </span>
      ) : copied === false ? (
        <span className="small muted" role="status">
          Select the link and copy it
        </span>
      ) : null}
    </span>
  )
}

interface Draft {
  name: string
  widgets: WidgetDraft[]
}

const KINDS = Object.keys(WIDGET_LABELS) as WidgetKind[]
const PERIODS = Object.keys(PERIOD_LABELS) as PeriodPreset[]

/** The name and the widgets, each with its filters, in order; sent as typed, checked by the API. */
function DashboardEditor({
  initial,
  onSave,
  onCancel,
  onReload,
}: {
  initial: Draft
  onSave: (draft: Draft) => Promise<void>
  onCancel: () => void
  onReload?: () => void
}) {
  const { subscription, catalog } = useWorkspace()
  const label = useChannelLabel()
  const [draft, setDraft] = useState<Draft>(initial)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const inPlan = catalog.channels.filter((c) => c.plans.includes(subscription.plan)).map((c) => c.channel)

  const setWidget = (index: number, patch: Partial<WidgetDraft>) =>
    setDraft((d) => ({ ...d, widgets: d.widgets.map((w, i) => (i === index ? { ...w, ...patch } : w)) }))
  const move = (index: number, by: number) =>
    setDraft((d) => {
      const widgets = [...d.widgets]
      const [moved] = widgets.splice(index, 1)
      if (moved) widgets.splice(index + by, 0, moved)
      return { ...d, widgets }
    })
  const remove = (index: number) =>
    setDraft((d) => ({ ...d, widgets: d.widgets.filter((_, i) => i !== index) }))
  const add = () =>
    setDraft((d) => ({
      ...d,
      widgets: [...d.widgets, { kind: "daily_tokens", period: "last_30_days", channels: [] }],
    }))
  const toggleChannel = (index: number, channel: string, kind: WidgetKind) =>
    setDraft((d) => ({
      ...d,
      widgets: d.widgets.map((w, i) => {
        if (i !== index) return w
        const current = w.channels ?? []
        if (ONE_CHANNEL.has(kind)) return { ...w, channels: [channel] }
        return {
          ...w,
          channels: current.includes(channel) ? current.filter((c) => c !== channel) : [...current, channel],
        }
      }),
    }))

  const blamed = error?.field
  const messageFor = (field: string) =>
    blamed && error && (blamed === field || blamed.startsWith(`${field}.`)) ? error.message : null

  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await onSave({
        name: draft.name,
        widgets: draft.widgets.map((w) => ({
          kind: w.kind,
          title: w.title ? w.title : null,
          period: w.period ?? "last_30_days",
          channels: w.kind === "quota" ? [] : (w.channels ?? []),
          chatbot_id: w.chatbot_id ? w.chatbot_id : null,
        })),
      })
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    } finally {
      setBusy(false)
    }
  }

  const placed = new Set(draft.widgets.map((_, i) => `widgets.${i}`).filter((f) => messageFor(f) !== null))
  const general = error && !messageFor("name") && placed.size === 0 && !messageFor("widgets") ? error : null

  return (
    <form className="panel dashboard-editor" onSubmit={submit} aria-label="Dashboard editor" noValidate>
      <div className="field">
        <label htmlFor="dashboard-name">Name</label>
        <input
          id="dashboard-name"
          value={draft.name}
          onChange={(e) => setDraft((d) => ({ ...d, name: e.target.value }))}
          aria-invalid={messageFor("name") ? true : undefined}
          aria-describedby={messageFor("name") ? "dashboard-name-error" : undefined}
        />
        {messageFor("name") ? (
          <p className="field-error" id="dashboard-name-error" role="alert">
            {messageFor("name")}
          </p>
        ) : null}
      </div>
      <h2>Widgets</h2>
      {messageFor("widgets") && placed.size === 0 ? (
        <p className="field-error" role="alert">
          {messageFor("widgets")}
        </p>
      ) : null}
      <ol className="widget-drafts">
        {draft.widgets.map((w, index) => {
          const one = ONE_CHANNEL.has(w.kind)
          const problem = messageFor(`widgets.${index}`)
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: a draft widget's place is its identity
            <li key={index} className="widget-draft" data-draft={index}>
              <div className="widget-draft-row">
                <div className="field">
                  <label htmlFor={`w${index}-kind`}>Widget {index + 1}</label>
                  <select
                    id={`w${index}-kind`}
                    value={w.kind}
                    onChange={(e) => {
                      const kind = e.target.value as WidgetKind
                      setWidget(index, {
                        kind,
                        channels: ONE_CHANNEL.has(kind) ? (w.channels ?? []).slice(0, 1) : w.channels,
                      })
                    }}
                  >
                    {KINDS.map((k) => (
                      <option key={k} value={k}>
                        {WIDGET_LABELS[k]}
                      </option>
                    ))}
                  </select>
                </div>
                {w.kind !== "quota" ? (
                  <div className="field">
                    <label htmlFor={`w${index}-period`}>Period</label>
                    <select
                      id={`w${index}-period`}
                      value={w.period ?? "last_30_days"}
                      onChange={(e) => setWidget(index, { period: e.target.value as PeriodPreset })}
                    >
                      {PERIODS.map((p) => (
                        <option key={p} value={p}>
                          {PERIOD_LABELS[p]}
                        </option>
                      ))}
                    </select>
                  </div>
                ) : null}
                <div className="field">
                  <label htmlFor={`w${index}-title`}>Title (optional)</label>
                  <input
                    id={`w${index}-title`}
                    value={w.title ?? ""}
                    onChange={(e) => setWidget(index, { title: e.target.value })}
                  />
                </div>
                {w.kind !== "quota" ? (
                  <div className="field">
                    <label htmlFor={`w${index}-chatbot`}>Chatbot (optional)</label>
                    <input
                      id={`w${index}-chatbot`}
                      value={w.chatbot_id ?? ""}
                      onChange={(e) => setWidget(index, { chatbot_id: e.target.value })}
                    />
                  </div>
                ) : null}
              </div>
              {w.kind !== "quota" ? (
                <fieldset className="widget-channels">
                  <legend>{one ? "Channel" : "Channels (none ticked: all)"}</legend>
                  {inPlan.map((channel) => (
                    <label key={channel}>
                      <input
                        type={one ? "radio" : "checkbox"}
                        name={`w${index}-channels`}
                        checked={(w.channels ?? []).includes(channel)}
                        onChange={() => toggleChannel(index, channel, w.kind)}
                      />
                      {label(channel)}
                    </label>
                  ))}
                </fieldset>
              ) : null}
              {problem ? (
                <p className="field-error" role="alert">
                  {problem}
                </p>
              ) : null}
              <div className="widget-draft-actions">
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => move(index, -1)}
                  disabled={index === 0}
                  aria-label={`Move widget ${index + 1} up`}
                >
                  ↑ Up
                </button>
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => move(index, 1)}
                  disabled={index === draft.widgets.length - 1}
                  aria-label={`Move widget ${index + 1} down`}
                >
                  ↓ Down
                </button>
                <button
                  type="button"
                  className="link small"
                  onClick={() => remove(index)}
                  aria-label={`Remove widget ${index + 1}`}
                >
                  Remove
                </button>
              </div>
            </li>
          )
        })}
      </ol>
      <button type="button" className="secondary" onClick={add}>
        Add widget
      </button>
      {general ? (
        <div className="state state-error" role="alert">
          <strong>
            {general.status === 409 ? "Not saved" : `The API answered ${general.status} ${general.code}`}
          </strong>
          <p>{general.message}</p>
          {general.status === 409 && general.field === "version" && onReload ? (
            <button type="button" onClick={onReload}>
              Reload the dashboard
            </button>
          ) : null}
        </div>
      ) : null}
      <div className="form-actions">
        <button type="submit" disabled={busy}>
          {busy ? "Saving…" : "Save dashboard"}
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  )
}
