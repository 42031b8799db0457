/**
 * The subscription's alerts, newest first (type, channel, local time, what happened), paged with the API's
 * `before` cursor and filtered by type; and its webhook endpoints, each with its delivery log and a "send
 * test event" button that goes through the same outbox as real events.
 */
import "../alerts.css"
import { useState } from "react"
import { ALERT_TEXT } from "../alert-text.ts"
import type {
  AlertBody,
  AlertPage,
  AlertType,
  DeliveryBody,
  DeliveryLog,
  EndpointBody,
  WebhookList,
} from "../api/alert-types.ts"
import { ApiError } from "../api/client.ts"
import { ChannelName } from "../channels.tsx"
import { formatDecimal, formatInteger, formatLocalTime, formatPercent } from "../format.ts"
import { href, navigate, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, ErrorMessage, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { EndpointActions } from "./EndpointActions.tsx"
import { WebhookForm } from "./WebhookForm.tsx"

const ALERT_TONE: Record<AlertType, string> = {
  "quota.threshold_reached": "warn",
  "rate_limit.exceeded": "warn",
  "usage.spike_detected": "warn",
  "usage.spike_resolved": "ok",
  "channel.health_degraded": "danger",
  "channel.health_recovered": "ok",
  "capacity.shed": "warn",
}

const PAGE_SIZE = 50

function num(data: Record<string, unknown>, key: string): number | undefined {
  const value = data[key]
  return typeof value === "number"
    ? value
    : typeof value === "string" && value !== ""
      ? Number(value)
      : undefined
}

const int = (value: number | undefined) => (value === undefined ? "?" : formatInteger(value))

/** One sentence saying what happened, from the alert's facts (documented per type in the README). */
export function alertSummary(alert: AlertBody): string {
  const d = alert.data
  switch (alert.type) {
    case "quota.threshold_reached": {
      const threshold = num(d, "threshold")
      const percent = threshold === undefined ? "?" : formatPercent(Math.round(threshold * 1000) / 10)
      return `${percent} of the ${int(num(d, "token_limit"))}-token quota reached: ${int(num(d, "used_tokens"))} tokens used this period.`
    }
    case "rate_limit.exceeded":
      return `${int(num(d, "denied_turns"))} turns denied by the rate limit in one minute.`
    case "capacity.shed": {
      const rate = num(d, "shed_rate")
      const share = rate === undefined ? "?" : formatPercent(Math.round(rate * 1000) / 10)
      return `${int(num(d, "shed_turns"))} of ${int(num(d, "turns"))} turns (${share}) shed in one minute to keep shared capacity or the quota reserve for higher priorities.`
    }
    case "usage.spike_detected":
    case "usage.spike_resolved": {
      const verb = alert.type === "usage.spike_detected" ? "stood far above" : "is back near"
      return `The last hour's ${int(num(d, "messages"))} messages and ${int(num(d, "tokens"))} tokens ${verb} the usual ${int(num(d, "baseline_messages"))} messages and ${int(num(d, "baseline_tokens"))} tokens for that hour.`
    }
    case "channel.health_degraded":
    case "channel.health_recovered": {
      const rate = num(d, "error_rate")
      const errors = rate === undefined ? "?" : formatPercent(Math.round(rate * 1000) / 10)
      return `${errors} errors and ${int(num(d, "p95_latency_ms"))} ms p95 latency over ${int(num(d, "settled_turns"))} settled turns.`
    }
  }
}

function factValue(value: unknown): string {
  if (value === null || value === undefined) return "–"
  if (typeof value === "number") return Number.isInteger(value) ? formatInteger(value) : formatDecimal(value)
  if (typeof value === "string") {
    return /^\d{4}-\d{2}-\d{2}[T ]/.test(value) && !Number.isNaN(Date.parse(value))
      ? formatLocalTime(value)
      : value
  }
  return JSON.stringify(value)
}

export function Alerts() {
  return (
    <div className="page">
      <div className="page-head">
        <h1>Alerts</h1>
        <p className="muted">
          What happened to this subscription, newest first, and where omnimeter sends it (signed webhooks).
        </p>
      </div>
      <AlertList />
      <Webhooks />
    </div>
  )
}

function isAlertType(value: string | null): value is AlertType {
  return value !== null && value in ALERT_TEXT
}

function AlertList() {
  const { api, subscription } = useWorkspace()
  const location = useLocation()
  const rawType = location.query.get("type")
  const type = isAlertType(rawType) ? rawType : undefined
  const path = `/api/subscriptions/${encodeURIComponent(subscription.id)}/alerts`
  const [state, retry] = useAsync(
    () => api.get<AlertPage>(path, { limit: PAGE_SIZE, type }),
    `${subscription.id}:${type ?? ""}`,
  )
  const [older, setOlder] = useState<{ key: string; alerts: AlertBody[]; next: number | null } | null>(null)
  const [loadingOlder, setLoadingOlder] = useState(false)
  const [olderError, setOlderError] = useState<ApiError | null>(null)
  const key = `${subscription.id}:${type ?? ""}`

  const setType = (next: string) => {
    const query = Object.fromEntries(location.query.entries())
    navigate(href(location.path, { ...query, type: next || undefined }), true)
  }

  return (
    <section className="panel" aria-labelledby="alerts-title">
      <div className="panel-head">
        <h2 id="alerts-title">Recent alerts</h2>
        <DownloadCsv path={path} query={{ type }} />
        <div className="field-inline">
          <label htmlFor="alert-type-filter">Type</label>
          <select id="alert-type-filter" value={type ?? ""} onChange={(event) => setType(event.target.value)}>
            <option value="">All types</option>
            {Object.entries(ALERT_TEXT).map(([value, text]) => (
              <option key={value} value={value}>
                {text}
              </option>
            ))}
          </select>
        </div>
      </div>
      <AsyncView state={state} retry={retry} label="Loading alerts…">
        {(first) => {
          const extra = older?.key === key ? older : null
          const alerts = [...first.alerts, ...(extra?.alerts ?? [])]
          const next = extra ? extra.next : first.next_before
          const loadOlder = async () => {
            if (next === null) return
            setLoadingOlder(true)
            setOlderError(null)
            try {
              const page = await api.get<AlertPage>(path, { limit: PAGE_SIZE, type, before: next })
              setOlder({ key, alerts: [...(extra?.alerts ?? []), ...page.alerts], next: page.next_before })
            } catch (error) {
              setOlderError(error instanceof ApiError ? error : null)
            } finally {
              setLoadingOlder(false)
            }
          }
          if (alerts.length === 0) {
            return (
              <Empty title={type ? `No “${ALERT_TEXT[type]}” alerts` : "No alerts yet"}>
                Alerts appear here when the quota passes a threshold (50%, 80%, 95% and 100% by default), a
                channel's usage spikes, its health degrades, or its rate limit denies turns.
              </Empty>
            )
          }
          return (
            <>
              <p className="muted small" data-testid="alert-count">
                {formatInteger(alerts.length)} {alerts.length === 1 ? "alert" : "alerts"} shown
                {next === null ? "" : " (older ones below)"}. Times in your local time.
              </p>
              <ul className="alerts" data-testid="alerts">
                {alerts.map((alert) => (
                  <li
                    key={alert.id}
                    className={`alert alert-${ALERT_TONE[alert.type]}`}
                    data-alert={alert.id}
                  >
                    <div className="alert-head">
                      <strong className="alert-type" data-type={alert.type}>
                        {ALERT_TEXT[alert.type]}
                      </strong>
                      {alert.channel ? (
                        <ChannelName channel={alert.channel} />
                      ) : (
                        <span className="muted small">all channels</span>
                      )}
                      <time dateTime={alert.occurred_at} className="muted small alert-time">
                        {formatLocalTime(alert.occurred_at)}
                      </time>
                    </div>
                    <p className="alert-summary">{alertSummary(alert)}</p>
                    <details className="alert-facts">
                      <summary>Details</summary>
                      <dl className="figures">
                        {Object.entries(alert.data).map(([name, value]) => (
                          <div key={name}>
                            <dt>{name.replace(/_/g, " ")}</dt>
                            <dd>{factValue(value)}</dd>
                          </div>
                        ))}
                        <div>
                          <dt>event id</dt>
                          <dd>
                            <code>{alert.id}</code>
                          </dd>
                        </div>
                      </dl>
                    </details>
                  </li>
                ))}
              </ul>
              {olderError ? <ErrorMessage error={olderError} retry={loadOlder} /> : null}
              {next !== null ? (
                <button type="button" className="secondary" onClick={loadOlder} disabled={loadingOlder}>
                  {loadingOlder ? "Loading…" : "Show older alerts"}
                </button>
              ) : null}
            </>
          )
        }}
      </AsyncView>
    </section>
  )
}

function Webhooks() {
  const { api, subscription } = useWorkspace()
  const [state, retry] = useAsync(
    () => api.get<WebhookList>(`/api/subscriptions/${encodeURIComponent(subscription.id)}/webhooks`),
    subscription.id,
  )
  return (
    <section className="panel" aria-labelledby="webhooks-title">
      <div className="panel-head">
        <h2 id="webhooks-title">Webhook endpoints</h2>
        <DownloadCsv path={`/api/subscriptions/${encodeURIComponent(subscription.id)}/webhooks`} />
      </div>
      <AsyncView state={state} retry={retry} label="Loading webhook endpoints…">
        {({ webhooks }) =>
          webhooks.length === 0 ? (
            <Empty title="No webhook endpoints">
              Add one below to receive these alerts at your own URL, signed with HMAC-SHA256 (see the README's
              Webhooks section for checking the signature).
            </Empty>
          ) : (
            <ul className="endpoints" data-testid="webhooks">
              {webhooks.map((endpoint) => (
                <EndpointCard key={endpoint.id} endpoint={endpoint} onChanged={retry} />
              ))}
            </ul>
          )
        }
      </AsyncView>
      <WebhookForm onCreated={retry} />
    </section>
  )
}

function eventText(type: string): string {
  return type === "webhook.test" ? "Test event" : (ALERT_TEXT[type as AlertType] ?? type)
}

/** The receiver's last status code and the error, without saying "HTTP 500" twice. */
function lastAnswer(d: DeliveryBody): string {
  const code = d.last_status_code === null ? null : `HTTP ${d.last_status_code}`
  if (!d.last_error) return code ?? "–"
  if (code && d.last_error.startsWith(code)) return d.last_error
  return code ? `${code} · ${d.last_error}` : d.last_error
}

const DELIVERY_CLASS: Record<DeliveryBody["status"], string> = {
  delivered: "badge-on",
  pending: "badge-warn",
  failed: "badge-worst",
}

function EndpointCard({ endpoint, onChanged }: { endpoint: EndpointBody; onChanged: () => void }) {
  const { api, subscription } = useWorkspace()
  const base = `/api/subscriptions/${encodeURIComponent(subscription.id)}/webhooks/${encodeURIComponent(endpoint.id)}`
  const [version, setVersion] = useState(0)
  const [state, retry] = useAsync(
    () => api.get<DeliveryLog>(`${base}/deliveries`, { limit: 20 }),
    `${endpoint.id}:${version}`,
  )
  const [sending, setSending] = useState(false)
  const [sent, setSent] = useState<string | null>(null)
  const [sendError, setSendError] = useState<ApiError | null>(null)

  const sendTest = async () => {
    setSending(true)
    setSent(null)
    setSendError(null)
    try {
      const answer = await api.postRaw<{ event_id?: string; error?: { code: string; message: string } }>(
        `${base}/test`,
        {},
      )
      if (answer.status === 202 && answer.body.event_id) {
        setSent(answer.body.event_id)
        setVersion((v) => v + 1)
      } else {
        setSendError(
          new ApiError(
            answer.status,
            answer.body.error?.code ?? "http_error",
            answer.body.error?.message ?? `The server answered ${answer.status}.`,
            undefined,
            answer.headers.get("x-request-id") ?? undefined,
          ),
        )
      }
    } catch (error) {
      setSendError(error instanceof ApiError ? error : null)
    } finally {
      setSending(false)
    }
  }

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
        Receives: {endpoint.event_types.map(eventText).join(", ")} · added{" "}
        {formatLocalTime(endpoint.created_at)}
      </p>
      <div className="endpoint-actions">
        <button type="button" className="secondary small" onClick={sendTest} disabled={sending}>
          {sending ? "Sending…" : "Send test event"}
        </button>
        <button type="button" className="link small" onClick={() => setVersion((v) => v + 1)}>
          Refresh log
        </button>
        <DownloadCsv path={`${base}/deliveries`} query={{ limit: 20 }} label="Download log CSV" />
        {sent ? (
          <span className="small saved" role="status">
            Test event queued ({sent.slice(0, 8)}…)
          </span>
        ) : null}
      </div>
      {sendError ? <ErrorMessage error={sendError} /> : null}
      <EndpointActions api={api} url={base} endpoint={endpoint} onChanged={onChanged} />
      <h3 className="endpoint-log-title">Delivery log</h3>
      <AsyncView state={state} retry={retry} label="Loading deliveries…">
        {({ deliveries }) =>
          deliveries.length === 0 ? (
            <p className="muted small">Nothing sent to this endpoint yet.</p>
          ) : (
            <div className="table-scroll">
              <table className="deliveries" data-testid="deliveries">
                <caption className="sr-only">Deliveries to {endpoint.url}, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Event</th>
                    <th scope="col">Status</th>
                    <th scope="col" className="num">
                      Attempts
                    </th>
                    <th scope="col">Last answer</th>
                    <th scope="col">When</th>
                  </tr>
                </thead>
                <tbody>
                  {deliveries.map((d) => (
                    <tr key={d.id} data-delivery={d.id}>
                      <td>{eventText(d.event_type)}</td>
                      <td>
                        <span className={`badge ${DELIVERY_CLASS[d.status]}`} data-status={d.status}>
                          {d.status}
                        </span>
                      </td>
                      <td className="num">{formatInteger(d.attempts)}</td>
                      <td className="delivery-error">{lastAnswer(d)}</td>
                      <td className="small">
                        {d.delivered_at
                          ? `delivered ${formatLocalTime(d.delivered_at)}`
                          : d.next_attempt_at && d.status === "pending"
                            ? `retry ${formatLocalTime(d.next_attempt_at)}`
                            : `queued ${formatLocalTime(d.created_at)}`}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </AsyncView>
    </li>
  )
}
