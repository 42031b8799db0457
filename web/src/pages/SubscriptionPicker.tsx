/**
 * The admin console (issue 16), for the operator's key: every subscription ranked by usage, quota used,
 * denials or growth (pick one to open its dashboard), a form to create one, and per subscription its
 * plan, limit, status and timezone, its keys (issued with the key shown once, revoked) and its webhook
 * endpoints (edited, disabled, deleted). Everything through the public API; the API's messages are shown
 * next to the field they name.
 */
import { useId, useState } from "react"
import { ALERT_TEXT } from "../alert-text.ts"
import type { AlertType, EndpointBody, WebhookList } from "../api/alert-types.ts"
import { type Api, ApiError } from "../api/client.ts"
import type { IssuedKey, KeyList, OverviewSort, SubscriptionOverviewBody } from "../api/dashboard-types.ts"
import type { PlanCatalog, SubscriptionBody } from "../api/types.ts"
import { formatGrowth, formatInteger, formatLocalTime, formatPercent } from "../format.ts"
import { href, navigate, useLinkHandler, useLocation } from "../router.ts"
import { AsyncView, Empty, ErrorMessage, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { EndpointActions, Field, messageFor } from "./EndpointActions.tsx"
import "../dashboards.css"

export function SubscriptionPicker({ api, onPick }: { api: Api; onPick: (id: string) => void }) {
  const { path } = useLocation()
  const manage = /^\/admin\/subscriptions\/([\w-]+)\/?$/.exec(path)?.[1]
  if (manage) return <ManageSubscription api={api} id={manage} onPick={onPick} />
  return <AdminHome api={api} onPick={onPick} />
}

const SORTS: { value: OverviewSort; label: string }[] = [
  { value: "tokens_used", label: "Usage" },
  { value: "quota_used", label: "Quota used" },
  { value: "denied_count", label: "Denials" },
  { value: "growth", label: "Growth" },
]

function AdminHome({ api, onPick }: { api: Api; onPick: (id: string) => void }) {
  const location = useLocation()
  const onLink = useLinkHandler()
  const sort = (location.query.get("sort") as OverviewSort | null) ?? "tokens_used"
  const days = location.query.get("days") ?? "7"
  const [state, retry] = useAsync(
    () => api.get<SubscriptionOverviewBody>("/api/admin/overview", { sort, days, limit: 500 }),
    `${sort}:${days}`,
  )
  const setQuery = (patch: Record<string, string>) =>
    navigate(href("/", { ...Object.fromEntries(location.query.entries()), ...patch }), true)
  return (
    <div className="page">
      <div className="page-head">
        <h1>Admin console</h1>
        <p className="muted">
          Signed in with the admin key: every subscription, ranked. Open one to see its dashboard, or manage
          its plan, keys and webhooks.
        </p>
      </div>
      <div className="admin-grid">
        <section className="panel" aria-labelledby="ranking-title" style={{ gridColumn: "1 / -1" }}>
          <div className="toolbar">
            <h2 id="ranking-title">Subscriptions</h2>
            <DownloadCsv api={api} path="/api/admin/overview" query={{ sort, days, limit: 500 }} />
          </div>
          <form className="ranking-controls" aria-label="Ranking" onSubmit={(e) => e.preventDefault()}>
            <div className="field">
              <label htmlFor="ranking-sort">Rank by</label>
              <select id="ranking-sort" value={sort} onChange={(e) => setQuery({ sort: e.target.value })}>
                {SORTS.map((s) => (
                  <option key={s.value} value={s.value}>
                    {s.label}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="ranking-days">Usage over</label>
              <select id="ranking-days" value={days} onChange={(e) => setQuery({ days: e.target.value })}>
                {["1", "7", "30", "90"].map((d) => (
                  <option key={d} value={d}>
                    {d === "1" ? "the last 24 hours" : `the last ${d} days`}
                  </option>
                ))}
              </select>
            </div>
          </form>
          <AsyncView state={state} retry={retry} label="Loading subscriptions…">
            {(overview) =>
              overview.total === 0 ? (
                <Empty title="No subscriptions yet">
                  Create the first one with the form below; it starts on its plan's default token limit. For
                  sample data, start the server with <code>npm run demo</code>.
                </Empty>
              ) : (
                <>
                  <p className="muted small">
                    Usage, denials and growth over whole hours, {formatLocalTime(overview.window.start)} –{" "}
                    {formatLocalTime(overview.window.end)}, growth against the {overview.window.days}{" "}
                    {overview.window.days === 1 ? "day" : "days"} before; quota used in each subscription's
                    current billing period.
                  </p>
                  <div className="table-scroll">
                    <table className="ranking" data-testid="ranking">
                      <caption className="sr-only">Subscriptions ranked by {sort}</caption>
                      <thead>
                        <tr>
                          <th scope="col" className="num">
                            #
                          </th>
                          <th scope="col">Entity</th>
                          <th scope="col">Plan</th>
                          <th scope="col">Status</th>
                          <th scope="col">Quota used</th>
                          <th scope="col" className="num">
                            Tokens
                          </th>
                          <th scope="col" className="num">
                            Denied
                          </th>
                          <th scope="col" className="num">
                            Growth
                          </th>
                          <th scope="col">
                            <span className="sr-only">Actions</span>
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {overview.subscriptions.map((s) => (
                          <tr key={s.subscription_id} data-subscription={s.subscription_id}>
                            <td className="num">{s.rank}</td>
                            <th scope="row">
                              <button
                                type="button"
                                className="link"
                                onClick={() => onPick(s.subscription_id)}
                              >
                                {s.entity_id}
                              </button>
                              <div className="muted small">{s.entity_type}</div>
                            </th>
                            <td data-label="Plan">
                              <span className={`plan plan-${s.plan}`}>{s.plan}</span>
                            </td>
                            <td data-label="Status">{s.status}</td>
                            <td data-metric="quota_used" data-label="Quota used">
                              <QuotaCell row={s} />
                            </td>
                            <td className="num" data-metric="tokens_used" data-label="Tokens">
                              {formatInteger(s.tokens_used)}
                            </td>
                            <td className="num" data-metric="denied_count" data-label="Denied">
                              {formatInteger(s.denied_count)}
                              {s.denial_rate !== null ? (
                                <div className="muted small">{formatPercent(s.denial_rate)} of turns</div>
                              ) : null}
                            </td>
                            <td className="num" data-metric="growth" data-label="Growth">
                              {s.growth === null ? "–" : formatGrowth(s.growth)}
                            </td>
                            <td>
                              <a
                                href={`/admin/subscriptions/${s.subscription_id}`}
                                onClick={onLink}
                                aria-label={`Manage ${s.entity_id}`}
                              >
                                Manage
                              </a>
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </div>
                </>
              )
            }
          </AsyncView>
        </section>
        <CreateSubscription api={api} />
      </div>
    </div>
  )
}

function QuotaCell({ row }: { row: SubscriptionOverviewBody["subscriptions"][number] }) {
  if (row.quota_used_percent === null) return <span className="muted">no limit</span>
  return (
    <div className="quota-cell">
      <span>
        {formatPercent(row.quota_used_percent)}{" "}
        {row.over_quota ? <span className="badge badge-worst">over quota</span> : null}
      </span>
      <span className={`mini-bar${row.over_quota ? " over" : ""}`} aria-hidden="true">
        <span style={{ width: `${Math.min(100, row.quota_used_percent)}%` }} />
      </span>
      <span className="muted small">
        {formatInteger(row.quota_used_tokens)} of {formatInteger(row.token_limit)}
      </span>
    </div>
  )
}

function CreateSubscription({ api }: { api: Api }) {
  const id = useId()
  const [plans] = useAsync(() => api.get<PlanCatalog>("/api/plans"), "plans")
  const [entityId, setEntityId] = useState("")
  const [entityType, setEntityType] = useState("organization")
  const [plan, setPlan] = useState("basic")
  const [tokenLimit, setTokenLimit] = useState("")
  const [timezone, setTimezone] = useState("UTC")
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)

  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const limit = tokenLimit.trim() === "" ? undefined : Number(tokenLimit)
      const created = await api.post<SubscriptionBody>("/api/subscriptions", {
        entity_id: entityId,
        entity_type: entityType,
        plan,
        timezone,
        ...(limit !== undefined ? { token_limit: Number.isFinite(limit) ? limit : tokenLimit } : {}),
      })
      navigate(`/admin/subscriptions/${created.id}`)
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    } finally {
      setBusy(false)
    }
  }
  const placed = ["entity_id", "entity_type", "plan", "token_limit", "timezone"].some((f) =>
    messageFor(error, f),
  )
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New subscription</h2>
      <form className="admin-form" onSubmit={submit} noValidate>
        <div className="fields">
          <Field id={`${id}-entity`} label="Entity id" error={messageFor(error, "entity_id")}>
            <input id={`${id}-entity`} value={entityId} onChange={(e) => setEntityId(e.target.value)} />
          </Field>
          <Field id={`${id}-type`} label="Entity type" error={messageFor(error, "entity_type")}>
            <input id={`${id}-type`} value={entityType} onChange={(e) => setEntityType(e.target.value)} />
          </Field>
          <Field id={`${id}-plan`} label="Plan" error={messageFor(error, "plan")}>
            <select id={`${id}-plan`} value={plan} onChange={(e) => setPlan(e.target.value)}>
              {(plans.status === "ready" ? plans.data.plans : []).map((p) => (
                <option key={p.plan} value={p.plan}>
                  {p.label} ({formatInteger(p.default_token_limit)} tokens)
                </option>
              ))}
            </select>
          </Field>
          <Field
            id={`${id}-limit`}
            label="Token limit (empty: the plan's)"
            error={messageFor(error, "token_limit")}
          >
            <input
              id={`${id}-limit`}
              inputMode="numeric"
              value={tokenLimit}
              onChange={(e) => setTokenLimit(e.target.value)}
            />
          </Field>
          <Field id={`${id}-tz`} label="Timezone" error={messageFor(error, "timezone")}>
            <input id={`${id}-tz`} value={timezone} onChange={(e) => setTimezone(e.target.value)} />
          </Field>
        </div>
        {error && !placed ? <ErrorMessage error={error} /> : null}
        <div className="form-actions">
          <button type="submit" disabled={busy}>
            {busy ? "Creating…" : "Create subscription"}
          </button>
        </div>
      </form>
    </section>
  )
}

function ManageSubscription({ api, id, onPick }: { api: Api; id: string; onPick: (id: string) => void }) {
  const onLink = useLinkHandler()
  const [version, setVersion] = useState(0)
  const path = `/api/subscriptions/${encodeURIComponent(id)}`
  const [state, retry] = useAsync(() => api.get<SubscriptionBody>(path), `${id}:${version}`)
  // A refresh after a change keeps the page (and its forms' messages) in place until the answer comes.
  const [last, setLast] = useState<SubscriptionBody | null>(null)
  if (state.status === "ready" && state.data !== last) setLast(state.data)
  const shown: typeof state = last && state.status === "loading" ? { status: "ready", data: last } : state
  return (
    <div className="page">
      <div className="page-head">
        <p className="breadcrumb">
          <a href="/" onClick={onLink}>
            Admin console
          </a>{" "}
          / subscription
        </p>
        <AsyncView state={shown} retry={retry} label="Loading the subscription…">
          {(subscription) => (
            <>
              <div className="page-head-row">
                <h1>{subscription.entity_id}</h1>
                <button type="button" onClick={() => onPick(subscription.id)}>
                  Open its dashboard
                </button>
              </div>
              <p className="muted small">
                {subscription.entity_type} · id <code>{subscription.id}</code> · created{" "}
                {formatLocalTime(subscription.created_at)}
              </p>
              <div className="admin-grid">
                <SubscriptionSettings
                  api={api}
                  subscription={subscription}
                  onSaved={() => setVersion((v) => v + 1)}
                />
                <Keys api={api} subscriptionId={subscription.id} />
                <Webhooks api={api} subscriptionId={subscription.id} />
              </div>
            </>
          )}
        </AsyncView>
      </div>
    </div>
  )
}

function SubscriptionSettings({
  api,
  subscription,
  onSaved,
}: {
  api: Api
  subscription: SubscriptionBody
  onSaved: () => void
}) {
  const id = useId()
  const [plan, setPlan] = useState<string>(subscription.plan)
  const [tokenLimit, setTokenLimit] = useState(String(subscription.token_limit))
  const [status, setStatus] = useState<string>(subscription.status)
  const [timezone, setTimezone] = useState(subscription.timezone)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<ApiError | null>(null)
  const [saved, setSaved] = useState(false)
  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    setSaved(false)
    try {
      const limit = Number(tokenLimit)
      await api.patch<SubscriptionBody>(`/api/subscriptions/${encodeURIComponent(subscription.id)}`, {
        plan,
        token_limit: tokenLimit.trim() !== "" && Number.isFinite(limit) ? limit : tokenLimit,
        status,
        timezone,
      })
      setSaved(true)
      onSaved()
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    } finally {
      setBusy(false)
    }
  }
  const quota = subscription.quota
  const placed = ["plan", "token_limit", "status", "timezone"].some((f) => messageFor(error, f))
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Plan and limits</h2>
      {quota ? (
        <p className="small" data-testid="manage-quota">
          Used {formatInteger(quota.used_tokens)} of {formatInteger(quota.token_limit)} tokens this billing
          period
          {quota.used_tokens > quota.token_limit ? (
            <>
              {" "}
              <span className="badge badge-worst">over quota</span>
            </>
          ) : null}
          .
        </p>
      ) : null}
      <form className="admin-form" onSubmit={submit} noValidate aria-label="Plan and limits">
        <div className="fields">
          <Field id={`${id}-plan`} label="Plan" error={messageFor(error, "plan")}>
            <select id={`${id}-plan`} value={plan} onChange={(e) => setPlan(e.target.value)}>
              {["basic", "professional", "enterprise"].map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </Field>
          <Field id={`${id}-limit`} label="Token limit per period" error={messageFor(error, "token_limit")}>
            <input
              id={`${id}-limit`}
              inputMode="numeric"
              value={tokenLimit}
              onChange={(e) => setTokenLimit(e.target.value)}
            />
          </Field>
          <Field id={`${id}-status`} label="Status" error={messageFor(error, "status")}>
            <select id={`${id}-status`} value={status} onChange={(e) => setStatus(e.target.value)}>
              {["active", "suspended", "cancelled"].map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </Field>
          <Field id={`${id}-tz`} label="Timezone" error={messageFor(error, "timezone")}>
            <input id={`${id}-tz`} value={timezone} onChange={(e) => setTimezone(e.target.value)} />
          </Field>
        </div>
        <p className="muted small">
          Changes apply to the next turn. A downgrade switches off the channels the new plan lacks.
        </p>
        {error && !placed ? <ErrorMessage error={error} /> : null}
        <div className="form-actions">
          <button type="submit" disabled={busy}>
            {busy ? "Saving…" : "Save changes"}
          </button>
          {saved ? (
            <span className="saved" role="status">
              Saved
            </span>
          ) : null}
        </div>
      </form>
    </section>
  )
}

function Keys({ api, subscriptionId }: { api: Api; subscriptionId: string }) {
  const id = useId()
  const base = `/api/subscriptions/${encodeURIComponent(subscriptionId)}/keys`
  const [version, setVersion] = useState(0)
  const [state, retry] = useAsync(() => api.get<KeyList>(base), `${subscriptionId}:${version}`)
  const [label, setLabel] = useState("")
  const [issued, setIssued] = useState<IssuedKey | null>(null)
  const [copied, setCopied] = useState(false)
  const [confirming, setConfirming] = useState<string | null>(null)
  const [error, setError] = useState<ApiError | null>(null)
  const issue = async (event: React.FormEvent) => {
    event.preventDefault()
    setError(null)
    setCopied(false)
    try {
      setIssued(await api.post<IssuedKey>(base, label === "" ? {} : { label }))
      setLabel("")
      setVersion((v) => v + 1)
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    }
  }
  const revoke = async (keyId: string) => {
    setError(null)
    try {
      await api.delete(`${base}/${encodeURIComponent(keyId)}`)
      setConfirming(null)
      setVersion((v) => v + 1)
    } catch (caught) {
      if (caught instanceof ApiError) setError(caught)
      else throw caught
    }
  }
  const copy = async (key: string) => {
    try {
      await navigator.clipboard.writeText(key)
      setCopied(true)
    } catch {
      setCopied(false)
    }
  }
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <div className="toolbar">
        <h2 id={`${id}-title`}>API keys</h2>
        <DownloadCsv api={api} path={base} />
      </div>
      <form className="admin-form" onSubmit={issue} aria-label="Issue a key">
        <Field id={`${id}-label`} label="Label for a new key (optional)" error={messageFor(error, "label")}>
          <input id={`${id}-label`} value={label} onChange={(e) => setLabel(e.target.value)} />
        </Field>
        <div className="form-actions">
          <button type="submit">Issue a key</button>
        </div>
      </form>
      {issued ? (
        <div className="once" role="status" data-testid="issued-key">
          <strong>New key {issued.prefix}…, shown this once: store it now.</strong>
          <code>{issued.key}</code>
          <div className="row-actions">
            <button type="button" className="secondary small" onClick={() => copy(issued.key)}>
              Copy key
            </button>
            <button type="button" className="link small" onClick={() => setIssued(null)}>
              I have stored it
            </button>
            {copied ? <span className="saved small">Copied</span> : null}
          </div>
        </div>
      ) : null}
      {error && !messageFor(error, "label") ? <ErrorMessage error={error} /> : null}
      <AsyncView state={state} retry={retry} label="Loading keys…">
        {({ keys }) =>
          keys.length === 0 ? (
            <p className="muted small">No keys yet: issue one for the subscription's own backend.</p>
          ) : (
            <div className="table-scroll">
              <table data-testid="keys">
                <caption className="sr-only">Keys, without their secrets</caption>
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    <th scope="col">Label</th>
                    <th scope="col">Issued</th>
                    <th scope="col">State</th>
                  </tr>
                </thead>
                <tbody>
                  {keys.map((k) => (
                    <tr key={k.key_id} data-key={k.key_id}>
                      <td>
                        <code>{k.prefix}…</code>
                      </td>
                      <td>{k.label ?? "–"}</td>
                      <td className="small">{formatLocalTime(k.created_at)}</td>
                      <td>
                        {k.revoked_at ? (
                          <span className="badge badge-off">revoked {formatLocalTime(k.revoked_at)}</span>
                        ) : confirming === k.key_id ? (
                          <span className="row-actions">
                            <button type="button" className="danger small" onClick={() => revoke(k.key_id)}>
                              Revoke {k.prefix}…
                            </button>
                            <button type="button" className="link small" onClick={() => setConfirming(null)}>
                              Keep
                            </button>
                          </span>
                        ) : (
                          <button
                            type="button"
                            className="secondary small"
                            onClick={() => setConfirming(k.key_id)}
                            aria-label={`Revoke key ${k.prefix}`}
                          >
                            Revoke…
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </AsyncView>
    </section>
  )
}

function Webhooks({ api, subscriptionId }: { api: Api; subscriptionId: string }) {
  const id = useId()
  const base = `/api/subscriptions/${encodeURIComponent(subscriptionId)}/webhooks`
  const [version, setVersion] = useState(0)
  const [state, retry] = useAsync(() => api.get<WebhookList>(base), `${subscriptionId}:${version}`)
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <div className="toolbar">
        <h2 id={`${id}-title`}>Webhook endpoints</h2>
        <DownloadCsv api={api} path={base} />
      </div>
      <AsyncView state={state} retry={retry} label="Loading webhook endpoints…">
        {({ webhooks }) =>
          webhooks.length === 0 ? (
            <p className="muted small">
              No webhook endpoints. The subscription adds them on its Alerts page, with its own key or yours.
            </p>
          ) : (
            <ul className="endpoints" data-testid="admin-webhooks">
              {webhooks.map((endpoint) => (
                <EndpointRow
                  key={endpoint.id}
                  api={api}
                  base={base}
                  endpoint={endpoint}
                  onChanged={() => setVersion((v) => v + 1)}
                />
              ))}
            </ul>
          )
        }
      </AsyncView>
    </section>
  )
}

function EndpointRow({
  api,
  base,
  endpoint,
  onChanged,
}: {
  api: Api
  base: string
  endpoint: EndpointBody
  onChanged: () => void
}) {
  return (
    <li className="endpoint" data-webhook={endpoint.id}>
      <div className="endpoint-head">
        <code className="endpoint-url">{endpoint.url}</code>
        <span className={`badge ${endpoint.enabled ? "badge-on" : "badge-off"}`}>
          {endpoint.enabled ? "enabled" : "disabled"}
        </span>
      </div>
      {endpoint.description ? <p className="small">{endpoint.description}</p> : null}
      <p className="small muted">
        Receives: {endpoint.event_types.map((t) => ALERT_TEXT[t as AlertType] ?? t).join(", ")}
      </p>
      <EndpointActions
        api={api}
        url={`${base}/${encodeURIComponent(endpoint.id)}`}
        endpoint={endpoint}
        onChanged={onChanged}
      />
    </li>
  )
}
