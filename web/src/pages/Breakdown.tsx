/**
 * Drill-down: the period's turns by chatbot, end user or session, sortable by any column, paged, with a
 * CSV download. An item opens the turn log filtered to it; a chatbot filter narrows every tab.
 */
import { type FormEvent, useEffect, useState } from "react"
import type { BreakdownBody, BreakdownDimension, BreakdownSort } from "../api/drilldown-types.ts"
import { formatInteger, formatLocalTime } from "../format.ts"
import { href, navigate, useLinkHandler, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { PeriodPicker, usePeriodQuery } from "../ui/PeriodPicker.tsx"
import { useSubscriptionHref } from "./Turns.tsx"
import "../drilldown.css"

const DIMENSIONS: ReadonlyArray<{ by: BreakdownDimension; label: string; filter: string }> = [
  { by: "chatbot", label: "Chatbots", filter: "chatbot_id" },
  { by: "user", label: "End users", filter: "user_identifier" },
  { by: "session", label: "Sessions", filter: "session_id" },
]

const COLUMNS: ReadonlyArray<{ sort: BreakdownSort; label: string }> = [
  { sort: "tokens_used", label: "Tokens" },
  { sort: "message_count", label: "Allowed" },
  { sort: "denied_count", label: "Denied" },
  { sort: "turns", label: "Turns" },
  { sort: "unique_users", label: "Users" },
  { sort: "sessions", label: "Sessions" },
  { sort: "last_activity_at", label: "Last activity" },
]

const PAGE = 25

export function Breakdown() {
  const { api, subscription } = useWorkspace()
  const location = useLocation()
  const onLink = useLinkHandler()
  const period = usePeriodQuery()
  const q = location.query
  const by = (DIMENSIONS.find((d) => d.by === q.get("by"))?.by ?? "chatbot") as BreakdownDimension
  const sort = (q.get("sort") ?? "tokens_used") as BreakdownSort
  const order = q.get("order") === "asc" ? "asc" : q.get("order") === "desc" ? "desc" : undefined
  const offset = Number(q.get("offset") ?? 0) || 0
  const chatbot = q.get("chatbot_id") ?? undefined
  const path = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/breakdown`
  const query = { ...period, by, sort, order, chatbot_id: chatbot }
  const [state, retry] = useAsync(
    () => api.get<BreakdownBody>(path, { ...query, limit: PAGE, offset }),
    `${subscription.id}:${JSON.stringify(query)}:${offset}`,
  )
  const go = (changes: Record<string, string | undefined>) =>
    navigate(href(location.path, { ...Object.fromEntries(q.entries()), ...changes }))

  return (
    <div className="page">
      <div className="page-head">
        <h1>Breakdown</h1>
        <p className="muted">Who uses the tokens: per chatbot, end user and session, over the period.</p>
      </div>
      <nav className="tabs" aria-label="Group by">
        {DIMENSIONS.map((d) => (
          <a
            key={d.by}
            className="button-link"
            href={href(location.path, { ...Object.fromEntries(q.entries()), by: d.by, offset: undefined })}
            onClick={onLink}
            aria-current={d.by === by ? "page" : undefined}
          >
            {d.label}
          </a>
        ))}
      </nav>
      <AsyncView state={state} retry={retry} label="Loading the breakdown…">
        {(answer) => (
          <>
            <PeriodPicker from={answer.period.from} to={answer.period.to} timezone={answer.timezone} />
            <ChatbotFilter chatbot={chatbot} onChange={(id) => go({ chatbot_id: id, offset: undefined })} />
            <section className="panel" aria-labelledby="breakdown-title">
              <div className="toolbar">
                <h2 id="breakdown-title">
                  {DIMENSIONS.find((d) => d.by === by)?.label} ({formatInteger(answer.total_items)})
                </h2>
                <DownloadCsv path={path} query={query} />
              </div>
              {answer.items.length === 0 ? (
                <Empty title="No turns in this period">Widen the period or clear the chatbot filter.</Empty>
              ) : (
                <BreakdownTable
                  answer={answer}
                  chatbot={chatbot}
                  onSort={(next) =>
                    go({
                      sort: next,
                      order: next === answer.sort ? (answer.order === "asc" ? "desc" : "asc") : undefined,
                      offset: undefined,
                    })
                  }
                />
              )}
              <div className="pager">
                <button
                  type="button"
                  className="secondary"
                  disabled={offset === 0}
                  onClick={() => go({ offset: String(Math.max(0, offset - PAGE)) || undefined })}
                >
                  Previous
                </button>
                <span className="muted small">
                  {answer.items.length > 0
                    ? `${formatInteger(offset + 1)}–${formatInteger(offset + answer.items.length)} of ${formatInteger(answer.total_items)}`
                    : ""}
                </span>
                <button
                  type="button"
                  className="secondary"
                  disabled={answer.next_offset === null}
                  onClick={() => go({ offset: String(answer.next_offset ?? 0) })}
                >
                  Next
                </button>
              </div>
            </section>
          </>
        )}
      </AsyncView>
    </div>
  )
}

function ChatbotFilter({
  chatbot,
  onChange,
}: {
  chatbot: string | undefined
  onChange: (id: string | undefined) => void
}) {
  const [draft, setDraft] = useState(chatbot ?? "")
  useEffect(() => setDraft(chatbot ?? ""), [chatbot])
  const submit = (event: FormEvent) => {
    event.preventDefault()
    onChange(draft.trim() || undefined)
  }
  return (
    <form className="period" onSubmit={submit} aria-label="Chatbot filter">
      <div className="field-inline">
        <label htmlFor="breakdown-chatbot">Only chatbot</label>
        <input
          id="breakdown-chatbot"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="any"
        />
      </div>
      <button type="submit">Apply</button>
      {chatbot ? (
        <button type="button" className="secondary" onClick={() => onChange(undefined)}>
          All chatbots
        </button>
      ) : null}
    </form>
  )
}

function BreakdownTable({
  answer,
  chatbot,
  onSort,
}: {
  answer: BreakdownBody
  chatbot: string | undefined
  onSort: (sort: BreakdownSort) => void
}) {
  const onLink = useLinkHandler()
  const link = useSubscriptionHref()
  const filter = DIMENSIONS.find((d) => d.by === answer.by)?.filter ?? "chatbot_id"
  const ariaSort = (sort: BreakdownSort) =>
    answer.sort === sort ? (answer.order === "asc" ? "ascending" : "descending") : undefined
  const header = (sort: BreakdownSort, label: string, numeric = true) => (
    <th key={sort} scope="col" className={numeric ? "num" : undefined} aria-sort={ariaSort(sort)}>
      <button type="button" className="sort-button" onClick={() => onSort(sort)}>
        {label}
        {answer.sort === sort ? (answer.order === "asc" ? " ▲" : " ▼") : ""}
      </button>
    </th>
  )
  return (
    <div className="table-scroll">
      <table data-testid="breakdown">
        <caption className="sr-only">Usage by {answer.by}</caption>
        <thead>
          <tr>
            {header(
              "key",
              answer.by === "chatbot" ? "Chatbot" : answer.by === "user" ? "End user" : "Session",
              false,
            )}
            {COLUMNS.map((c) => header(c.sort, c.label, c.sort !== "last_activity_at"))}
          </tr>
        </thead>
        <tbody>
          {answer.items.map((item) => (
            <tr key={item.key ?? ""} data-key={item.key ?? ""}>
              <th scope="row">
                {item.key === null ? (
                  <span className="muted">(none)</span>
                ) : (
                  <a
                    href={link("/turns", {
                      [filter]: item.key,
                      chatbot_id: filter === "chatbot_id" ? item.key : chatbot,
                      since: answer.period.start,
                      until: answer.period.end,
                    })}
                    onClick={onLink}
                    title="Open these turns in the turn log"
                  >
                    {item.key}
                  </a>
                )}
              </th>
              <td className="num">{formatInteger(item.tokens_used)}</td>
              <td className="num">{formatInteger(item.message_count)}</td>
              <td className="num">{formatInteger(item.denied_count)}</td>
              <td className="num">{formatInteger(item.turns)}</td>
              <td className="num">{formatInteger(item.unique_users)}</td>
              <td className="num">{formatInteger(item.sessions)}</td>
              <td>{formatLocalTime(item.last_activity_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
