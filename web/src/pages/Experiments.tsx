/**
 * Experiments on channels: the list, a form to create one (sent as typed; the API's message appears next
 * to the field it names), start and stop, and the results: per variant the primary metric with its 95%
 * interval drawn as a bar, the difference from the control with its p-value, and the verdict in words.
 */
import "../journeys.css"
import { useState } from "react"
import { ApiError } from "../api/client.ts"
import type { ExperimentBody, ExperimentList, ExperimentResultsBody } from "../api/journey-types.ts"
import { ChannelName } from "../channels.tsx"
import { formatDecimal, formatInteger, formatLocalTime } from "../format.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, ErrorMessage, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { ScrollableTable } from "../ui/ScrollableTable.tsx"

const METRICS = {
  conversion_rate: "Conversion rate",
  tokens_per_turn: "Tokens per turn",
  cost_per_conversion: "Cost per conversion",
  sentiment_avg: "Average sentiment",
  csat_avg: "Average CSAT",
} as const

const value = (n: number | null | undefined) =>
  n === null || n === undefined ? "–" : Math.abs(n) < 1 ? n.toFixed(4) : formatDecimal(n)

/** Each variant's interval as a horizontal bar with its value marked, on one shared scale. */
function IntervalChart({ results }: { results: ExperimentResultsBody }) {
  const rows = results.variants.filter((v) => v.metric.interval && v.metric.value !== null)
  if (rows.length === 0) return null
  const lows = rows.map((v) => v.metric.interval?.low ?? 0)
  const highs = rows.map((v) => v.metric.interval?.high ?? 0)
  const min = Math.min(...lows)
  const max = Math.max(...highs)
  const span = max - min || 1
  // The names' column fits the longest name (7 units a character of the 12 px names), up to 160 units.
  const left = Math.min(160, 10 + 7 * Math.max(...rows.map((v) => v.name.length)))
  const width = left + 250
  const x = (n: number) => left + ((n - min) / span) * (width - left - 10)
  const axisY = rows.length * 28 + 4
  return (
    <svg
      className="interval-chart"
      viewBox={`0 0 ${width} ${axisY + 18}`}
      role="img"
      aria-label="95% intervals of the primary metric per variant"
    >
      {rows.map((v, i) => {
        const y = 14 + i * 28
        const low = v.metric.interval?.low ?? 0
        const high = v.metric.interval?.high ?? 0
        return (
          <g key={v.name} className="interval">
            <text x={0} y={y + 4} fontSize="12">
              {v.name}
            </text>
            <line
              x1={x(low)}
              x2={x(high)}
              y1={y}
              y2={y}
              stroke="#2563eb"
              strokeWidth={6}
              strokeLinecap="round"
            />
            <circle cx={x(v.metric.value ?? 0)} cy={y} r={5} fill="#0f172a" />
            <title>{`${v.name}: ${value(v.metric.value)} (95% interval ${value(low)} to ${value(high)})`}</title>
          </g>
        )
      })}
      {/* The scale's two ends, so a position reads as a number. */}
      <g className="axis" fontSize="11">
        <line x1={x(min)} x2={x(max)} y1={axisY} y2={axisY} stroke="currentColor" strokeOpacity={0.3} />
        <text x={x(min)} y={axisY + 14} data-value={min}>
          {value(min)}
        </text>
        <text x={x(max)} y={axisY + 14} textAnchor="end" data-value={max}>
          {value(max)}
        </text>
      </g>
    </svg>
  )
}

