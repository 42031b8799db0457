/**
 * Custom dashboards (issue 16): the catalog of widgets a saved view may hold, their limits, the rules a
 * widget's filters follow beyond its schema, and how a period preset becomes local days. Pure: no I/O.
 */
import type { Channel } from "./channels.js"
import { addDays, type LocalDate } from "./time-zones.js"

/**
 * Every widget a dashboard can show: each is a chart or table the dashboard already draws on its Overview
 * or channel pages, with the same numbers (it reads the same analytics endpoints).
 */
export const WIDGET_KINDS = [
  "quota",
  "totals",
  "usage_share",
  "daily_tokens",
  "busy_hours",
  "channel_comparison",
  "channel_trend",
  "hourly_distribution",
  "denials",
] as const
export type WidgetKind = (typeof WIDGET_KINDS)[number]

/** What each kind shows, and whether it draws exactly one channel. */
export const WIDGET_CATALOG: Readonly<Record<WidgetKind, { label: string; oneChannel: boolean }>> =
  Object.freeze({
    quota: { label: "Quota this billing period", oneChannel: false },
    totals: { label: "Totals with growth", oneChannel: false },
    usage_share: { label: "Usage share by channel", oneChannel: false },
    daily_tokens: { label: "Daily tokens per channel", oneChannel: false },
    busy_hours: { label: "Busy hours (hour x channel heatmap)", oneChannel: false },
    channel_comparison: { label: "Channel comparison table", oneChannel: false },
    channel_trend: { label: "One channel's daily tokens and turns", oneChannel: true },
    hourly_distribution: { label: "One channel's tokens by hour of day", oneChannel: true },
    denials: { label: "Denied turns by reason", oneChannel: false },
  })

/** Period presets: the last N complete local days (today, still running, is left out). */
export const PERIOD_PRESETS = ["last_7_days", "last_14_days", "last_30_days", "last_90_days"] as const
export type PeriodPreset = (typeof PERIOD_PRESETS)[number]
export const DEFAULT_PERIOD_PRESET: PeriodPreset = "last_30_days"

const PRESET_DAYS: Readonly<Record<PeriodPreset, number>> = Object.freeze({
  last_7_days: 7,
  last_14_days: 14,
  last_30_days: 30,
  last_90_days: 90,
})

/** Limits of one saved view and of a subscription's views. */
export const DASHBOARD_LIMITS = Object.freeze({
  nameLength: 80,
  titleLength: 80,
  widgets: 12,
  dashboardsPerSubscription: 50,
  chatbotIdLength: 255,
})

export interface Widget {
  kind: WidgetKind
  title?: string | null | undefined
  period?: PeriodPreset | undefined
  channels?: readonly Channel[] | undefined
  chatbotId?: string | null | undefined
}

/**
 * The first rule a list of widgets breaks beyond its schema, as `[field, message]` (field relative to the
 * body, e.g. `widgets.2.channels`), or null when every widget is drawable.
 * @example widgetProblem([{ kind: "channel_trend", channels: [] }]) // ["widgets.0.channels", "..."]
 */
export function widgetProblem(widgets: readonly Widget[]): [string, string] | null {
  for (const [index, widget] of widgets.entries()) {
    const channels = widget.channels ?? []
    if (new Set(channels).size !== channels.length)
      return [`widgets.${index}.channels`, "names a channel twice"]
    if (WIDGET_CATALOG[widget.kind].oneChannel && channels.length !== 1)
      return [`widgets.${index}.channels`, `a ${widget.kind} widget shows exactly one channel: name one`]
    if (widget.kind === "quota" && channels.length > 0)
      return [`widgets.${index}.channels`, "the quota widget covers the whole subscription: name no channels"]
  }
  return null
}

/**
 * The local days a preset covers on `today`: the last N complete days, ending yesterday.
 * @example presetDays("last_7_days", "2026-03-10") // { from: "2026-03-03", to: "2026-03-09" }
 */
export function presetDays(preset: PeriodPreset, today: LocalDate): { from: LocalDate; to: LocalDate } {
  const to = addDays(today, -1)
  return { from: addDays(to, -(PRESET_DAYS[preset] - 1)), to }
}
