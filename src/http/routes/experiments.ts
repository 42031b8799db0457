/** Experiments on channels (issue 15): create, list, read, start/stop, results. */
import { type Static, Type } from "typebox"
import { wireForm } from "../../core/casing.js"
import type { Experiment } from "../../core/experiments.js"
import { DateTime, Nullable, Uuid } from "../../core/formats.js"
import {
  CreateExperimentSchema,
  ExperimentStatusSchema,
  MetricSchema,
  UpdateExperimentSchema,
  VariantOverridesSchema,
} from "../../experiments/inputs.js"
import { overridesView } from "../../experiments/service.js"
import { ChannelSchema } from "../../meter/inputs.js"
import { authenticate, scopeFor } from "../auth.js"
import { csvColumns, FormatQuery, sendCsv, wantsCsv } from "../csv.js"
import { camelCaseDeep, snakeCaseSchema } from "../deep-casing.js"
import { errorResponses } from "../errors.js"
import { bearerSecurity, type RouteModule } from "../types.js"

const ExperimentParams = Type.Object({ id: Uuid(), experiment_id: Uuid() })
const SubscriptionParams = Type.Object({ id: Uuid() })

export const ExperimentSchema = Type.Object(
  {
    id: Type.String(),
    subscription_id: Type.String(),
    name: Type.String(),
    channels: Type.Array(ChannelSchema),
    variants: Type.Array(
      Type.Object({
        name: Type.String(),
        weight: Type.Number(),
        overrides: snakeCaseSchema(VariantOverridesSchema),
        label: Nullable(Type.String()),
      }),
      { description: "The first variant is the control." },
    ),
    primary_metric: MetricSchema,
    status: ExperimentStatusSchema,
    created_at: DateTime(),
    updated_at: DateTime(),
    started_at: Nullable(DateTime()),
    stopped_at: Nullable(DateTime()),
  },
  { $id: "Experiment" },
)
export type ExperimentBody = Static<typeof ExperimentSchema>

const IntervalSchema = Nullable(Type.Object({ low: Type.Number(), high: Type.Number() }))

export const ExperimentResultsSchema = Type.Object(
  {
    experiment_id: Type.String(),
    primary_metric: MetricSchema,
    metric_available: Type.Boolean({
      description: "False when the metric needs outcomes none were recorded for.",
    }),
    window: Type.Object({ start: DateTime(), end: DateTime() }),
    variants: Type.Array(
      Type.Object({
        name: Type.String(),
        weight: Type.Number(),
        label: Nullable(Type.String()),
        people: Type.Integer(),
        turns: Type.Integer({ description: "Allowed turns." }),
        raw_tokens: Type.Integer(),
        billed_tokens: Type.Integer({ description: "What quota counted: the variant's cost in tokens." }),
        cost_micros: Nullable(
          Type.Number({
            description: "Money cost of the priced turns, micro-units of the operator's currency.",
          }),
        ),
        tokens_per_turn: Nullable(Type.Number()),
        conversions: Nullable(Type.Integer()),
        metric: Type.Object({
          value: Nullable(Type.Number()),
          interval: IntervalSchema,
          sample_size: Type.Integer(),
        }),
        comparison: Nullable(
          Type.Object({
            difference: Type.Number({ description: "This variant minus the control." }),
            interval: Type.Object(
              { low: Type.Number(), high: Type.Number() },
              { description: "The difference's interval at 1 - alpha (95% with two variants)." },
            ),
            statistic: Type.Number({ description: "z (rates, cost per conversion) or Welch's t (means)." }),
            p_value: Type.Number(),
            degrees_of_freedom: Type.Optional(Type.Number()),
            significant: Type.Boolean(),
          }),
        ),
      }),
    ),
    sample_ratio: Type.Object(
      {
        chi_square: Type.Number(),
        p_value: Type.Number(),
        mismatch: Type.Boolean(),
      },
      {
        description:
          "Pearson's chi-square of the people per variant against the weights, over the variants of positive weight; mismatch when p < 0.001, or when a variant of weight 0 has people (p = 0).",
      },
    ),
    alpha: Type.Number({
      description:
        "A difference is significant when p < alpha = 0.05 / (variants - 1) (Bonferroni); the differences' intervals are at 1 - alpha.",
    }),
    min_people_per_variant: Type.Integer(),
    verdict: Type.Object({ decided: Type.Boolean(), winner: Nullable(Type.String()), text: Type.String() }),
  },
  { $id: "ExperimentResults" },
)

const EXPERIMENT_COLUMNS = csvColumns(ExperimentSchema)
const VARIANT_COLUMNS = csvColumns(ExperimentResultsSchema.properties.variants.items)

