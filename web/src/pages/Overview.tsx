/**
 * Overview of one subscription over a period: totals with growth, the billing period's quota, usage share,
 * daily trends, the hour x channel heatmap and the channel comparison. All from the analytics API.
 */

import type { Query } from "../api/client.ts"
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
  formatClockIn,
  formatDay,
  formatDecimal,
  formatHour,
  formatInteger,
  formatMoney,
  formatPercent,
  formatTimeIn,
} from "../format.ts"
import { href, useLinkHandler } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { Growth, TrendArrow } from "../ui/Growth.tsx"
import { LiveSwitch, useLive } from "../ui/live.tsx"
import { PeriodPicker, todayIn, usePeriodQuery } from "../ui/PeriodPicker.tsx"
import { ScrollableTable } from "../ui/ScrollableTable.tsx"
import { SheddingPanel } from "./SharedCapacity.tsx"
import "../drilldown.css"

interface OverviewData {
  analytics: ComprehensiveAnalyticsBody
  /** The channels shown, side by side: ranked among themselves, so ranks have no gaps. */
  comparison: ComparisonBody | null
  /** Today so far, unless the period already is today. */
  today: ComprehensiveAnalyticsBody | null
}

export function Overview() {
  const { api, subscription, catalog, refreshSubscription } = useWorkspace()
  const period = usePeriodQuery()
  const base = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}`
  const inPlan = (channel: string) =>
    catalog.channels.find((c) => c.channel === channel)?.plans.includes(subscription.plan) ?? false
  const shownOf = (analytics: ComprehensiveAnalyticsBody) =>
    analytics.channels.filter((c) => inPlan(c.channel) || c.message_count > 0 || c.denied_count > 0)
  // Live: each refresh reads the analytics and the subscription's quota again.
  const live = useLive<OverviewData>(async () => {
    const today = todayIn(subscription.timezone)
    const [analytics, todayAnswer] = await Promise.all([
      api.get<ComprehensiveAnalyticsBody>(base, period),
      period.from === today && period.to === today
        ? Promise.resolve(null)
        : api.get<ComprehensiveAnalyticsBody>(base, { from: today, to: today }),
    ])
    const shown = shownOf(analytics).map((c) => c.channel)
    const comparison =
      shown.length === 0
        ? null
        : await api.get<ComparisonBody>(`${base}/channels/comparison`, {
            ...period,
            channels: shown.join(","),
          })
    refreshSubscription()
    return { analytics, comparison, today: todayAnswer }
  }, `${subscription.id}:${period.from}:${period.to}`)
  const { state, retry } = live

  return (
    <div className="page">
      <div className="page-head toolbar">
        <h1>Overview</h1>
        <LiveSwitch live={live} />
      </div>
      <QuotaCard subscription={subscription} />
      <AsyncView state={state} retry={retry} label="Loading analytics…">
        {({ analytics, comparison, today }) => {
          const shown = shownOf(analytics)
          const hasUsage = analytics.totals.message_count > 0 || analytics.totals.denied_count > 0
          const dates = analytics.totals.daily_trends.map((p) => p.date)
          const completeTo = analytics.period.complete_to
          const partialFrom =
            completeTo === analytics.period.to
              ? undefined
              : completeTo === null
                ? 0
                : dates.indexOf(completeTo) + 1
          return (
            <>
              <PeriodPicker
                from={analytics.period.from}
                to={analytics.period.to}
                timezone={analytics.timezone}
              />
              {today ? <TodayStrip today={today} timezone={analytics.timezone} /> : null}
              <Totals analytics={analytics} />
              <SheddingPanel analytics={analytics} />
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
                      xLabels={dates.map((date) => formatDay(date))}
                      partialFrom={partialFrom}
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
                      Tokens by hour of day ({analytics.timezone}), every channel on the same scale: the
                      darker, the busier. Outlined: each channel's peak hour.
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
                  {comparison ? <ComparisonTable comparison={comparison} /> : null}
                  <p className="muted small">
                    Every channel's figures of this period as a file:{" "}
                    <DownloadCsv path={base} query={period} label="Download analytics CSV" />
                  </p>
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

export function QuotaCard({ subscription }: { subscription: SubscriptionBody }) {
  const quota = subscription.quota
  if (!quota) return null
  // The real share, past 100% when the limit was lowered below the use; the bar stops at full.
  const share = quota.token_limit > 0 ? (100 * quota.used_tokens) / quota.token_limit : null
  const percent = share === null ? 100 : Math.min(100, share)
  const over = quota.token_limit > 0 ? Math.max(0, quota.used_tokens - quota.token_limit) : 0
  const level = percent >= 90 ? "danger" : percent >= 75 ? "warn" : "ok"
  const zone = subscription.timezone
  return (
    <section className="panel quota" aria-labelledby="quota-title" data-testid="quota">
      <div className="quota-head">
        <h2 id="quota-title">Quota this billing period</h2>
        <span className="muted small">
          {formatTimeIn(quota.period_start, zone)} – {formatTimeIn(quota.period_end, zone)}
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
        {over > 0 ? (
          <div>
            <dt>Over the limit by</dt>
            <dd data-testid="quota-over" className="quota-over">
              {formatInteger(over)}
            </dd>
          </div>
        ) : (
          <div>
            <dt>Remaining</dt>
            <dd data-testid="quota-remaining">{formatInteger(quota.remaining_tokens)}</dd>
          </div>
        )}
        <div>
          <dt>Limit</dt>
          <dd data-testid="quota-limit">{formatInteger(quota.token_limit)}</dd>
        </div>
        <div>
          <dt>Used share</dt>
          <dd data-testid="quota-share" className={over > 0 ? "quota-over" : undefined}>
            {share === null ? "no limit" : formatPercent(Math.round(share * 10) / 10)}
          </dd>
        </div>
      </dl>
      {over > 0 ? (
        <p className="small quota-over" data-testid="quota-over-note">
          {formatInteger(over)} tokens more than the limit are used (the limit was lowered below the use):
          every turn is denied (quota_exceeded) until the period ends or the limit is raised.
        </p>
      ) : null}
    </section>
  )
}

/** Today so far, apart from the period's complete days: it is not over, so it has no trend or growth. */
function TodayStrip({ today, timezone }: { today: ComprehensiveAnalyticsBody; timezone: string }) {
  const t = today.totals
  return (
    <section className="today-strip" aria-label="Today so far" data-testid="today">
      <span className="badge badge-warn">partial</span>
      <span>
        Today so far, until {formatClockIn(today.generated_at, timezone)} ({timezone}):
      </span>
      <span>
        <strong data-testid="today-tokens">{formatInteger(t.tokens_used)}</strong> tokens
      </span>
      <span>
        <strong>{formatInteger(t.message_count)}</strong> messages
      </span>
      <span>
        <strong>{formatInteger(t.denied_count)}</strong> denied
      </span>
    </section>
  )
}

export function Totals({ analytics }: { analytics: ComprehensiveAnalyticsBody }) {
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
      <div className="card" data-testid="total-unique_people">
        <div className="card-label">Unique people</div>
        <div className="card-value" data-value>
          {formatInteger(t.unique_people)}
        </div>
        <div className="card-foot muted small">Linked identifiers count once across channels</div>
      </div>
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

export function ShareCard({ analytics, shown }: { analytics: ComprehensiveAnalyticsBody; shown: string[] }) {
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

/**
 * What "best" means in each column that has one. Tokens, messages, users and share have no better or worse
 * (more use is not better use, nor worse), so they carry no badge.
 */
const BADGES = {
  efficiency_score: {
    best: "most messages per 1,000 tokens",
    worst: "fewest messages per 1,000 tokens",
  },
  // efficiency_score when the answer's efficiency_basis is value (the period's outcomes earned some).
  value_efficiency_score: {
    best: "most value per 1,000 tokens",
    worst: "least value per 1,000 tokens",
  },
  avg_tokens_per_message: {
    best: "fewest tokens per message",
    worst: "most tokens per message",
  },
} as const

export function ComparisonTable({
  comparison,
  filters,
}: {
  comparison: ComparisonBody
  /** The question's filters beyond the period (a saved widget's channels and chatbot), for the CSV. */
  filters?: Query
}) {
  const onLink = useLinkHandler()
  const label = useChannelLabel()
  const { subscription, me } = useWorkspace()
  const rows = comparison.channels
  const best = comparison.best_and_worst
  const byValue = comparison.efficiency_basis === "value"
  const mark = (metric: "efficiency_score" | "avg_tokens_per_message", row: ComparisonRowBody) => {
    const pair = best[metric]
    const titles = BADGES[metric === "efficiency_score" && byValue ? "value_efficiency_score" : metric]
    if (!pair || rows.length < 2 || pair.best === pair.worst) return null
    if (pair.best === row.channel)
      return (
        <span className="badge badge-best" title={titles.best}>
          best
        </span>
      )
    if (pair.worst === row.channel)
      return (
        <span className="badge badge-worst" title={titles.worst}>
          worst
        </span>
      )
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
      <div className="toolbar">
        <h2 id="comparison-title">Channel comparison</h2>
        <DownloadCsv
          path={`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/channels/comparison`}
          query={{ ...filters, from: comparison.period.from, to: comparison.period.to }}
        />
      </div>
      <p className="muted small">
        The channels shown, ranked by tokens used. Efficiency:{" "}
        {byValue
          ? "value earned per 1,000 tokens (the period's outcomes, last touch)"
          : "messages per 1,000 tokens"}
        , the best channel scoring 100. Badges: <strong>best</strong>/<strong>worst</strong> efficiency and
        tokens per message (fewest is best); tokens, messages and users have no better or worse. Trend and
        growth over the complete days, growth against the {comparison.previous_period.days} days before.
      </p>
      <ScrollableTable columns={12} testId="comparison-scroll">
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
                  {formatInteger(row.tokens_used)}
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
                  {formatDecimal(row.avg_tokens_per_message)} {mark("avg_tokens_per_message", row)}
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
      </ScrollableTable>
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
