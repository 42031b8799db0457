/**
 * The playground: the "channel selection in chat interfaces" of the product. Pick a channel, a chatbot and
 * a user, type a message, and send it through POST /api/tokens/consume exactly as a chatbot backend would.
 * The answer shows the decision, the tokens estimated and billed, the multiplier, the quota left and the
 * rate-limit headroom from the RateLimit-* headers. With a model picked from the price list, an allowed
 * turn can be settled (message tokens in, expected reply tokens out) to see its money cost.
 */
import { type FormEvent, useId, useMemo, useRef, useState } from "react"
import { ApiError } from "../api/client.ts"
import type { PriceListBody } from "../api/outcome-types.ts"
import type {
  ChannelConfig,
  ChannelConfigList,
  ConsumeBody,
  DecisionBody,
  DecisionView,
} from "../api/types.ts"
import { ChannelName, useChannelLabel } from "../channels.tsx"
import { formatInteger, formatMoney, formatMultiplier, formatSeconds } from "../format.ts"
import { REASON_TEXT } from "../reasons.ts"
import { useWorkspace } from "../session.ts"
import { TOKENIZER_NAME, useTokenizer } from "../tokenizer.ts"
import { ErrorMessage, useAsync } from "../ui/async.tsx"

interface RateLimitHeaders {
  limit: number
  remaining: number
  resetSeconds: number
}

interface Turn {
  id: number
  at: string
  channel: string
  chatbot: string
  user: string
  message: string
  messageTokens: number
  replyTokens: number
  estimatedTokens: number
  model: string | null
  status: number
  decision: DecisionView
  rateLimit: RateLimitHeaders | null
  retryAfter: string | null
}

function headerNumber(headers: Headers, name: string): number | null {
  const value = headers.get(name)
  if (value === null || value === "") return null
  const parsed = Number(value)
  return Number.isFinite(parsed) ? parsed : null
}

function rateLimitOf(headers: Headers): RateLimitHeaders | null {
  const limit = headerNumber(headers, "RateLimit-Limit")
  const remaining = headerNumber(headers, "RateLimit-Remaining")
  const reset = headerNumber(headers, "RateLimit-Reset")
  return limit === null || remaining === null ? null : { limit, remaining, resetSeconds: reset ?? 0 }
}

const CHATBOTS = ["support-bot", "sales-bot", "faq-bot"]
let nextTurnId = 1

