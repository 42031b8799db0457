/**
 * The input contracts of people and experiments (issue 15), camelCase as the library takes them; the HTTP
 * bodies derive from them with snakeCaseProperties (src/http/routes/people.ts, experiments.ts).
 */
import { type Static, Type } from "typebox"
import { CHANNEL_SETTING_BOUNDS } from "../core/channels.js"
import { EXPERIMENT_METRICS, EXPERIMENT_STATUSES } from "../core/experiments.js"
import { Id, Text } from "../core/formats.js"
import { ChannelSchema, OneOf } from "../meter/inputs.js"

/** A person id: your own id for the person (a CRM id, an email hash), at most 64 characters (a path segment). */
export const PERSON_ID_MAX_LENGTH = 64
/** Most identifiers one person may have: enough for every channel several times over. */
export const MAX_IDENTIFIERS_PER_PERSON = 50

export const IdentifierSchema = Type.Object(
  {
    channel: ChannelSchema,
    userIdentifier: Id(255, "The user_identifier the person has on that channel."),
  },
  { additionalProperties: false },
)

export const LinkPersonSchema = Type.Object(
  {
    identifiers: Type.Array(IdentifierSchema, {
      maxItems: MAX_IDENTIFIERS_PER_PERSON,
      description:
        "Every identifier of the person; replaces the person's previous set (an identifier left out is unlinked).",
    }),
  },
  { additionalProperties: false },
)
export type LinkPersonInput = Static<typeof LinkPersonSchema>

const b = CHANNEL_SETTING_BOUNDS
const Bounded = ({ min, max }: { min: number; max: number }, description: string) =>
  Type.Integer({ minimum: min, maximum: max, description })

export const VariantOverridesSchema = Type.Object(
  {
    tokenMultiplier: Type.Optional(
      Type.Number({
        minimum: b.multiplierHundredths.min / 100,
        maximum: b.multiplierHundredths.max / 100,
        description: "Billed tokens = ceil(raw * multiplier) for the variant's turns. At most two decimals.",
      }),
    ),
    maxMessageLength: Type.Optional(Bounded(b.maxMessageLength, "Longest message, in code points.")),
    requestsPerMinute: Type.Optional(Bounded(b.requestsPerMinute, "Requests per minute on the channel.")),
    tokensPerMinute: Type.Optional(Bounded(b.tokensPerMinute, "Tokens per minute on the channel.")),
    priority: Type.Optional(Bounded(b.priority, "1 (lowest) to 10.")),
  },
  { additionalProperties: false },
)

export const VariantInputSchema = Type.Object(
  {
    name: Id(64, "Unique within the experiment. The first variant is the control."),
    weight: Type.Number({ minimum: 0, maximum: 1_000_000, description: "Share of people, relative." }),
    overrides: Type.Optional(VariantOverridesSchema),
    label: Type.Optional(
      Text(200, { description: "Free text the chat backend applies itself, e.g. a prompt or model name." }),
    ),
  },
  { additionalProperties: false },
)

export const MetricSchema = OneOf(EXPERIMENT_METRICS, "What decides the experiment.")
export const ExperimentStatusSchema = OneOf(EXPERIMENT_STATUSES, "draft, running or stopped.")

export const CreateExperimentSchema = Type.Object(
  {
    name: Id(200, "What the experiment tests."),
    channels: Type.Array(ChannelSchema, {
      minItems: 1,
      maxItems: 6,
      uniqueItems: true,
      description: "The channels whose turns it applies to.",
    }),
    variants: Type.Array(VariantInputSchema, { minItems: 2, maxItems: 10 }),
    primaryMetric: MetricSchema,
    status: Type.Optional(OneOf(["draft", "running"] as const, "Default draft.")),
  },
  { additionalProperties: false },
)
export type CreateExperimentInput = Static<typeof CreateExperimentSchema>

export const UpdateExperimentSchema = Type.Object(
  { status: ExperimentStatusSchema },
  { additionalProperties: false },
)
export type UpdateExperimentInput = Static<typeof UpdateExperimentSchema>
