/** One channel over the period: its trend by day or by hour, its hourly distribution, its denials by reason. */
import type { ComprehensiveAnalyticsBody, TrendsBody } from "../api/types.ts"
import { ChannelName, channelColor, useChannelLabel } from "../channels.tsx"
import { BarChart } from "../charts/BarChart.tsx"
import { LineChart } from "../charts/LineChart.tsx"
import { formatDay, formatDecimal, formatHour, formatInteger, formatPercent } from "../format.ts"
import { REASON_TEXT } from "../reasons.ts"
import { href, navigate, useLinkHandler, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { Growth, TrendArrow } from "../ui/Growth.tsx"
import { PeriodPicker, usePeriodQuery } from "../ui/PeriodPicker.tsx"

export function ChannelDetail({ channel }: { channel: string }) {
  const { api, subscription, catalog, me } = useWorkspace()
  const label = useChannelLabel()
  const location = useLocation()
  const onLink = useLinkHandler()
  const period = usePeriodQuery()
  const granularity = location.query.get("granularity") === "hourly" ? "hourly" : "daily"
  const known = catalog.channels.some((c) => c.channel === channel)
  const base = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}`
  const [state, retry] = useAsync(async () => {
    const [trends, analytics] = await Promise.all([
      api.get<TrendsBody>(`${base}/channels/${encodeURIComponent(channel)}/trends`, {
        ...period,
        granularity,
      }),
      api.get<ComprehensiveAnalyticsBody>(base, { ...period, channels: channel }),
    ])
    return { trends, analytics }
  }, `${subscription.id}:${channel}:${period.from}:${period.to}:${granularity}`)

  const back = href("/", {
    subscription: me.kind === "admin" ? subscription.id : undefined,
    from: period.from,
    to: period.to,
  })
  const setGranularity = (next: "daily" | "hourly") => {
    const query = Object.fromEntries(location.query.entries())
    navigate(href(location.path, { ...query, granularity: next === "hourly" ? "hourly" : undefined }), true)
  }
  if (!known) {
    return (
      <section className="panel">
        <h1>Unknown channel</h1>
        <p>There is no channel “{channel}”.</p>
      </section>
    )
  }
  return (
    <div className="page">
      <div className="page-head">
        <p className="breadcrumb">
          <a href={back} onClick={onLink}>
            Overview
          </a>{" "}
          / {label(channel)}
        </p>
        <h1>
          <ChannelName channel={channel} />
        </h1>
      </div>
      <AsyncView state={state} retry={retry} label="Loading the channel…">
        {({ trends, analytics }) => {
          const stats = analytics.channels[0]
          const s = trends.summary
          const denials = Object.entries(s.denied_by_reason).filter(
            ([reason]) => reason !== "subscription_not_found",
          )
          const maxDenied = Math.max(1, ...denials.map(([, n]) => n))
          const hourlyAllowed = trends.period.days <= 14
          const completeTo = trends.period.complete_to
          const firstPartial = trends.points.findIndex((p) => completeTo === null || p.date > completeTo)
          const partialFrom = firstPartial === -1 ? undefined : firstPartial
          const xLabels = trends.points.map((p) =>
            trends.granularity === "hourly"
              ? `${formatDay(p.date)} ${formatHour(p.hour ?? 0)}`
              : formatDay(p.date),
          )
          return (
            <>
              <PeriodPicker from={trends.period.from} to={trends.period.to} timezone={trends.timezone} />
              <section className="cards" aria-label={`${label(channel)} totals`}>
                <div className="card" data-testid="channel-tokens_used">
                  <div className="card-label">Tokens used</div>
                  <div className="card-value" data-value>
                    {formatInteger(s.tokens_used)}
                  </div>
                  <div className="card-foot">
                    <Growth percent={s.growth.tokens_used} /> · <TrendArrow direction={s.trend_direction} />
                  </div>
                </div>
                <div className="card" data-testid="channel-message_count">
                  <div className="card-label">Messages</div>
                  <div className="card-value" data-value>
                    {formatInteger(s.message_count)}
                  </div>
                  <div className="card-foot">
                    <Growth percent={s.growth.message_count} />
                  </div>
                </div>
                <div className="card" data-testid="channel-unique_users">
                  <div className="card-label">Unique users</div>
                  <div className="card-value" data-value>
                    {formatInteger(s.unique_users)}
                  </div>
                  <div className="card-foot">
                    <Growth percent={s.growth.unique_users} />
                  </div>
                </div>
                <div className="card">
                  <div className="card-label">Tokens per message</div>
                  <div className="card-value">{formatDecimal(s.avg_tokens_per_message)}</div>
                  <div className="card-foot muted small">
                    peak hour {s.peak_usage_hour === null ? "–" : formatHour(s.peak_usage_hour)}
                  </div>
                </div>
                <div className="card">
                  <div className="card-label">Raw tokens</div>
                  <div className="card-value">{formatInteger(s.raw_tokens)}</div>
                  <div className="card-foot muted small">before the multiplier</div>
                </div>
              </section>
              <section className="panel" aria-labelledby="channel-trend-title">
                <div className="panel-head">
                  <h2 id="channel-trend-title">Trend</h2>
                  <DownloadCsv
                    path={`${base}/channels/${encodeURIComponent(channel)}/trends`}
                    query={{ ...period, granularity }}
                  />
                  <fieldset className="segmented">
                    <legend className="sr-only">Granularity</legend>
                    <label>
                      <input
                        type="radio"
                        name="granularity"
                        checked={granularity === "daily"}
                        onChange={() => setGranularity("daily")}
                      />
                      By day
                    </label>
                    <label title={hourlyAllowed ? undefined : "Hourly trends cover at most 14 days"}>
                      <input
                        type="radio"
                        name="granularity"
                        checked={granularity === "hourly"}
                        disabled={!hourlyAllowed && granularity !== "hourly"}
                        onChange={() => setGranularity("hourly")}
                      />
                      By hour
                    </label>
                  </fieldset>
                </div>
                {!hourlyAllowed ? (
                  <p className="muted small">By hour is available for periods of up to 14 days.</p>
                ) : null}
                <LineChart
                  testId="channel-trend"
                  partialFrom={partialFrom}
                  title={`${label(channel)}: tokens per ${trends.granularity === "hourly" ? "hour" : "day"}`}
                  unit="tokens"
                  xLabels={xLabels}
                  series={[
                    {
                      key: "tokens_used",
                      label: "Tokens",
                      color: channelColor(channel),
                      values: trends.points.map((p) => p.tokens_used),
                    },
                  ]}
                />
                <h3>Turns</h3>
                <LineChart
                  testId="channel-turns"
                  partialFrom={partialFrom}
                  title={`${label(channel)}: allowed and denied turns per ${trends.granularity === "hourly" ? "hour" : "day"}`}
                  unit="turns"
                  xLabels={xLabels}
                  series={[
                    {
                      key: "message_count",
                      label: "Allowed",
                      color: "#475569",
                      values: trends.points.map((p) => p.message_count),
                    },
                    {
                      key: "denied_count",
                      label: "Denied",
                      color: "#dc2626",
                      values: trends.points.map((p) => p.denied_count),
                    },
                  ]}
                />
              </section>
              <section className="panel" aria-labelledby="hourly-title">
                <h2 id="hourly-title">Hourly distribution</h2>
                <p className="muted small">
                  Tokens by hour of day over the period ({trends.timezone}). Peak:{" "}
                  {stats?.peak_usage_hour === null || stats === undefined
                    ? "none"
                    : formatHour(stats.peak_usage_hour)}
                  .
                </p>
                {stats ? (
                  <BarChart
                    testId="hourly-distribution"
                    title={`${label(channel)}: tokens by hour of day`}
                    unit="tokens"
                    labels={stats.hourly_distribution.map((b) => formatHour(b.hour))}
                    values={stats.hourly_distribution.map((b) => b.tokens_used)}
                    color={channelColor(channel)}
                    highlight={stats.peak_usage_hour}
                  />
                ) : null}
              </section>
              <section className="panel" aria-labelledby="denials-title">
                <h2 id="denials-title">Denials by reason</h2>
                {s.denied_count === 0 ? (
                  <Empty title="No denied turns in this period" />
                ) : (
                  <>
                    <p className="muted small">
                      {formatInteger(s.denied_count)} denied of{" "}
                      {formatInteger(s.denied_count + s.message_count)} turns (
                      {formatPercent(
                        Math.round((1000 * s.denied_count) / (s.denied_count + s.message_count)) / 10,
                      )}
                      ).
                    </p>
                    <ul className="hbars" data-testid="denials">
                      {denials.map(([reason, count]) => (
                        <li key={reason} data-reason={reason}>
                          <span className="hbar-label">{REASON_TEXT[reason] ?? reason}</span>
                          <span className="hbar-track" aria-hidden="true">
                            <span style={{ width: `${(100 * count) / maxDenied}%` }} />
                          </span>
                          <span className="hbar-value">{formatInteger(count)}</span>
                        </li>
                      ))}
                    </ul>
                  </>
                )}
              </section>
            </>
          )
        }}
      </AsyncView>
    </div>
  )
}
