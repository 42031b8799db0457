/** One turn: its decision, its settlement, and the other turns of its session (from the turn log). */
import type { TurnBody, TurnPage } from "../api/drilldown-types.ts"
import { ChannelName } from "../channels.tsx"
import { formatDecimal, formatInteger, formatLocalTime } from "../format.ts"
import { REASON_TEXT } from "../reasons.ts"
import { useLinkHandler } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { DecisionBadge, TurnTable, useSubscriptionHref } from "./Turns.tsx"
import "../drilldown.css"

const SESSION_PAGE = 100

export function TurnDetail({ usageId }: { usageId: string }) {
  const { api, subscription } = useWorkspace()
  const onLink = useLinkHandler()
  const link = useSubscriptionHref()
  const base = `/api/subscriptions/${encodeURIComponent(subscription.id)}/turns`
  const [state, retry] = useAsync(async () => {
    const turn = await api.get<TurnBody>(`${base}/${encodeURIComponent(usageId)}`)
    const session =
      turn.session_id === null
        ? null
        : await api.get<TurnPage>(base, { session_id: turn.session_id, limit: SESSION_PAGE })
    return { turn, session }
  }, `${subscription.id}:${usageId}`)
  return (
    <div className="page">
      <div className="page-head">
        <p className="breadcrumb">
          <a href={link("/turns")} onClick={onLink}>
            Turns
          </a>{" "}
          / one turn
        </p>
        <h1>Turn</h1>
      </div>
      <AsyncView state={state} retry={retry} label="Loading the turn…">
        {({ turn, session }) => (
          <>
            <div className="turn-cards">
              <section className="panel" aria-labelledby="decision-title" data-testid="turn-decision">
                <h2 id="decision-title">
                  Decision <DecisionBadge turn={turn} />
                </h2>
                <dl className="turn-facts">
                  <Fact label="Usage id" value={turn.usage_id} />
                  <Fact label="Time" value={formatLocalTime(turn.created_at)} />
                  <Fact label="Channel" value={<ChannelName channel={turn.channel} />} />
                  <Fact label="Chatbot" value={turn.chatbot_id ?? "–"} />
                  <Fact label="End user" value={turn.user_identifier ?? "–"} />
                  <Fact label="Session" value={turn.session_id ?? "–"} />
                  <Fact label="Operation" value={turn.operation_type} />
                  <Fact
                    label="Reason"
                    value={turn.denial_reason ? (REASON_TEXT[turn.denial_reason] ?? turn.denial_reason) : "–"}
                  />
                  <Fact label="Estimated tokens" value={formatInteger(turn.estimated_tokens)} />
                  <Fact label="Multiplier" value={`× ${formatDecimal(turn.token_multiplier)}`} />
                  <Fact
                    label="Message length"
                    value={turn.message_length === null ? "–" : formatInteger(turn.message_length)}
                  />
                  <Fact label="Idempotency key" value={turn.idempotency_key ?? "–"} />
                </dl>
              </section>
              <section className="panel" aria-labelledby="settlement-title" data-testid="turn-settlement">
                <h2 id="settlement-title">Settlement</h2>
                <p className="muted small">{settlementText(turn)}</p>
                <dl className="turn-facts">
                  <Fact label="Status" value={turn.status} />
                  <Fact label="Raw tokens" value={formatInteger(turn.raw_tokens)} />
                  <Fact label="Billed tokens" value={formatInteger(turn.billed_tokens)} />
                  <Fact label="Settled" value={turn.settled_at ? formatLocalTime(turn.settled_at) : "–"} />
                  <Fact label="Outcome" value={turn.outcome ?? "–"} />
                  <Fact
                    label="Latency"
                    value={turn.latency_ms === null ? "–" : `${formatInteger(turn.latency_ms)} ms`}
                  />
                  <Fact
                    label="Billing period from"
                    value={turn.period_start ? formatLocalTime(turn.period_start) : "–"}
                  />
                </dl>
              </section>
            </div>
            <section className="panel" aria-labelledby="session-title">
              <div className="toolbar">
                <h2 id="session-title">
                  {turn.session_id === null ? "Session" : `Session ${turn.session_id}`}
                </h2>
                {turn.session_id !== null ? (
                  <DownloadCsv path={base} query={{ session_id: turn.session_id }} />
                ) : null}
              </div>
              {session === null ? (
                <p className="muted">This turn named no session.</p>
              ) : (
                <>
                  <p className="muted small">
                    {session.next_cursor
                      ? `The session's latest ${SESSION_PAGE} turns; `
                      : `The session's ${formatInteger(session.turns.length)} turns; `}
                    this one is highlighted.{" "}
                    <a href={link("/turns", { session_id: turn.session_id ?? undefined })} onClick={onLink}>
                      Open in the turn log
                    </a>
                  </p>
                  <TurnTable turns={session.turns} current={turn.usage_id} />
                </>
              )}
            </section>
          </>
        )}
      </AsyncView>
    </div>
  )
}

function settlementText(turn: TurnBody): string {
  if (turn.status === "denied") return "Denied turns are not charged and have nothing to settle."
  if (turn.status === "estimated")
    return "Charged its estimate; not settled yet. Settling replaces the estimate with the actual tokens."
  const difference = turn.raw_tokens - turn.estimated_tokens
  return difference === 0
    ? "Settled at exactly its estimate."
    : `Settled at ${formatInteger(turn.raw_tokens)} actual tokens, ${formatInteger(Math.abs(difference))} ${difference < 0 ? "fewer" : "more"} than estimated.`
}

function Fact({ label, value }: { label: string; value: React.ReactNode }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  )
}