export function Playground() {
  const { api, subscription, catalog, refreshSubscription } = useWorkspace()
  const label = useChannelLabel()
  const ids = useId()
  const tokenizer = useTokenizer()
  const sessionId = useMemo(() => `playground-${Math.random().toString(36).slice(2, 10)}`, [])
  const [channel, setChannel] = useState<string>(
    () => catalog.channels.find((c) => c.plans.includes(subscription.plan))?.channel ?? "website",
  )
  const [chatbot, setChatbot] = useState("support-bot")
  const [user, setUser] = useState("playground-user")
  const [message, setMessage] = useState("Hi! Where is my order #1042?")
  const [replyTokens, setReplyTokens] = useState("150")
  const [model, setModel] = useState("")
  const [pricesState] = useAsync(() => api.get<PriceListBody>("/api/prices"), "prices")
  const models =
    pricesState.status === "ready" ? [...new Set(pricesState.data.prices.map((p) => p.model))] : []
  const [turns, setTurns] = useState<Turn[]>([])
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)

  const messageTokens = tokenizer.count ? tokenizer.count(message) : null
  const reply = Number(replyTokens)
  const replyValid = replyTokens.trim() !== "" && Number.isInteger(reply) && reply >= 0
  const estimated = messageTokens === null || !replyValid ? null : messageTokens + reply
  const characters = [...message].length
  const entry = catalog.channels.find((c) => c.channel === channel)
  // This subscription's effective settings (its overrides over the defaults), refreshed after every turn.
  const [configState] = useAsync(
    () =>
      api.get<ChannelConfigList>(
        `/api/onboarding/subscription/${encodeURIComponent(subscription.id)}/channels/config`,
      ),
    `${subscription.id}:${turns.length}`,
  )
  const lastConfigs = useRef<ChannelConfig[] | null>(null)
  if (configState.status === "ready") lastConfigs.current = configState.data.channels
  const configs = lastConfigs.current
  const config = configs?.find((c) => c.channel === channel)
  const availability = (name: string) => {
    const c = configs?.find((item) => item.channel === name)
    if (c && !c.in_plan) return ` (needs ${c.required_plan ?? "another"} plan)`
    if (c && !c.enabled) return " (disabled)"
    return ""
  }

  async function send(event: FormEvent) {
    event.preventDefault()
    if (estimated === null || messageTokens === null) return
    setBusy(true)
    setError(null)
    const body: ConsumeBody = {
      entity_id: subscription.entity_id,
      entity_type: subscription.entity_type,
      estimated_tokens: estimated,
      operation_type: "chat",
      channel: channel as ConsumeBody["channel"],
      chatbot_id: chatbot.trim() || "support-bot",
      session_id: sessionId,
      user_identifier: user.trim() || "playground-user",
      message,
      ...(model ? { model } : {}),
    }
    try {
      const response = await api.postRaw<DecisionBody>("/api/tokens/consume", body)
      setTurns((previous) => [
        {
          id: nextTurnId++,
          at: new Date().toLocaleTimeString(),
          channel,
          chatbot: body.chatbot_id ?? "",
          user: body.user_identifier ?? "",
          message,
          messageTokens,
          replyTokens: reply,
          estimatedTokens: estimated,
          model: model || null,
          status: response.status,
          decision: response.body,
          rateLimit: rateLimitOf(response.headers),
          retryAfter: response.headers.get("Retry-After"),
        },
        ...previous,
      ])
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

  return (
    <div className="page">
      <div className="page-head">
        <h1>Playground</h1>
        <p className="muted">
          Send a chat turn through <code>POST /api/tokens/consume</code> as your backend would, and see
          omnimeter's decision. Allowed turns are real: they are recorded and charged to{" "}
          <strong>{subscription.entity_id}</strong>.
        </p>
      </div>
      <div className="playground">
        <form className="panel" onSubmit={send} noValidate aria-label="Chat turn">
          <div className="field">
            <label htmlFor={`${ids}-channel`}>Channel</label>
            <select id={`${ids}-channel`} value={channel} onChange={(e) => setChannel(e.target.value)}>
              {catalog.channels.map((c) => (
                <option key={c.channel} value={c.channel}>
                  {c.label}
                  {availability(c.channel)}
                </option>
              ))}
            </select>
            {config ? (
              <span className="hint" data-testid="channel-settings">
                Multiplier {formatMultiplier(config.token_multiplier)} · up to{" "}
                {formatInteger(config.max_message_length)} characters ·{" "}
                {formatInteger(config.requests_per_minute)} requests and{" "}
                {formatInteger(config.tokens_per_minute)} tokens per minute
                {entry ? ` · ${entry.length_limit_source}` : ""}
              </span>
            ) : null}
          </div>
          <div className="field-row">
            <div className="field">
              <label htmlFor={`${ids}-chatbot`}>Chatbot</label>
              <input
                id={`${ids}-chatbot`}
                list={`${ids}-bots`}
                value={chatbot}
                onChange={(e) => setChatbot(e.target.value)}
              />
              <datalist id={`${ids}-bots`}>
                {CHATBOTS.map((bot) => (
                  <option key={bot} value={bot} />
                ))}
              </datalist>
            </div>
            <div className="field">
              <label htmlFor={`${ids}-user`}>End user</label>
              <input id={`${ids}-user`} value={user} onChange={(e) => setUser(e.target.value)} />
            </div>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-message`}>Message</label>
            <textarea
              id={`${ids}-message`}
              rows={4}
              value={message}
              onChange={(e) => setMessage(e.target.value)}
              aria-describedby={`${ids}-count`}
            />
            <span className="hint" id={`${ids}-count`} aria-live="polite" data-testid="token-count">
              {tokenizer.error
                ? `The tokenizer failed to load: ${tokenizer.error}`
                : messageTokens === null
                  ? "Loading the tokenizer…"
                  : `${formatInteger(messageTokens)} tokens · ${formatInteger(characters)} characters · tokenizer ${TOKENIZER_NAME}`}
            </span>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-reply`}>Expected reply tokens</label>
            <input
              id={`${ids}-reply`}
              inputMode="numeric"
              value={replyTokens}
              onChange={(e) => setReplyTokens(e.target.value)}
              aria-invalid={replyValid ? undefined : true}
              aria-describedby={`${ids}-estimate`}
            />
            <span className="hint" id={`${ids}-estimate`}>
              {replyValid
                ? estimated === null
                  ? "Estimated tokens: waiting for the tokenizer"
                  : `Estimated tokens sent: ${formatInteger(estimated)} (message + expected reply)`
                : "A whole number of tokens, 0 or more"}
            </span>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-model`}>Model</label>
            <select id={`${ids}-model`} value={model} onChange={(e) => setModel(e.target.value)}>
              <option value="">None (unpriced)</option>
              {models.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
            <span className="hint">From the price list; settle an allowed turn to see its cost.</span>
          </div>
          <button type="submit" disabled={busy || estimated === null}>
            {busy ? "Sending…" : `Send on ${label(channel)}`}
          </button>
          {error ? <ErrorMessage error={error} /> : null}
        </form>
        <section className="transcript" aria-labelledby={`${ids}-decisions`} aria-live="polite">
          <h2 id={`${ids}-decisions`}>Decisions</h2>
          {turns.length === 0 ? (
            <div className="state state-empty">
              <strong>No turns yet</strong>
              <p>Send a message to see what omnimeter decides.</p>
            </div>
          ) : (
            <ol className="turns">
              {turns.map((turn) => (
                <TurnView key={turn.id} turn={turn} />
              ))}
            </ol>
          )}
        </section>
      </div>
    </div>
  )
}

/** Settles an allowed turn with its message tokens as input and the expected reply as output. */
function SettleTurn({ turn }: { turn: Turn }) {
  const { api } = useWorkspace()
  const [state, setState] = useState<
    | { status: "idle" | "busy" }
    | { status: "done"; cost: string | null; currency: string }
    | { status: "error"; error: ApiError }
  >({ status: "idle" })
  const usageId = turn.decision.usage_id
  if (!turn.decision.allowed || !usageId || turn.decision.replayed) return null
  async function settle() {
    setState({ status: "busy" })
    const response = await api.postRaw<{
      cost: string | null
      currency: string
      error?: { code: string; message: string }
    }>("/api/tokens/settle", {
      usage_id: usageId,
      input_tokens: turn.messageTokens,
      output_tokens: turn.replyTokens,
    })
    if (response.status === 200)
      setState({ status: "done", cost: response.body.cost, currency: response.body.currency })
    else
      setState({
        status: "error",
        error: new ApiError(
          response.status,
          response.body.error?.code ?? "http_error",
          response.body.error?.message ?? "",
          undefined,
          undefined,
        ),
      })
  }
  if (state.status === "done")
    return (
      <div>
        <dt>Cost{turn.model ? ` (${turn.model})` : ""}</dt>
        <dd data-figure="cost" title={state.cost ?? undefined}>
          {state.cost === null ? "unpriced" : formatMoney(state.cost, state.currency)}
        </dd>
      </div>
    )
  return (
    <div>
      <dt>Cost</dt>
      <dd>
        <button
          type="button"
          className="link"
          onClick={settle}
          disabled={state.status === "busy"}
          data-testid="settle"
        >
          Settle {formatInteger(turn.messageTokens)} in + {formatInteger(turn.replyTokens)} out
        </button>
        {state.status === "error" ? <ErrorMessage error={state.error} /> : null}
      </dd>
    </div>
  )
}

function TurnView({ turn }: { turn: Turn }) {
  const d = turn.decision
  const reason = d.reason
  return (
    <li
      className={`turn ${d.allowed ? "turn-allowed" : "turn-denied"}`}
      data-testid="turn"
      data-allowed={String(d.allowed)}
      data-reason={reason ?? ""}
    >
      <div className="turn-meta muted small">
        <ChannelName channel={turn.channel} /> · {turn.chatbot} · {turn.user} · {turn.at}
      </div>
      <p className="bubble">{turn.message}</p>
      <div className="verdict">
        {d.allowed ? (
          <strong className="allowed">
            <span aria-hidden="true">✓ </span>Allowed
          </strong>
        ) : (
          <strong className="denied">
            <span aria-hidden="true">✕ </span>Denied: {reason ? (REASON_TEXT[reason] ?? reason) : "unknown"}{" "}
            <code data-testid="reason">{reason}</code>
          </strong>
        )}
        <span className="muted small"> HTTP {turn.status}</span>
      </div>
      {!d.allowed && d.message ? <p className="small">{d.message}</p> : null}
      <dl className="figures">
        <div>
          <dt>Message tokens</dt>
          <dd>{formatInteger(turn.messageTokens)}</dd>
        </div>
        <div>
          <dt>Estimated</dt>
          <dd data-figure="estimated">{formatInteger(d.raw_tokens ?? turn.estimatedTokens)}</dd>
        </div>
        {d.multiplier !== undefined ? (
          <div>
            <dt>Multiplier</dt>
            <dd data-figure="multiplier">{formatMultiplier(d.multiplier)}</dd>
          </div>
        ) : null}
        <div>
          <dt>Billed</dt>
          <dd data-figure="billed">{formatInteger(d.billed_tokens ?? 0)}</dd>
        </div>
        {d.remaining_tokens !== undefined ? (
          <div>
            <dt>Quota left</dt>
            <dd data-figure="remaining">
              {formatInteger(d.remaining_tokens)}
              {d.token_limit !== undefined ? (
                <span className="muted small"> of {formatInteger(d.token_limit)}</span>
              ) : null}
            </dd>
          </div>
        ) : null}
        {turn.rateLimit ? (
          <div>
            <dt>Rate limit</dt>
            <dd data-figure="rate-limit">
              {formatInteger(turn.rateLimit.remaining)} of {formatInteger(turn.rateLimit.limit)} left
              <span className="muted small">
                {" "}
                · resets in {formatSeconds(turn.rateLimit.resetSeconds * 1000)}
              </span>
            </dd>
          </div>
        ) : null}
        {d.retry_after_ms !== undefined ? (
          <div>
            <dt>Retry after</dt>
            <dd data-figure="retry-after">{formatSeconds(d.retry_after_ms)}</dd>
          </div>
        ) : null}
        {d.required_plan ? (
          <div>
            <dt>Unlocked by</dt>
            <dd data-figure="required-plan">{d.required_plan} plan</dd>
          </div>
        ) : null}
        {d.max_message_length !== undefined ? (
          <div>
            <dt>Length</dt>
            <dd data-figure="length">
              {formatInteger(d.message_length ?? 0)} of {formatInteger(d.max_message_length)} characters
            </dd>
          </div>
        ) : null}
        {d.status && !d.allowed ? (
          <div>
            <dt>Subscription</dt>
            <dd>{d.status}</dd>
          </div>
        ) : null}
        <SettleTurn turn={turn} />
      </dl>
    </li>
  )
}