const CreateBody = snakeCaseSchema(CreateExperimentSchema)
const PatchBody = snakeCaseSchema(UpdateExperimentSchema)

function experimentBody(experiment: Experiment) {
  return wireForm({
    ...experiment,
    variants: experiment.variants.map((variant) => ({
      ...variant,
      overrides: overridesView(variant.overrides),
    })),
  })
}

export const experimentRoutes: RouteModule = (app, { meter, keys }) => {
  const auth = authenticate(keys)
  const tags = ["experiments"]
  const service = meter.experiments

  app.post(
    "/api/subscriptions/:id/experiments",
    {
      onRequest: auth,
      schema: {
        operationId: "createExperiment",
        tags,
        summary: "Create an experiment on one or more channels",
        description:
          "Weights that do not sum to a positive number, an override outside the channel settings' bounds, a duplicate variant name or an unknown metric answer 400 naming the field. Created running, or draft (default). At most one experiment runs per channel: a second answers 409.",
        security: bearerSecurity,
        params: SubscriptionParams,
        body: CreateBody,
        response: { 201: Type.Ref("Experiment"), ...errorResponses(400, 401, 404, 409, 500) },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const input = camelCaseDeep(request.body) as Static<typeof CreateExperimentSchema>
      const experiment = await service.create(id, input, scopeFor(request, id))
      return reply.code(201).send(experimentBody(experiment))
    },
  )

  app.get(
    "/api/subscriptions/:id/experiments",
    {
      onRequest: auth,
      schema: {
        operationId: "listExperiments",
        tags,
        summary: "The subscription's experiments, newest first",
        description:
          "`format=csv` or `Accept: text/csv` answers CSV, one row per experiment (channels joined by spaces; the variants are in GET .../experiments/{experiment_id}).",
        security: bearerSecurity,
        params: SubscriptionParams,
        querystring: FormatQuery,
        response: {
          200: Type.Object({ experiments: Type.Array(Type.Ref("Experiment")) }),
          ...errorResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const experiments = (await service.list(id, scopeFor(request, id))).map(experimentBody)
      if (wantsCsv(request)) return sendCsv(reply, "experiments", EXPERIMENT_COLUMNS, experiments)
      return { experiments }
    },
  )

  app.get(
    "/api/subscriptions/:id/experiments/:experiment_id",
    {
      onRequest: auth,
      schema: {
        operationId: "getExperiment",
        tags,
        summary: "One experiment",
        security: bearerSecurity,
        params: ExperimentParams,
        response: { 200: Type.Ref("Experiment"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { id, experiment_id: experimentId } = request.params
      return experimentBody(await service.get(id, experimentId, scopeFor(request, id)))
    },
  )

  app.patch(
    "/api/subscriptions/:id/experiments/:experiment_id",
    {
      onRequest: auth,
      schema: {
        operationId: "updateExperimentStatus",
        tags,
        summary: "Start or stop an experiment",
        description:
          "draft -> running -> stopped (or draft -> stopped). Any other change, or starting on a channel where another experiment runs, answers 409. Consume applies the change at the next turn on this instance, within the context cache's bound on others.",
        security: bearerSecurity,
        params: ExperimentParams,
        body: PatchBody,
        response: { 200: Type.Ref("Experiment"), ...errorResponses(400, 401, 404, 409, 500) },
      },
    },
    async (request) => {
      const { id, experiment_id: experimentId } = request.params
      const input = camelCaseDeep(request.body) as Static<typeof UpdateExperimentSchema>
      return experimentBody(await service.update(id, experimentId, input, scopeFor(request, id)))
    },
  )

  app.get(
    "/api/subscriptions/:id/experiments/:experiment_id/results",
    {
      onRequest: auth,
      schema: {
        operationId: "getExperimentResults",
        tags,
        summary:
          "Per variant figures, the primary metric with its 95% interval, the test against the control",
        description:
          "Rates: Wilson intervals and the two-proportion z-test; means: t intervals and Welch's t-test on per-person values. Sample ratio mismatch: chi-square p < 0.001. A verdict only past min_people_per_variant and below alpha. Formulas: README, Experiments. `format=csv` or `Accept: text/csv` answers CSV, one row per variant (nested fields as metric.interval.low).",
        security: bearerSecurity,
        params: ExperimentParams,
        querystring: FormatQuery,
        response: { 200: Type.Ref("ExperimentResults"), ...errorResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      const { id, experiment_id: experimentId } = request.params
      const results = wireForm(await service.results(id, experimentId, scopeFor(request, id)))
      if (wantsCsv(request))
        return sendCsv(reply, `experiment-${experimentId}-results`, VARIANT_COLUMNS, results.variants)
      return results
    },
  )
}
