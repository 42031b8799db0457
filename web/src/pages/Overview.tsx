/**
 * Overview of one subscription over a period: totals with growth, the billing period's quota, usage share,
 * daily trends, the hour x channel heatmap and the channel comparison. All from the analytics API.
 */

import type { OutcomesAnswerBody } from "../api/outcome-types.ts"
import type {
  ComparisonBody,
  ComparisonRowBody,
  ComprehensiveAnalyticsBody,
  SubscriptionBody,
} from "../api/types.ts"
import { ChannelName, channelColor, useChannelLabel } from "../channels.tsx"
import { Heatmap } from "../charts/Heatmap.tsx"
import { LineChart } from "../charts/LineChart.tsx"
import {
  formatDay,
  formatDecimal,
  formatHour,
  formatInteger,
  formatLocalTime,
  formatMoney,
  formatPercent,
} from "../format.ts"
import { href, useLinkHandler } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { Growth, TrendArrow } from "../ui/Growth.tsx"
import { PeriodPicker, usePeriodQuery } from "../ui/PeriodPicker.tsx"

interface OverviewData {
  analytics: ComprehensiveAnalyticsBody
  comparison: ComparisonBody
}

export function Overview() {
  const { api, subscription, catalog } = useWorkspace()
  const period = usePeriodQuery()
  const base = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}`
  const [state, retry] = useAsync<OverviewData>(async () => {
    const [analytics, comparison] = await Promise.all([
      api.get<ComprehensiveAnalyticsBody>(base, period),
      api.get<ComparisonBody>(`${base}/channels/comparison`, period),
    ])
    return { analytics, comparison }
  }, `${subscription.id}:${period.from}:${period.to}`)

  const inPlan = (channel: string) =>
    catalog.channels.find((c) => c.channel === channel)?.plans.includes(subscription.plan) ?? false

  return (
    <div className="page">
      <div className="page-head">
        <h1>Overview</h1>
      </div>
      <QuotaCard subscription={subscription} />
      <AsyncView state={state} retry={retry} label="Loading analytics…">
        {({ analytics, comparison }) => {
          const shown = analytics.channels.filter(
            (c) => inPlan(c.channel) || c.message_count > 0 || c.denied_count > 0,
          )
          const hasUsage = analytics.totals.message_count > 0 || analytics.totals.denied_count > 0
          return (
            <>
              <PeriodPicker
                from={analytics.period.from}
                to={analytics.period.to}
                timezone={analytics.timezone}
              />
              <Totals analytics={analytics} />
              <CostCard base={base} period={period} />
              {hasUsage ? (
                <>
                  <ShareCard analytics={analytics} shown={shown.map((c) => c.channel)} />
                  <section className="panel" aria-labelledby="trends-title">
                    <h2 id="trends-title">Daily tokens per channel</h2>
                    <LineChart
                      testId="daily-trends"
                      title="Tokens used per day and channel"
                      unit="tokens"
                      xLabels={analytics.totals.daily_trends.map((p) => formatDay(p.date))}
                      series={shown.map((c) => ({
                        key: c.channel,
                        label: catalog.channels.find((e) => e.channel === c.channel)?.label ?? c.channel,
                        color: channelColor(c.channel),
                        values: c.daily_trends.map((p) => p.tokens_used),
                      }))}
                    />
                  </section>
                  <section className="panel" aria-labelledby="heatmap-title">
                    <h2 id="heatmap-title">Busy hours</h2>
                    <p className="muted small">
                      Tokens by hour of day ({analytics.timezone}); the darker, the busier. Outlined: each
                      channel's peak hour.
                    </p>
                    <Heatmap
                      title="Tokens by hour of day and channel"
                      unit="tokens"
                      rows={shown.map((c) => ({
                        key: c.channel,
                        label: catalog.channels.find((e) => e.channel === c.channel)?.label ?? c.channel,
                        color: channelColor(c.channel),
                        values: c.hourly_distribution.map((b) => b.tokens_used),
                        peak: c.peak_usage_hour,
                      }))}
                    />
                  </section>
                  <ComparisonTable comparison={comparison} shown={shown.map((c) => c.channel)} />
                </>
              ) : (
                <Empty title="No turns in this period">
                  Nothing was metered between {formatDay(analytics.period.from, true)} and{" "}
                  {formatDay(analytics.period.to, true)}. Widen the period, or send a message from the
                  Playground.
                </Empty>
              )}
            </>
          )
        }}
      </AsyncView>
    </div>
  )
}

function QuotaCard({ subscription }: { subscription: SubscriptionBody }) {
  const quota = subscription.quota
  if (!quota) return null
  const percent = quota.token_limit > 0 ? Math.min(100, (100 * quota.used_tokens) / quota.token_limit) : 100
  const level = percent >= 90 ? "danger" : percent >= 75 ? "warn" : "ok"
  return (
    <section className="panel quota" aria-labelledby="quota-title" data-testid="quota">
      <div className="quota-head">
        <h2 id="quota-title">Quota this billing period</h2>
        <span className="muted small">
          {formatLocalTime(quota.period_start)} – {formatLocalTime(quota.period_end)}
        </span>
      </div>
      <meter
        className="sr-only"
        aria-label="Quota used"
        min={0}
        max={quota.token_limit}
        value={quota.used_tokens}
      />
      <div className={`bar bar-${level}`} aria-hidden="true">
        <span style={{ width: `${percent}%` }} />
      </div>
      <dl className="quota-figures">
        <div>
          <dt>Used</dt>
          <dd data-testid="quota-used">{formatInteger(quota.used_tokens)}</dd>
        </div>
        <div>
          <dt>Remaining</dt>
          <dd data-testid="quota-remaining">{formatInteger(quota.remaining_tokens)}</dd>
        </div>
        <div>
          <dt>Limit</dt>
          <dd data-testid="quota-limit">{formatInteger(quota.token_limit)}</dd>
        </div>
        <div>
          <dt>Used share</dt>
          <dd>{formatPercent(Math.round(percent * 10) / 10)}</dd>
        </div>
      </dl>
    </section>
  )
}

function Totals({ analytics }: { analytics: ComprehensiveAnalyticsBody }) {
  const t = analytics.totals
  const denied = t.denied_count
  const cards = [
    {
      key: "tokens_used",
      label: "Tokens used",
      value: formatInteger(t.tokens_used),
      growth: t.growth.tokens_used,
      previous: t.previous.tokens_used,
    },
    {
      key: "message_count",
      label: "Messages",
      value: formatInteger(t.message_count),
      growth: t.growth.message_count,
      previous: t.previous.message_count,
    },
    {
      key: "unique_users",
      label: "Unique users",
      value: formatInteger(t.unique_users),
      growth: t.growth.unique_users,
      previous: t.previous.unique_users,
    },
  ] as const
  return (
    <section className="cards" aria-label="Totals for the period">
      {cards.map((card) => (
        <div className="card" key={card.key} data-testid={`total-${card.key}`}>
          <div className="card-label">{card.label}</div>
          <div className="card-value" data-value>
            {card.value}
          </div>
          <div className="card-foot">
            <Growth percent={card.growth} />
            <span className="muted small"> from {formatInteger(card.previous)}</span>
          </div>
        </div>
      ))}
      <div className="card" data-testid="total-avg_tokens_per_message">
        <div className="card-label">Tokens per message</div>
        <div className="card-value" data-value>
          {formatDecimal(t.avg_tokens_per_message)}
        </div>
        <div className="card-foot muted small">
          Peak hour {t.peak_usage_hour === null ? "–" : formatHour(t.peak_usage_hour)}
        </div>
      </div>
      <div className="card" data-testid="total-denied_count">
        <div className="card-label">Denied turns</div>
        <div className="card-value" data-value>
          {formatInteger(denied)}
        </div>
        <div className="card-foot muted small">
          {t.message_count + denied > 0
            ? `${formatPercent(Math.round((1000 * denied) / (t.message_count + denied)) / 10)} of turns`
            : "no turns"}
        </div>
      </div>
    </section>
  )
}

function ShareCard({ analytics, shown }: { analytics: ComprehensiveAnalyticsBody; shown: string[] }) {
  const channels = analytics.channels.filter((c) => shown.includes(c.channel))
  return (
    <section className="panel" aria-labelledby="share-title" data-testid="usage-share">
      <h2 id="share-title">Usage share</h2>
      <div className="share-bar" aria-hidden="true">
        {channels
          .filter((c) => c.usage_share > 0)
          .map((c) => (
            <span
              key={c.channel}
              style={{ width: `${c.usage_share}%`, background: channelColor(c.channel) }}
            />
          ))}
      </div>
      <ul className="share-legend">
        {channels.map((c) => (
          <li key={c.channel} data-channel={c.channel}>
            <ChannelName channel={c.channel} />
            <span className="share-value">{formatPercent(c.usage_share)}</span>
            <span className="muted small">{formatInteger(c.tokens_used)} tokens</span>
          </li>
        ))}
      </ul>
    </section>
  )
}

function ComparisonTable({ comparison, shown }: { comparison: ComparisonBody; shown: string[] }) {
  const onLink = useLinkHandler()
  const label = useChannelLabel()
  const { subscription, me } = useWorkspace()
  const rows = comparison.channels.filter((c) => shown.includes(c.channel))
  const best = comparison.best_and_worst
  const mark = (metric: keyof typeof best, row: ComparisonRowBody) => {
    const pair = best[metric]
    if (!pair || rows.length < 2) return null
    if (pair.best === row.channel) return <span className="badge badge-best">best</span>
    if (pair.worst === row.channel) return <span className="badge badge-worst">worst</span>
    return null
  }
  const detail = (channel: string) =>
    href(`/channels/${channel}`, {
      subscription: me.kind === "admin" ? subscription.id : undefined,
      from: comparison.period.from,
      to: comparison.period.to,
    })
  return (
    <section className="panel" aria-labelledby="comparison-title">
      <h2 id="comparison-title">Channel comparison</h2>
      <p className="muted small">
        Ranked by tokens used. Efficiency: messages per 1,000 tokens, the best channel scoring 100. Growth
        against the previous {comparison.period.days} days.
      </p>
      <div className="table-scroll">
        <table className="comparison" data-testid="comparison">
          <caption className="sr-only">Channels side by side</caption>
          <thead>
            <tr>
              <th scope="col" className="num">
                #
              </th>
              <th scope="col">Channel</th>
              <th scope="col" className="num">
                Tokens
              </th>
              <th scope="col" className="num">
                Share
              </th>
              <th scope="col" className="num">
                Messages
              </th>
              <th scope="col" className="num">
                Users
              </th>
              <th scope="col" className="num">
                Tokens / msg
              </th>
              <th scope="col" className="num">
                Peak
              </th>
              <th scope="col" className="num">
                Efficiency
              </th>
              <th scope="col">Rating</th>
              <th scope="col">Trend</th>
              <th scope="col" className="num">
                Growth
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.channel} data-channel={row.channel}>
                <td className="num">{row.rank}</td>
                <th scope="row">
                  <a href={detail(row.channel)} onClick={onLink} aria-label={`${label(row.channel)} details`}>
                    <ChannelName channel={row.channel} />
                  </a>
                </th>
                <td className="num" data-metric="tokens_used">
                  {formatInteger(row.tokens_used)} {mark("tokens_used", row)}
                </td>
                <td className="num" data-metric="usage_share">
                  {formatPercent(row.usage_share)}
                </td>
                <td className="num" data-metric="message_count">
                  {formatInteger(row.message_count)}
                </td>
                <td className="num" data-metric="unique_users">
                  {formatInteger(row.unique_users)}
                </td>
                <td className="num" data-metric="avg_tokens_per_message">
                  {formatDecimal(row.avg_tokens_per_message)}
                </td>
                <td className="num" data-metric="peak_usage_hour">
                  {row.peak_usage_hour === null ? "–" : formatHour(row.peak_usage_hour)}
                </td>
                <td className="num" data-metric="efficiency_score">
                  {row.efficiency_score === null ? "–" : formatDecimal(row.efficiency_score)}{" "}
                  {mark("efficiency_score", row)}
                </td>
                <td data-metric="performance_rating">
                  {row.performance_rating ? (
                    <span className={`rating rating-${row.performance_rating.toLowerCase()}`}>
                      {row.performance_rating}
                    </span>
                  ) : (
                    "–"
                  )}
                </td>
                <td data-metric="trend_direction">
                  <TrendArrow direction={row.trend_direction} />
                </td>
                <td className="num" data-metric="growth">
                  <Growth percent={row.growth.tokens_used} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

/**
 * The period's cost in money next to its tokens, from the outcomes answer: asked for once the page's own
 * figures are in, so that it never holds them up.
 */
function CostCard({
  base,
  period,
}: {
  base: string
  period: { from: string | undefined; to: string | undefined }
}) {
  const { api } = useWorkspace()
  const [state] = useAsync(
    () => api.get<OutcomesAnswerBody>(`${base}/outcomes`, period),
    `${base}:${period.from}:${period.to}:cost`,
  )
  if (state.status !== "ready") return null
  const outcomes = state.data
  const t = outcomes.totals
  return (
    <section className="cards" aria-label="Cost for the period">
      <div className="card" data-testid="total-cost">
        <div className="card-label">Cost ({outcomes.currency})</div>
        <div className="card-value" data-value title={t.cost}>
          {formatMoney(t.cost, outcomes.currency)}
        </div>
        <div className="card-foot muted small">
          for {formatInteger(t.tokens_used)} tokens · {formatInteger(t.unpriced_turns)} unpriced turns
        </div>
      </div>
    </section>
  )
}
