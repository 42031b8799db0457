/**
 * The input contracts of saved dashboards (issue 16), camelCase like the meter's (src/meter/inputs.ts);
 * the HTTP bodies are derived from them with snake_case names (src/http/routes/dashboards.ts).
 */
import { type Static, Type } from "typebox"
import { DASHBOARD_LIMITS, PERIOD_PRESETS, WIDGET_KINDS } from "../core/dashboards.js"
import { Nullable, Text } from "../core/formats.js"
import { ChannelSchema, OneOf } from "../meter/inputs.js"

const L = DASHBOARD_LIMITS

export const WidgetKindSchema = OneOf(
  WIDGET_KINDS,
  "What the widget draws: quota, totals, usage_share, daily_tokens, busy_hours, channel_comparison (the Overview's); channel_trend, hourly_distribution (one channel's, name it in channels); denials (by reason).",
)
export const PeriodPresetSchema = OneOf(
  PERIOD_PRESETS,
  "The last N complete local days in the subscription's timezone (today, still running, is left out). Default last_30_days.",
)

export const WidgetInputSchema = Type.Object(
  {
    kind: WidgetKindSchema,
    title: Type.Optional(Nullable(Text(L.titleLength), "Shown instead of the kind's own title.")),
    period: Type.Optional(PeriodPresetSchema),
    channels: Type.Optional(
      Type.Array(ChannelSchema, {
        maxItems: 6,
        description:
          "The channels to include; empty or absent: all of them. channel_trend and hourly_distribution need exactly one.",
      }),
    ),
    chatbotId: Type.Optional(
      Nullable(
        Text(L.chatbotIdLength, { minLength: 1 }),
        "Only this chatbot's turns (analytics' chatbot_id).",
      ),
    ),
  },
  { additionalProperties: false },
)
export type WidgetInput = Static<typeof WidgetInputSchema>

const Name = Text(L.nameLength, { minLength: 1, description: "Unique within the subscription." })
/** The bounds of a widget list, shared with the HTTP body's (snake_case) list. */
export const WIDGET_LIST_OPTIONS = Object.freeze({
  maxItems: L.widgets,
  description: `In display order, at most ${L.widgets}.`,
})
const Widgets = Type.Array(WidgetInputSchema, WIDGET_LIST_OPTIONS)

export const CreateDashboardSchema = Type.Object(
  { name: Name, widgets: Widgets },
  { additionalProperties: false },
)
export type CreateDashboardInput = Static<typeof CreateDashboardSchema>

export const UpdateDashboardSchema = Type.Object(
  {
    name: Type.Optional(Name),
    widgets: Type.Optional(Widgets),
    version: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "The version this change was made from: refused with 409 when the dashboard changed since. Absent: last write wins.",
      }),
    ),
  },
  { additionalProperties: false },
)
export type UpdateDashboardInput = Static<typeof UpdateDashboardSchema>