function Results({ experiment }: { experiment: ExperimentBody }) {
  const { api, subscription } = useWorkspace()
  const [state, retry] = useAsync(
    () =>
      api.get<ExperimentResultsBody>(
        `/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments/${experiment.id}/results`,
      ),
    `${experiment.id}:${experiment.status}:${experiment.updated_at}`,
  )
  return (
    <AsyncView state={state} retry={retry} label="Loading results…">
      {(results) => (
        <div data-testid="experiment-results">
          <p className={`verdict${results.verdict.decided ? " decided" : ""}`} data-testid="verdict">
            {results.verdict.text}
          </p>
          {results.sample_ratio.mismatch ? (
            <p className="field-error">Sample ratio mismatch: the split does not follow the weights.</p>
          ) : null}
          <IntervalChart results={results} />
          <DownloadCsv
            path={`/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments/${experiment.id}/results`}
            label="Download results CSV"
          />
          <ScrollableTable columns={9}>
            <table data-testid="variants">
              <thead>
                <tr>
                  <th>Variant</th>
                  <th>People</th>
                  <th>Turns</th>
                  <th>Tokens / turn</th>
                  <th>Billed tokens</th>
                  <th>Conversions</th>
                  <th>{METRICS[results.primary_metric]} (95% interval)</th>
                  <th>Difference vs control</th>
                  <th>p-value</th>
                </tr>
              </thead>
              <tbody>
                {results.variants.map((v) => (
                  <tr key={v.name}>
                    <td>
                      {v.name}
                      {v.label ? <span className="muted small"> ({v.label})</span> : null}
                    </td>
                    <td>{formatInteger(v.people)}</td>
                    <td>{formatInteger(v.turns)}</td>
                    <td>{value(v.tokens_per_turn)}</td>
                    <td>{formatInteger(v.billed_tokens)}</td>
                    <td>{v.conversions === null ? "–" : formatInteger(v.conversions)}</td>
                    <td>
                      {value(v.metric.value)}
                      {v.metric.interval
                        ? ` (${value(v.metric.interval.low)} to ${value(v.metric.interval.high)})`
                        : ""}
                    </td>
                    <td>
                      {v.comparison
                        ? `${value(v.comparison.difference)} (${value(v.comparison.interval.low)} to ${value(v.comparison.interval.high)})`
                        : "control"}
                    </td>
                    <td>{v.comparison ? v.comparison.p_value.toPrecision(2) : "–"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollableTable>
          <p className="muted small">
            A verdict needs {results.min_people_per_variant} people per variant and p below {results.alpha}.
          </p>
        </div>
      )}
    </AsyncView>
  )
}

/** A variant's overrides in words, e.g. "priority 7, max message length 500"; none: the channel's settings. */
function overridesText(overrides: ExperimentBody["variants"][number]["overrides"]): string {
  // The schema's snake_case mapping is not seen through by the type: read it as the record it is.
  const given: Partial<Record<OverrideKey, unknown>> =
    typeof overrides === "object" && overrides !== null ? overrides : {}
  const set = OVERRIDES.flatMap(({ key, label }) => {
    const value = given[key]
    return typeof value === "number" ? [`${label.toLowerCase()} ${formatDecimal(value)}`] : []
  })
  return set.length === 0 ? "the channel's settings" : set.join(", ")
}

function ExperimentCard({ experiment, onChange }: { experiment: ExperimentBody; onChange: () => void }) {
  const { api, subscription } = useWorkspace()
  const [error, setError] = useState<ApiError | null>(null)
  const setStatus = async (status: "running" | "stopped") => {
    setError(null)
    try {
      await api.patch(
        `/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments/${experiment.id}`,
        {
          status,
        },
      )
      onChange()
    } catch (e) {
      if (e instanceof ApiError) setError(e)
      else throw e
    }
  }
  return (
    <section className="panel" data-testid={`experiment-${experiment.name}`}>
      <div className="panel-head">
        <h2>{experiment.name}</h2>
        <span className="muted">{experiment.status}</span>
      </div>
      <p className="muted small">
        {experiment.channels.map((channel) => (
          <span key={channel}>
            <ChannelName channel={channel} />{" "}
          </span>
        ))}
        · {METRICS[experiment.primary_metric]}
        {experiment.started_at ? ` · started ${formatLocalTime(experiment.started_at)}` : ""}
      </p>
      <ul className="variant-list muted small" data-testid="variant-overrides">
        {experiment.variants.map((variant) => (
          <li key={variant.name} data-variant={variant.name}>
            {variant.name} ({formatDecimal(variant.weight)}): {overridesText(variant.overrides)}
          </li>
        ))}
      </ul>
      {experiment.status === "draft" ? (
        <button type="button" onClick={() => setStatus("running")}>
          Start
        </button>
      ) : null}
      {experiment.status === "running" ? (
        <button type="button" onClick={() => setStatus("stopped")}>
          Stop
        </button>
      ) : null}
      {error ? <ErrorMessage error={error} /> : null}
      {experiment.status !== "draft" ? <Results experiment={experiment} /> : null}
    </section>
  )
}

/** The channel settings a variant may override, as the API names them, with the form's words. */
const OVERRIDES = [
  { key: "token_multiplier", label: "Multiplier", hint: "0.01-10" },
  { key: "max_message_length", label: "Max message length", hint: "characters" },
  { key: "requests_per_minute", label: "Requests per minute", hint: "0 blocks" },
  { key: "tokens_per_minute", label: "Tokens per minute", hint: "0 blocks" },
  { key: "priority", label: "Priority", hint: "1-10" },
] as const
type OverrideKey = (typeof OVERRIDES)[number]["key"]

interface VariantDraft {
  name: string
  weight: string
  label: string
  /** Empty: the channel's own setting. */
  overrides: Record<OverrideKey, string>
}

const noOverrides = (): Record<OverrideKey, string> => ({
  token_multiplier: "",
  max_message_length: "",
  requests_per_minute: "",
  tokens_per_minute: "",
  priority: "",
})

/** The overrides typed in, as numbers (a non-number goes as sent, for the API to name it). */
function overridesOf(draft: VariantDraft): Partial<Record<OverrideKey, number>> | undefined {
  const given = OVERRIDES.filter(({ key }) => draft.overrides[key].trim() !== "")
  if (given.length === 0) return undefined
  return Object.fromEntries(given.map(({ key }) => [key, Number(draft.overrides[key])]))
}

/** The variant and override an API error names (`variants.1.overrides.priority`), if any. */
function blamed(field: string | undefined): { variant: number; key: string | undefined } | undefined {
  const match = /^variants\.(\d+)(?:\.overrides\.(\w+))?/.exec(field ?? "")
  return match ? { variant: Number(match[1]), key: match[2] } : undefined
}

function CreateForm({ onCreated }: { onCreated: () => void }) {
  const { api, subscription, catalog } = useWorkspace()
  const [name, setName] = useState("")
  const [channels, setChannels] = useState<string[]>([])
  const [metric, setMetric] = useState<keyof typeof METRICS>("conversion_rate")
  const [variants, setVariants] = useState<VariantDraft[]>([
    { name: "control", weight: "1", label: "", overrides: noOverrides() },
    { name: "treatment", weight: "1", label: "", overrides: noOverrides() },
  ])
  const [open, setOpen] = useState<boolean[]>([false, false])
  const [error, setError] = useState<{ message: string; field?: string } | null>(null)
  const [busy, setBusy] = useState(false)
  const update = (i: number, patch: Partial<VariantDraft>) =>
    setVariants((list) => list.map((v, j) => (i === j ? { ...v, ...patch } : v)))
  const updateOverride = (i: number, key: OverrideKey, text: string) =>
    setVariants((list) =>
      list.map((v, j) => (i === j ? { ...v, overrides: { ...v.overrides, [key]: text } } : v)),
    )
  const fail = (failure: { message: string; field?: string }) => {
    setError(failure)
    const where = blamed(failure.field)
    // The overrides the API blames are shown, so the field it names is in sight.
    if (where?.key) setOpen((list) => list.map((isOpen, j) => isOpen || j === where.variant))
  }
  const submit = async (event: React.FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const answer = await api.postRaw<{ error?: { message: string; field?: string } }>(
        `/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments`,
        {
          name,
          channels,
          primary_metric: metric,
          variants: variants.map((v) => {
            const overrides = overridesOf(v)
            return {
              name: v.name,
              weight: Number(v.weight),
              ...(overrides ? { overrides } : {}),
              ...(v.label ? { label: v.label } : {}),
            }
          }),
        },
      )
      if (answer.status === 201) {
        setName("")
        onCreated()
      } else fail(answer.body.error ?? { message: `The server answered ${answer.status}.` })
    } catch (e) {
      if (e instanceof ApiError) fail({ message: e.message, ...(e.field ? { field: e.field } : {}) })
      else throw e
    } finally {
      setBusy(false)
    }
  }
  const where = blamed(error?.field)
  return (
    <section className="panel">
      <h2>New experiment</h2>
      <form className="experiment-form" onSubmit={submit}>
        <label>
          Experiment name <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <fieldset>
          <legend>Channels</legend>
          {catalog.channels.map((c) => (
            <label key={c.channel}>
              <input
                type="checkbox"
                checked={channels.includes(c.channel)}
                onChange={(e) =>
                  setChannels((list) =>
                    e.target.checked ? [...list, c.channel] : list.filter((x) => x !== c.channel),
                  )
                }
              />{" "}
              {c.label}
            </label>
          ))}
        </fieldset>
        <label>
          Primary metric{" "}
          <select value={metric} onChange={(e) => setMetric(e.target.value as keyof typeof METRICS)}>
            {Object.entries(METRICS).map(([key, label]) => (
              <option key={key} value={key}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {variants.map((v, i) => {
          const set = OVERRIDES.filter(({ key }) => v.overrides[key].trim() !== "").length
          return (
            <div className="variant" key={i.toString()}>
              <div className="variant-row">
                <label>
                  Variant{" "}
                  <input
                    aria-label={`variant ${i + 1} name`}
                    value={v.name}
                    onChange={(e) => update(i, { name: e.target.value })}
                  />
                </label>
                <label>
                  Weight{" "}
                  <input
                    aria-label={`variant ${i + 1} weight`}
                    inputMode="decimal"
                    value={v.weight}
                    onChange={(e) => update(i, { weight: e.target.value })}
                  />
                </label>
                <label>
                  Label{" "}
                  <input
                    aria-label={`variant ${i + 1} label`}
                    placeholder="prompt, model…"
                    value={v.label}
                    onChange={(e) => update(i, { label: e.target.value })}
                  />
                </label>
              </div>
              <details
                className="variant-overrides"
                open={open[i] ?? false}
                onToggle={(e) => {
                  const isOpen = e.currentTarget.open
                  setOpen((list) => list.map((was, j) => (j === i ? isOpen : was)))
                }}
              >
                <summary>
                  Overrides of variant {i + 1}
                  <span className="muted small">
                    {" "}
                    ({set === 0 ? "the channel's settings" : `${set} set`})
                  </span>
                </summary>
                <div className="variant-row">
                  {OVERRIDES.map(({ key, label, hint }) => {
                    const invalid = where?.variant === i && where.key === key
                    return (
                      <label key={key}>
                        {label}{" "}
                        <input
                          aria-label={`variant ${i + 1} ${label.toLowerCase()}`}
                          aria-invalid={invalid || undefined}
                          aria-describedby={invalid ? "experiment-form-error" : undefined}
                          inputMode={key === "token_multiplier" ? "decimal" : "numeric"}
                          placeholder={`channel's (${hint})`}
                          value={v.overrides[key]}
                          onChange={(e) => updateOverride(i, key, e.target.value)}
                        />
                      </label>
                    )
                  })}
                </div>
              </details>
            </div>
          )
        })}
        {error ? (
          <p className="field-error" role="alert" id="experiment-form-error">
            {error.message}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          Create as draft
        </button>
      </form>
    </section>
  )
}

export function Experiments() {
  const { api, subscription } = useWorkspace()
  const [version, setVersion] = useState(0)
  const [state, retry] = useAsync(
    () => api.get<ExperimentList>(`/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments`),
    `${subscription.id}:${version}`,
  )
  const refresh = () => setVersion((v) => v + 1)
  return (
    <>
      <section className="panel">
        <div className="toolbar">
          <h1>Experiments</h1>
          <DownloadCsv path={`/api/subscriptions/${encodeURIComponent(subscription.id)}/experiments`} />
        </div>
        <p className="muted">
          Compare channel configurations on real traffic: each person is assigned a variant for good, and
          consume applies its overrides.
        </p>
      </section>
      <CreateForm onCreated={refresh} />
      <AsyncView state={state} retry={retry} label="Loading experiments…">
        {(data) =>
          data.experiments.length === 0 ? (
            <Empty title="No experiments yet" />
          ) : (
            data.experiments.map((experiment) => (
              <ExperimentCard key={experiment.id} experiment={experiment} onChange={refresh} />
            ))
          )
        }
      </AsyncView>
    </>
  )
}
