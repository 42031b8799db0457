/**
 * One widget of a saved dashboard: a chart or table the Overview and channel pages already draw, with the
 * widget's own filters (period preset, channels, chatbot). The API resolved the preset to local days, so
 * the page asks the analytics endpoints for exactly those; the figures are theirs.
 */
import type { Query } from "../api/client.ts"
import type { DashboardWidgetBody, WidgetKind } from "../api/dashboard-types.ts"
import type { ComparisonBody, ComprehensiveAnalyticsBody, TrendsBody } from "../api/types.ts"
import { channelColor, useChannelLabel } from "../channels.tsx"
import { BarChart } from "../charts/BarChart.tsx"
import { Heatmap } from "../charts/Heatmap.tsx"
import { LineChart } from "../charts/LineChart.tsx"
import { formatDay, formatHour, formatInteger } from "../format.ts"
import { REASON_TEXT } from "../reasons.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { ComparisonTable, QuotaCard, ShareCard, Totals } from "./Overview.tsx"

/** The catalog in words (the API's list of kinds, src/core/dashboards.ts). */
export const WIDGET_LABELS: Readonly<Record<WidgetKind, string>> = {
  quota: "Quota this billing period",
  totals: "Totals with growth",
  usage_share: "Usage share by channel",
  daily_tokens: "Daily tokens per channel",
  busy_hours: "Busy hours",
  channel_comparison: "Channel comparison",
  channel_trend: "One channel day by day",
  hourly_distribution: "One channel by hour of day",
  denials: "Denied turns by reason",
}

/** The kinds that draw exactly one channel. */
export const ONE_CHANNEL: ReadonlySet<WidgetKind> = new Set(["channel_trend", "hourly_distribution"])

export const PERIOD_LABELS: Readonly<Record<DashboardWidgetBody["period"], string>> = {
  last_7_days: "Last 7 days",
  last_14_days: "Last 14 days",
  last_30_days: "Last 30 days",
  last_90_days: "Last 90 days",
}

/** Loads an API path once per dashboard view: widgets that ask the same question share the answer. */
export type Loader = <T>(path: string, query: Query) => Promise<T>

function widgetQuery(widget: DashboardWidgetBody): Query {
  return {
    from: widget.from,
    to: widget.to,
    channels: widget.channels.length > 0 ? widget.channels.join(",") : undefined,
    chatbot_id: widget.chatbot_id ?? undefined,
  }
}

export function DashboardWidget({
  widget,
  index,
  load,
}: {
  widget: DashboardWidgetBody
  index: number
  load: Loader
}) {
  const label = useChannelLabel()
  const titleId = `widget-${index}-title`
  const scope = [
    widget.kind === "quota"
      ? "The current billing period"
      : `${PERIOD_LABELS[widget.period]} (${formatDay(widget.from)} – ${formatDay(widget.to, true)})`,
    widget.channels.length > 0 ? widget.channels.map(label).join(", ") : null,
    widget.chatbot_id ? `chatbot ${widget.chatbot_id}` : null,
  ].filter(Boolean)
  return (
    <section className="panel widget" aria-labelledby={titleId} data-widget={widget.kind} data-index={index}>
      <header className="widget-head">
        <h2 id={titleId}>{widget.title ?? WIDGET_LABELS[widget.kind]}</h2>
        <p className="muted small">{scope.join(" · ")}</p>
      </header>
      <WidgetBody widget={widget} load={load} />
    </section>
  )
}

function WidgetBody({ widget, load }: { widget: DashboardWidgetBody; load: Loader }) {
  const { subscription } = useWorkspace()
  if (widget.kind === "quota") return <QuotaCard subscription={subscription} />
  if (widget.kind === "channel_trend") return <ChannelTrend widget={widget} load={load} />
  if (widget.kind === "channel_comparison") return <Comparison widget={widget} load={load} />
  return <FromAnalytics widget={widget} load={load} />
}

