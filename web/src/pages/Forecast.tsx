/**
 * The billing period projected forward, and what to do about it: the forecast per channel and in total
 * (used so far, projected total with its 95% interval, the quota and when it runs out, the method), and the
 * ranked insights with their evidence. One call: the insights answer carries the forecast it was built on.
 */
import "../alerts.css"
import type {
  ForecastBody,
  ForecastMethod,
  InsightBody,
  InsightsAnswer,
  ProjectionBody,
} from "../api/alert-types.ts"
import { ChannelName, channelColor, useChannelLabel } from "../channels.tsx"
import { ProjectionChart } from "../charts/ProjectionChart.tsx"
import { formatDay, formatDecimal, formatInteger, formatPercent, formatTimeIn } from "../format.ts"
import { href, useLinkHandler } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { ScrollableTable } from "../ui/ScrollableTable.tsx"
import { RecommendationsSection } from "./Recommendations.tsx"

/** What each method means, and when the forecast falls back to it. */
export const METHOD_TEXT: Record<ForecastMethod, { name: string; note: string }> = {
  holt_winters: {
    name: "Holt-Winters",
    note: "level, trend and a weekly season fitted on daily billed tokens",
  },
  daily_mean: {
    name: "Daily mean",
    note: "fallback: under two weeks of history, so last week's daily mean carries forward",
  },
  run_rate: {
    name: "Run rate",
    note: "fallback: under a day of history, so the pace so far carries forward",
  },
  none: {
    name: "No usage yet",
    note: "nothing to project (no usage, or under an hour of it): the forecast is zero",
  },
}

const TOTAL_COLOR = "#334155"

export function Forecast() {
  const { api, subscription } = useWorkspace()
  const [state, retry] = useAsync(
    () =>
      api.get<InsightsAnswer>(`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/insights`),
    subscription.id,
  )
  return (
    <div className="page">
      <div className="page-head">
        <h1>Forecast</h1>
        <p className="muted">
          The billing period projected to its end from the daily billed tokens, and recommendations from the
          last 30 days. Days and times in <strong>{subscription.timezone}</strong> (the subscription's
          timezone).
        </p>
      </div>
      <AsyncView state={state} retry={retry} label="Loading the forecast…">
        {({ forecast, insights }) => (
          <>
            <ForecastSection forecast={forecast} />
            <InsightsSection insights={insights} forecast={forecast} />
            <RecommendationsSection />
          </>
        )}
      </AsyncView>
    </div>
  )
}

/** The quota card's heading, figure and note for each quota state. */
function quotaOutlook(forecast: ForecastBody, zone: string): { label: string; value: string; note: string } {
  const total = forecast.total
  const when = total.quota_exhausted_at === null ? "" : formatTimeIn(total.quota_exhausted_at, zone)
  const denied = `about ${formatInteger(total.denied_tokens)} tokens of demand forecast to be denied`
  switch (total.quota_state) {
    case "none":
      return { label: "Quota", value: "no quota set", note: "nothing is refused for quota" }
    case "lasts":
      return { label: "Quota runs out", value: "not before the period ends", note: "at the forecast pace" }
    case "runs_out":
      return {
        label: "Quota runs out",
        value: when,
        note: `turns after that are denied (quota_exceeded); ${denied}`,
      }
    case "spent":
      return {
        label: "Quota spent",
        value: when === "" ? "now" : `since ${when}`,
        note: `turns are being denied (quota_exceeded) until the period ends; ${denied}`,
      }
    case "over":
      return {
        label: "Over the quota",
        value: `by ${formatInteger(total.used_tokens - forecast.token_limit)} tokens`,
        note: `the limit is below what is used: every turn is denied (quota_exceeded); ${denied}`,
      }
  }
}

