/** Experiments (migration 0017): rows in and out. Runs in the caller's transaction and scope. */
import type { Kysely, Selectable } from "kysely"
import type { Channel } from "../core/channels.js"
import type {
  Experiment,
  ExperimentMetric,
  ExperimentStatus,
  Variant,
  VariantOverrides,
} from "../core/experiments.js"
import type { DB, ExperimentsTable } from "./schema.js"

function toExperiment(row: Selectable<ExperimentsTable>): Experiment {
  const variants = (typeof row.variants === "string" ? JSON.parse(row.variants) : row.variants) as {
    name: string
    weight: number
    overrides?: VariantOverrides
    label?: string | null
  }[]
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    name: row.name,
    channels: row.channels as Channel[],
    variants: variants.map((variant) => ({
      name: variant.name,
      weight: Number(variant.weight),
      overrides: variant.overrides ?? {},
      label: variant.label ?? null,
    })),
    primaryMetric: row.primary_metric as ExperimentMetric,
    status: row.status as ExperimentStatus,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    startedAt: row.started_at,
    stoppedAt: row.stopped_at,
  }
}

export interface NewExperiment {
  id: string
  subscriptionId: string
  name: string
  channels: Channel[]
  variants: Variant[]
  primaryMetric: ExperimentMetric
  status: "draft" | "running"
  now: Date
}

export async function insertExperiment(db: Kysely<DB>, experiment: NewExperiment): Promise<Experiment> {
  const row = await db
    .insertInto("experiments")
    .values({
      id: experiment.id,
      subscription_id: experiment.subscriptionId,
      name: experiment.name,
      channels: experiment.channels,
      variants: JSON.stringify(experiment.variants),
      primary_metric: experiment.primaryMetric,
      status: experiment.status,
      created_at: experiment.now,
      updated_at: experiment.now,
      started_at: experiment.status === "running" ? experiment.now : null,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return toExperiment(row)
}

export async function findExperiment(
  db: Kysely<DB>,
  subscriptionId: string,
  experimentId: string,
): Promise<Experiment | undefined> {
  const row = await db
    .selectFrom("experiments")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", experimentId)
    .executeTakeFirst()
  return row && toExperiment(row)
}

/** The subscription's experiments, newest first; only the running ones with `running`. */
export async function listExperiments(
  db: Kysely<DB>,
  subscriptionId: string,
  options: { running?: boolean } = {},
): Promise<Experiment[]> {
  let query = db
    .selectFrom("experiments")
    .selectAll()
    .where("subscription_id", "=", subscriptionId)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
  if (options.running) query = query.where("status", "=", "running")
  return (await query.execute()).map(toExperiment)
}

/**
 * The running experiments' ids, subscriptions and last changes, across tenants: the assigner's one
 * deployment-wide read per cache TTL, small whatever the number of experiments' variants.
 */
export async function runningExperimentVersions(
  db: Kysely<DB>,
): Promise<{ id: string; subscriptionId: string; updatedAt: Date }[]> {
  const rows = await db
    .selectFrom("experiments")
    .select(["id", "subscription_id", "updated_at"])
    .where("status", "=", "running")
    .execute()
  return rows.map((row) => ({ id: row.id, subscriptionId: row.subscription_id, updatedAt: row.updated_at }))
}

/** The experiments of these ids, across tenants (the assigner reads the ones it has not seen). */
export async function experimentsById(db: Kysely<DB>, ids: readonly string[]): Promise<Experiment[]> {
  if (ids.length === 0) return []
  const rows = await db.selectFrom("experiments").selectAll().where("id", "in", ids).execute()
  return rows.map(toExperiment)
}

/** Moves the experiment to `status`, stamping when it started or stopped. */
export async function updateExperimentStatus(
  db: Kysely<DB>,
  subscriptionId: string,
  experimentId: string,
  status: ExperimentStatus,
  now: Date,
): Promise<Experiment | undefined> {
  const row = await db
    .updateTable("experiments")
    .set({
      status,
      updated_at: now,
      ...(status === "running" ? { started_at: now, stopped_at: null } : {}),
      ...(status === "stopped" ? { stopped_at: now } : {}),
    })
    .where("subscription_id", "=", subscriptionId)
    .where("id", "=", experimentId)
    .returningAll()
    .executeTakeFirst()
  return row && toExperiment(row)
}
