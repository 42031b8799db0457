/**
 * What each channel earns and costs: money cost, value, ROI, conversions, response times, sentiment and
 * CSAT per channel (GET .../outcomes), as charts with their numbers and one table. The attribution model
 * is a query parameter, like the period, so a reload or a shared link shows the same view.
 */
import type { AttributionModel, ChannelOutcomesBody, OutcomesAnswerBody } from "../api/outcome-types.ts"
import { ChannelName, useChannelLabel } from "../channels.tsx"
import { BarChart } from "../charts/BarChart.tsx"
import { formatDecimal, formatInteger, formatMoney, formatPercent } from "../format.ts"
import { href, navigate, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { PeriodPicker, usePeriodQuery } from "../ui/PeriodPicker.tsx"

const MODELS: ReadonlyArray<{ value: AttributionModel; label: string }> = [
  { value: "last_touch", label: "Last touch" },
  { value: "first_touch", label: "First touch" },
  { value: "linear", label: "Linear" },
]

const dash = "–"
const ratioText = (value: number | null) => (value === null ? dash : formatDecimal(value))
const percentText = (value: number | null) =>
  value === null ? dash : formatPercent(Math.round(value * 1000) / 10)
const msText = (value: number | null) => (value === null ? dash : `${formatInteger(value)} ms`)

export function Outcomes() {
  const { api, subscription } = useWorkspace()
  const period = usePeriodQuery()
  const location = useLocation()
  const attribution = (location.query.get("attribution") ?? "last_touch") as AttributionModel
  const [state, retry] = useAsync(
    () =>
      api.get<OutcomesAnswerBody>(
        `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/outcomes`,
        { ...period, attribution },
      ),
    `${subscription.id}:${period.from}:${period.to}:${attribution}`,
  )
  const choose = (value: string) => {
    const query = Object.fromEntries(location.query.entries())
    navigate(href(location.path, { ...query, attribution: value }))
  }
  return (
    <div className="page">
      <div className="page-head">
        <h1>Outcomes</h1>
        <p className="muted">
          What each channel costs in money and earns in goals reached: cost, value, return on investment,
          conversions, response times, sentiment and satisfaction.
        </p>
      </div>
      <AsyncView state={state} retry={retry} label="Loading outcomes…">
        {(answer) => (
          <>
            <PeriodPicker from={answer.period.from} to={answer.period.to} timezone={answer.timezone} />
            <div className="field-inline">
              <label htmlFor="attribution">Attribution</label>
              <select
                id="attribution"
                data-testid="attribution"
                value={answer.attribution}
                onChange={(event) => choose(event.target.value)}
              >
                {MODELS.map((model) => (
                  <option key={model.value} value={model.value}>
                    {model.label}
                  </option>
                ))}
              </select>
              <span className="muted small">
                lookback {answer.lookback_days} days; {formatDecimal(answer.unattributed.count)} outcomes
                unattributed
              </span>
            </div>
            <OutcomeTotals answer={answer} />
            {answer.totals.turns > 0 || answer.totals.conversion_count > 0 ? (
              <OutcomeCharts answer={answer} />
            ) : (
              <Empty title="No turns or outcomes in this period">
                Record goals with POST /api/outcomes and name the model at settle to see costs.
              </Empty>
            )}
          </>
        )}
      </AsyncView>
    </div>
  )
}

function OutcomeTotals({ answer }: { answer: OutcomesAnswerBody }) {
  const t = answer.totals
  const money = (amount: string) => formatMoney(amount, answer.currency)
  const cards = [
    {
      key: "cost",
      label: "Cost",
      value: money(t.cost),
      foot: `${formatInteger(t.unpriced_turns)} unpriced turns`,
    },
    {
      key: "value",
      label: "Value",
      value: money(t.value),
      foot: `${formatDecimal(t.conversion_count)} conversions`,
    },
    { key: "roi", label: "ROI", value: ratioText(t.roi), foot: "(value − cost) / cost" },
    {
      key: "conversion_rate",
      label: "Conversion rate",
      value: percentText(t.conversion_rate),
      foot: `${formatInteger(t.converted_sessions)} of ${formatInteger(t.sessions)} sessions`,
    },
    {
      key: "cost_per_conversion",
      label: "Cost per conversion",
      value: t.cost_per_conversion === null ? dash : money(t.cost_per_conversion),
      foot: `${t.tokens_per_conversion === null ? dash : formatDecimal(t.tokens_per_conversion)} tokens each`,
    },
    {
      key: "latency",
      label: "Response time p50",
      value: msText(t.latency_ms.p50),
      foot: `p90 ${msText(t.latency_ms.p90)} · p99 ${msText(t.latency_ms.p99)}`,
    },
    {
      key: "sentiment",
      label: "Sentiment",
      value: ratioText(t.sentiment_avg),
      foot: `${formatInteger(t.sentiment_count)} scored turns, −1 to 1`,
    },
    {
      key: "csat",
      label: "CSAT",
      value: ratioText(t.csat_avg),
      foot: `${formatInteger(t.csat_count)} ratings · 👍 ${formatInteger(t.thumbs_up)} 👎 ${formatInteger(t.thumbs_down)}`,
    },
  ]
  return (
    <section className="cards" aria-label="Outcome totals for the period">
      {cards.map((card) => (
        <div className="card" key={card.key} data-testid={`outcome-${card.key}`}>
          <div className="card-label">{card.label}</div>
          <div className="card-value" data-value>
            {card.value}
          </div>
          <div className="card-foot muted small">{card.foot}</div>
        </div>
      ))}
    </section>
  )
}

function OutcomeCharts({ answer }: { answer: OutcomesAnswerBody }) {
  const { subscription } = useWorkspace()
  const label = useChannelLabel()
  const rows = answer.channels.filter((c) => c.turns > 0 || c.conversion_count > 0)
  const labels = rows.map((c) => label(c.channel))
  const chart = (
    testId: string,
    title: string,
    unit: string,
    color: string,
    value: (c: ChannelOutcomesBody) => number | null,
  ) => (
    <section className="panel" aria-label={title}>
      <h2>{title}</h2>
      <BarChart
        testId={testId}
        title={title}
        labels={labels}
        values={rows.map((c) => value(c) ?? 0)}
        color={color}
        unit={unit}
      />
    </section>
  )
  return (
    <>
      {chart("chart-cost", `Cost per channel (${answer.currency})`, answer.currency, "#b45309", (c) =>
        Number(c.cost),
      )}
      {chart("chart-value", `Value per channel (${answer.currency})`, answer.currency, "#15803d", (c) =>
        Number(c.value),
      )}
      {chart("chart-conversion", "Conversion rate per channel (%)", "%", "#1d4ed8", (c) =>
        c.conversion_rate === null ? null : Math.round(c.conversion_rate * 1000) / 10,
      )}
      {chart("chart-latency", "Response time p90 per channel (ms)", "ms", "#7c3aed", (c) => c.latency_ms.p90)}
      {chart("chart-csat", "CSAT per channel (1-5)", "CSAT", "#0f766e", (c) => c.csat_avg)}
      <section className="panel" aria-labelledby="outcomes-table-title">
        <div className="toolbar">
          <h2 id="outcomes-table-title">Per channel</h2>
          <DownloadCsv
            path={`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/outcomes`}
            query={{
              from: answer.period.from,
              to: answer.period.to,
              attribution: answer.attribution,
              lookback_days: answer.lookback_days,
            }}
          />
        </div>
        <div className="table-scroll">
          <table className="comparison" data-testid="outcomes-table">
            <thead>
              <tr>
                <th scope="col">Channel</th>
                <th scope="col">Cost</th>
                <th scope="col">Unpriced</th>
                <th scope="col">Value</th>
                <th scope="col">ROI</th>
                <th scope="col">Conversions</th>
                <th scope="col">Conversion rate</th>
                <th scope="col">Cost / conversion</th>
                <th scope="col">p50 / p90 / p99</th>
                <th scope="col">Errors</th>
                <th scope="col">Sentiment</th>
                <th scope="col">CSAT</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={c.channel} data-channel={c.channel}>
                  <th scope="row">
                    <ChannelName channel={c.channel} />
                  </th>
                  <td className="num" data-metric="cost" title={c.cost}>
                    {formatMoney(c.cost, answer.currency)}
                  </td>
                  <td className="num" data-metric="unpriced_turns">
                    {formatInteger(c.unpriced_turns)}
                  </td>
                  <td className="num" data-metric="value" title={c.value}>
                    {formatMoney(c.value, answer.currency)}
                  </td>
                  <td className="num" data-metric="roi">
                    {ratioText(c.roi)}
                  </td>
                  <td className="num" data-metric="conversion_count">
                    {formatDecimal(c.conversion_count)}
                  </td>
                  <td className="num" data-metric="conversion_rate">
                    {percentText(c.conversion_rate)}
                  </td>
                  <td className="num" data-metric="cost_per_conversion">
                    {c.cost_per_conversion === null
                      ? dash
                      : formatMoney(c.cost_per_conversion, answer.currency)}
                  </td>
                  <td className="num" data-metric="latency">
                    {msText(c.latency_ms.p50)} / {msText(c.latency_ms.p90)} / {msText(c.latency_ms.p99)}
                  </td>
                  <td className="num" data-metric="error_rate">
                    {percentText(c.error_rate)}
                  </td>
                  <td className="num" data-metric="sentiment_avg">
                    {ratioText(c.sentiment_avg)}
                    <span className="muted small">
                      {" "}
                      (
                      {Object.values(c.sentiment_distribution)
                        .map((n) => formatInteger(n))
                        .join(" / ")}
                      )
                    </span>
                  </td>
                  <td className="num" data-metric="csat_avg">
                    {ratioText(c.csat_avg)}{" "}
                    <span className="muted small">({formatInteger(c.csat_count)})</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <p className="muted small">
          Sentiment distribution: very negative / negative / neutral / positive / very positive turns.
          Response times are nearest-rank percentiles of settle's latency_ms.
        </p>
      </section>
    </>
  )
}