function ForecastSection({ forecast }: { forecast: ForecastBody }) {
  const label = useChannelLabel()
  const { subscription } = useWorkspace()
  const zone = subscription.timezone
  const total = forecast.total
  const share = forecast.token_limit > 0 ? (100 * total.projected_tokens) / forecast.token_limit : null
  const usedShare = forecast.token_limit > 0 ? (100 * total.used_tokens) / forecast.token_limit : null
  const outlook = quotaOutlook(forecast, zone)
  const runsOut = total.quota_state !== "lasts" && total.quota_state !== "none"
  const channels = [...forecast.channels].sort((a, b) => b.projected_tokens - a.projected_tokens)
  const method = METHOD_TEXT[total.method]
  return (
    <section className="panel" aria-labelledby="forecast-title" data-testid="forecast">
      <div className="panel-head">
        <h2 id="forecast-title">This billing period</h2>
        <span className="muted small" data-testid="forecast-period">
          {formatTimeIn(forecast.period_start, zone)} – {formatTimeIn(forecast.period_end, zone)}
        </span>
        <DownloadCsv path={`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/forecast`} />
      </div>
      <section className="cards" aria-label="Projected totals">
        <div className="card" data-testid="forecast-used">
          <div className="card-label">Used so far</div>
          <div className="card-value" data-value>
            {formatInteger(total.used_tokens)}
          </div>
          <div className="card-foot muted small">
            billed tokens this period
            {usedShare !== null ? (
              <span data-testid="forecast-used-share">
                {" "}
                ({formatPercent(Math.round(usedShare * 10) / 10)} of the quota)
              </span>
            ) : null}
          </div>
        </div>
        <div className="card" data-testid="forecast-projected">
          <div className="card-label">Projected at period end</div>
          <div className="card-value" data-value>
            {formatInteger(total.projected_tokens)}
          </div>
          <div className="card-foot muted small" data-testid="forecast-interval">
            95% interval {formatInteger(total.lower)} – {formatInteger(total.upper)}
            {total.denied_tokens > 0 ? (
              <span data-testid="forecast-denied">
                ; billed stops at the quota, {formatInteger(total.denied_tokens)} more denied
              </span>
            ) : null}
          </div>
        </div>
        <div className="card" data-testid="forecast-quota">
          <div className="card-label">Quota</div>
          <div className="card-value" data-value>
            {formatInteger(forecast.token_limit)}
          </div>
          <div className="card-foot muted small">
            {share === null ? "no limit" : `${formatPercent(Math.round(share * 10) / 10)} projected`}
          </div>
        </div>
        <div
          className={`card ${runsOut ? "card-danger" : "card-ok"}`}
          data-testid="forecast-runout"
          data-state={total.quota_state}
        >
          <div className="card-label">{outlook.label}</div>
          <div className="card-value card-value-text" data-value>
            {outlook.value}
          </div>
          <div className="card-foot muted small">{outlook.note}</div>
        </div>
      </section>
      <p className="small" data-testid="forecast-method">
        Method: <strong>{method.name}</strong> ({method.note}), on {formatInteger(forecast.history_days)}{" "}
        {forecast.history_days === 1 ? "day" : "days"} of history. Computed{" "}
        {formatTimeIn(forecast.generated_at, zone)}.
      </p>
      {total.used_tokens === 0 && total.projected_tokens === 0 ? (
        <Empty title="No usage to project yet">
          The forecast starts with the first billed turn; until then every projection is zero.
        </Empty>
      ) : (
        <>
          <ProjectionChart
            testId="forecast-chart"
            title="Projected billed tokens at the end of the period, in total and per channel"
            quota={forecast.token_limit}
            rows={[
              {
                key: "total",
                label: "Total",
                color: TOTAL_COLOR,
                used: total.used_tokens,
                projected: total.projected_tokens,
                lower: total.lower,
                upper: total.upper,
              },
              ...channels.map((c) => ({
                key: c.channel,
                label: label(c.channel),
                color: channelColor(c.channel),
                used: c.used_tokens,
                projected: c.projected_tokens,
                lower: c.lower,
                upper: c.upper,
              })),
            ]}
          />
          <ScrollableTable columns={6} testId="forecast-scroll">
            <table className="forecast-table" data-testid="forecast-channels">
              <caption className="sr-only">Forecast per channel</caption>
              <thead>
                <tr>
                  <th scope="col">Channel</th>
                  <th scope="col" className="num">
                    Used so far
                  </th>
                  <th scope="col" className="num">
                    Forecast, rest of period
                  </th>
                  <th scope="col" className="num">
                    Projected total
                  </th>
                  <th scope="col" className="num">
                    95% interval
                  </th>
                  <th scope="col">Method</th>
                </tr>
              </thead>
              <tbody>
                {channels.map((c) => (
                  <tr key={c.channel} data-channel={c.channel}>
                    <th scope="row">
                      <ChannelName channel={c.channel} />
                    </th>
                    <ProjectionCells projection={c} />
                    <td data-column="method" title={METHOD_TEXT[c.method].note}>
                      {METHOD_TEXT[c.method].name}
                    </td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr data-channel="total">
                  <th scope="row">Total</th>
                  <ProjectionCells projection={total} />
                  <td data-column="method" title={method.note}>
                    {method.name}
                  </td>
                </tr>
              </tfoot>
            </table>
          </ScrollableTable>
          <p className="muted small">
            The total is fitted on the total series, so it need not equal the sum of the channels.
          </p>
        </>
      )}
    </section>
  )
}

const SEVERITY_CLASS: Record<InsightBody["severity"], string> = {
  high: "badge-worst",
  medium: "badge-warn",
  low: "badge-off",
}

/** "days_before_period_end" -> "Days before period end" */
function evidenceLabel(key: string): string {
  const words = key.replace(/_/g, " ").replace(/\b30d\b/, "(30 days)")
  return words.charAt(0).toUpperCase() + words.slice(1)
}

function evidenceValue(value: number | string | null, zone: string): string {
  if (value === null) return "–"
  if (typeof value === "number") return Number.isInteger(value) ? formatInteger(value) : formatDecimal(value)
  if (/^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))) return formatTimeIn(value, zone)
  return value
}

function InsightsSection({ insights, forecast }: { insights: InsightBody[]; forecast: ForecastBody }) {
  const label = useChannelLabel()
  const onLink = useLinkHandler()
  const { subscription, me } = useWorkspace()
  const days = forecast.activity_period
  const overview = href("/", {
    subscription: me.kind === "admin" ? subscription.id : undefined,
    from: days.from,
    to: days.to,
  })
  return (
    <section className="panel" aria-labelledby="insights-title">
      <div className="panel-head">
        <h2 id="insights-title">Insights</h2>
        <span className="muted small">ranked by score (0–100), highest first</span>
        <DownloadCsv path={`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/insights`} />
      </div>
      <p className="muted small" data-testid="insights-period">
        From the 30 days {formatDay(days.from, true)} – {formatDay(days.to, true)} (today so far included), in{" "}
        {days.timezone}: the same days and figures as{" "}
        <a href={overview} onClick={onLink}>
          the Overview for this period
        </a>
        .
      </p>
      {insights.length === 0 ? (
        <Empty title="Nothing to recommend">
          No rule found enough evidence in the last 30 days: the quota lasts, no channel outside the plan is
          asked for, rate limits are not biting harder, and the channels are similarly efficient.
        </Empty>
      ) : (
        <ol className="insights" data-testid="insights">
          {insights.map((insight, i) => (
            <li
              key={`${insight.kind}:${insight.channel ?? "all"}`}
              className={`insight insight-${insight.severity}`}
              data-kind={insight.kind}
            >
              <div className="insight-head">
                <span className="insight-rank" aria-hidden="true">
                  {i + 1}
                </span>
                <h3>{insight.title}</h3>
                <span className={`badge ${SEVERITY_CLASS[insight.severity]}`}>{insight.severity}</span>
                <span className="muted small insight-score">score {formatDecimal(insight.score)}</span>
              </div>
              {insight.channel ? (
                <p className="small insight-channel">
                  Channel: <ChannelName channel={insight.channel} />
                </p>
              ) : null}
              <p>{insight.explanation}</p>
              <p className="insight-action">
                <strong>What to do:</strong> {insight.action}
              </p>
              <details className="insight-evidence" open>
                <summary>Evidence</summary>
                <dl className="figures">
                  {Object.entries(insight.evidence).map(([key, value]) => (
                    <div key={key}>
                      <dt>{evidenceLabel(key)}</dt>
                      <dd data-evidence={key}>
                        {key === "channel" && typeof value === "string"
                          ? label(value)
                          : evidenceValue(value, days.timezone)}
                      </dd>
                    </div>
                  ))}
                </dl>
              </details>
            </li>
          ))}
        </ol>
      )}
    </section>
  )
}

/** The four number cells of one projection row: used so far, forecast, projected total, interval. */
function ProjectionCells({
  projection,
}: {
  projection: Pick<ProjectionBody, "used_tokens" | "forecast_tokens" | "projected_tokens" | "lower" | "upper">
}) {
  return (
    <>
      <td className="num" data-column="used_tokens">
        {formatInteger(projection.used_tokens)}
      </td>
      <td className="num" data-column="forecast_tokens">
        {formatInteger(projection.forecast_tokens)}
      </td>
      <td className="num" data-column="projected_tokens">
        {formatInteger(projection.projected_tokens)}
      </td>
      <td className="num" data-column="interval">
        {formatInteger(projection.lower)} – {formatInteger(projection.upper)}
      </td>
    </>
  )
}