function useAnalytics(widget: DashboardWidgetBody, path = "") {
  const { subscription } = useWorkspace()
  const base = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}${path}`
  const query = widgetQuery(widget)
  return { base, query, key: `${subscription.id}:${path}:${JSON.stringify(query)}` }
}

/** The channels a widget draws: those asked for, else the plan's and any with turns (as the Overview). */
function shownChannels(
  analytics: ComprehensiveAnalyticsBody,
  widget: DashboardWidgetBody,
  inPlan: (c: string) => boolean,
) {
  return analytics.channels.filter(
    (c) => widget.channels.length > 0 || inPlan(c.channel) || c.message_count > 0 || c.denied_count > 0,
  )
}

function FromAnalytics({ widget, load }: { widget: DashboardWidgetBody; load: Loader }) {
  const { subscription, catalog } = useWorkspace()
  const { base, query, key } = useAnalytics(widget)
  const [state, retry] = useAsync(() => load<ComprehensiveAnalyticsBody>(base, query), key)
  const inPlan = (channel: string) =>
    catalog.channels.find((c) => c.channel === channel)?.plans.includes(subscription.plan) ?? false
  const labelOf = (channel: string) => catalog.channels.find((e) => e.channel === channel)?.label ?? channel
  return (
    <AsyncView state={state} retry={retry} label="Loading…">
      {(analytics) => {
        const shown = shownChannels(analytics, widget, inPlan)
        const hasTurns = analytics.totals.message_count + analytics.totals.denied_count > 0
        if (widget.kind === "totals") return <Totals analytics={analytics} />
        if (!hasTurns) return <Empty title="No turns in this period" />
        switch (widget.kind) {
          case "usage_share":
            return <ShareCard analytics={analytics} shown={shown.map((c) => c.channel)} />
          case "daily_tokens":
            return (
              <LineChart
                testId="widget-daily-tokens"
                title="Tokens used per day and channel"
                unit="tokens"
                xLabels={analytics.totals.daily_trends.map((p) => formatDay(p.date))}
                series={shown.map((c) => ({
                  key: c.channel,
                  label: labelOf(c.channel),
                  color: channelColor(c.channel),
                  values: c.daily_trends.map((p) => p.tokens_used),
                }))}
              />
            )
          case "busy_hours":
            return (
              <Heatmap
                title="Tokens by hour of day and channel"
                unit="tokens"
                rows={shown.map((c) => ({
                  key: c.channel,
                  label: labelOf(c.channel),
                  color: channelColor(c.channel),
                  values: c.hourly_distribution.map((b) => b.tokens_used),
                  peak: c.peak_usage_hour,
                }))}
              />
            )
          case "hourly_distribution": {
            const stats = analytics.channels[0]
            if (!stats) return <Empty title="No such channel in this period" />
            return (
              <BarChart
                testId="widget-hourly-distribution"
                title={`${labelOf(stats.channel)}: tokens by hour of day`}
                unit="tokens"
                labels={stats.hourly_distribution.map((b) => formatHour(b.hour))}
                values={stats.hourly_distribution.map((b) => b.tokens_used)}
                color={channelColor(stats.channel)}
                highlight={stats.peak_usage_hour}
              />
            )
          }
          default:
            return <Denials analytics={analytics} />
        }
      }}
    </AsyncView>
  )
}

function Denials({ analytics }: { analytics: ComprehensiveAnalyticsBody }) {
  const t = analytics.totals
  const denials = Object.entries(t.denied_by_reason).filter(([reason]) => reason !== "subscription_not_found")
  const max = Math.max(1, ...denials.map(([, n]) => n))
  if (t.denied_count === 0) return <Empty title="No denied turns in this period" />
  return (
    <>
      <p className="muted small">
        {formatInteger(t.denied_count)} denied of {formatInteger(t.denied_count + t.message_count)} turns.
      </p>
      <ul className="hbars" data-testid="widget-denials">
        {denials.map(([reason, count]) => (
          <li key={reason} data-reason={reason}>
            <span className="hbar-label">{REASON_TEXT[reason] ?? reason}</span>
            <span className="hbar-track" aria-hidden="true">
              <span style={{ width: `${(100 * count) / max}%` }} />
            </span>
            <span className="hbar-value">{formatInteger(count)}</span>
          </li>
        ))}
      </ul>
    </>
  )
}

function Comparison({ widget, load }: { widget: DashboardWidgetBody; load: Loader }) {
  const { subscription, catalog } = useWorkspace()
  const { base, query, key } = useAnalytics(widget, "/channels/comparison")
  const [state, retry] = useAsync(() => load<ComparisonBody>(base, query), key)
  const inPlan = (channel: string) =>
    catalog.channels.find((c) => c.channel === channel)?.plans.includes(subscription.plan) ?? false
  return (
    <AsyncView state={state} retry={retry} label="Loading…">
      {(comparison) => (
        <ComparisonTable
          filters={query}
          comparison={{
            ...comparison,
            // The plan's channels and any with turns, as the Overview shows; the rest rank last (no use).
            channels: comparison.channels.filter(
              (c) => widget.channels.length > 0 || inPlan(c.channel) || c.message_count > 0,
            ),
          }}
        />
      )}
    </AsyncView>
  )
}

function ChannelTrend({ widget, load }: { widget: DashboardWidgetBody; load: Loader }) {
  const channel = widget.channels[0] ?? "website"
  const label = useChannelLabel()
  const { base, query, key } = useAnalytics(widget, `/channels/${encodeURIComponent(channel)}/trends`)
  const [state, retry] = useAsync(() => load<TrendsBody>(base, query), key)
  return (
    <AsyncView state={state} retry={retry} label="Loading…">
      {(trends) => {
        const xLabels = trends.points.map((p) => formatDay(p.date))
        return (
          <>
            <LineChart
              testId="widget-channel-trend"
              title={`${label(channel)}: tokens per day`}
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
            <LineChart
              testId="widget-channel-turns"
              title={`${label(channel)}: allowed and denied turns per day`}
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
          </>
        )
      }}
    </AsyncView>
  )
}
