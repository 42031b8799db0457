/**
 * People across channels and experiments on channels (issue 15): link identifiers to people; create,
 * read, list, start and stop experiments; read their results. Every change calls `invalidate`, so this
 * instance's consume path sees it at the next turn.
 */
import { type Kysely, sql } from "kysely"
import { hundredthsToMultiplier, multiplierToHundredths } from "../core/billing.js"
import type { Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import type { Experiment, ExperimentStatus, Variant, VariantOverrides } from "../core/experiments.js"
import { isText, TEXT_RULE } from "../core/formats.js"
import { isUuid, uuidV7 } from "../core/ids.js"
import type { TenantScope } from "../core/tenant.js"
import { validate } from "../core/validate.js"
import type { Database } from "../storage/database.js"
import {
  findExperiment,
  insertExperiment,
  listExperiments,
  updateExperimentStatus,
} from "../storage/experiments.js"
import {
  findOwners,
  findPersonIdentifiers,
  firstConversions,
  type Identifier,
  PERSON_KEY_SQL,
  replacePersonIdentifiers,
} from "../storage/people.js"
import type { DB } from "../storage/schema.js"
import { withVisibleSubscription } from "../storage/scoped.js"
import {
  type CreateExperimentInput,
  CreateExperimentSchema,
  type LinkPersonInput,
  LinkPersonSchema,
  PERSON_ID_MAX_LENGTH,
  type UpdateExperimentInput,
  UpdateExperimentSchema,
} from "./inputs.js"
import { type ExperimentResults, experimentResults, type PersonFigures } from "./results.js"

export interface Person {
  subscriptionId: string
  personId: string
  identifiers: { channel: Channel; userIdentifier: string; linkedAt: Date }[]
}

export interface ExperimentServiceDependencies {
  database: Database
  clock: Clock
  /** Called after a committed change: the consume path forgets the subscription's experiments and links. */
  invalidate: (subscriptionId: string) => void
}

/** A person id under the text rule and the length limit: the path carries it, so it is checked here. */
function requirePersonId(personId: string): void {
  if (personId.length === 0 || personId.length > PERSON_ID_MAX_LENGTH)
    throw new ValidationError("person_id", `must be 1 to ${PERSON_ID_MAX_LENGTH} characters`)
  if (!isText(personId)) throw new ValidationError("person_id", TEXT_RULE)
}

function requireExperimentId(experimentId: string): void {
  if (!isUuid(experimentId)) throw new ValidationError("experiment_id", "must be a UUID")
}

/** Allowed status changes: draft -> running | stopped, running -> stopped. A stopped experiment stays so. */
const NEXT_STATUSES: Record<ExperimentStatus, readonly ExperimentStatus[]> = {
  draft: ["running", "stopped"],
  running: ["stopped"],
  stopped: [],
}

export class ExperimentService {
  constructor(private readonly deps: ExperimentServiceDependencies) {}

  /**
   * Makes `identifiers` the person's whole set. An identifier linked to another person is a `conflict`
   * naming that person; nothing is written then.
   * @example
   * await experiments.linkPerson(subscriptionId, "crm-42", {
   *   identifiers: [{ channel: "whatsapp", userIdentifier: "+15550100" }, { channel: "website", userIdentifier: "c-9f" }],
   * })
   */
  async linkPerson(
    subscriptionId: string,
    personId: string,
    input: LinkPersonInput,
    scope?: TenantScope,
  ): Promise<Person> {
    requirePersonId(personId)
    const { identifiers } = validate(LinkPersonSchema, input)
    const unique = new Map<string, Identifier>()
    for (const identifier of identifiers)
      unique.set(`${identifier.channel}\u0000${identifier.userIdentifier}`, identifier)
    const person = await withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db) => {
      const taken = (await findOwners(db, subscriptionId, [...unique.values()])).find(
        (owner) => owner.personId !== personId,
      )
      if (taken)
        throw new OmnimeterError(
          "conflict",
          `The ${taken.channel} identifier "${taken.userIdentifier}" already belongs to person "${taken.personId}"; unlink it there first.`,
          { field: "identifiers", personId: taken.personId, channel: taken.channel },
        )
      await replacePersonIdentifiers(db, subscriptionId, personId, [...unique.values()], this.now())
      return this.readPerson(db, subscriptionId, personId)
    })
    this.deps.invalidate(subscriptionId)
    return person
  }

  /** The person's identifiers; a person with none is `not_found`. */
  async getPerson(subscriptionId: string, personId: string, scope?: TenantScope): Promise<Person> {
    requirePersonId(personId)
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db) => {
      const person = await this.readPerson(db, subscriptionId, personId)
      if (person.identifiers.length === 0)
        throw new OmnimeterError("not_found", `No person "${personId}" is linked in this subscription.`)
      return person
    })
  }

  /** Creates an experiment (draft, or running at once). */
  async create(
    subscriptionId: string,
    input: CreateExperimentInput,
    scope?: TenantScope,
  ): Promise<Experiment> {
    const body = validate(CreateExperimentSchema, input)
    const total = body.variants.reduce((sum, variant) => sum + variant.weight, 0)
    if (!(total > 0)) throw new ValidationError("variants", "the weights must sum to a positive number")
    const names = new Set<string>()
    const variants: Variant[] = body.variants.map((variant, i) => {
      if (names.has(variant.name)) throw new ValidationError(`variants.${i}.name`, "must be unique")
      names.add(variant.name)
      const overrides: VariantOverrides = {}
      const given = variant.overrides ?? {}
      if (given.tokenMultiplier !== undefined) {
        const hundredths = multiplierToHundredths(given.tokenMultiplier)
        if (hundredths === undefined)
          throw new ValidationError(
            `variants.${i}.overrides.token_multiplier`,
            "must have at most two decimals",
          )
        overrides.multiplierHundredths = hundredths
      }
      if (given.maxMessageLength !== undefined) overrides.maxMessageLength = given.maxMessageLength
      if (given.requestsPerMinute !== undefined) overrides.requestsPerMinute = given.requestsPerMinute
      if (given.tokensPerMinute !== undefined) overrides.tokensPerMinute = given.tokensPerMinute
      if (given.priority !== undefined) overrides.priority = given.priority
      return { name: variant.name, weight: variant.weight, overrides, label: variant.label ?? null }
    })
    const now = this.now()
    const status = body.status ?? "draft"
    const experiment = await withVisibleSubscription(
      this.deps.database,
      scope,
      subscriptionId,
      async (db) => {
        if (status === "running") await this.requireChannelsFree(db, subscriptionId, body.channels, undefined)
        return insertExperiment(db, {
          id: uuidV7(now.getTime()),
          subscriptionId,
          name: body.name,
          channels: body.channels,
          variants,
          primaryMetric: body.primaryMetric,
          status,
          now,
        })
      },
    )
    this.deps.invalidate(subscriptionId)
    return experiment
  }

  async get(subscriptionId: string, experimentId: string, scope?: TenantScope): Promise<Experiment> {
    requireExperimentId(experimentId)
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, (db) =>
      this.requireExperiment(db, subscriptionId, experimentId),
    )
  }

  /** Newest first. */
  async list(subscriptionId: string, scope?: TenantScope): Promise<Experiment[]> {
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, (db) =>
      listExperiments(db, subscriptionId),
    )
  }

  /** Starts or stops it. A change the lifecycle does not allow, or a second running experiment on a channel, is a conflict. */
  async update(
    subscriptionId: string,
    experimentId: string,
    input: UpdateExperimentInput,
    scope?: TenantScope,
  ): Promise<Experiment> {
    requireExperimentId(experimentId)
    const { status } = validate(UpdateExperimentSchema, input)
    const updated = await withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db) => {
      const experiment = await this.requireExperiment(db, subscriptionId, experimentId)
      if (experiment.status === status) return experiment
      if (!NEXT_STATUSES[experiment.status].includes(status))
        throw new OmnimeterError(
          "conflict",
          `status: a ${experiment.status} experiment cannot become ${status} (draft -> running -> stopped).`,
          { field: "status" },
        )
      if (status === "running")
        await this.requireChannelsFree(db, subscriptionId, experiment.channels, experimentId)
      const row = await updateExperimentStatus(db, subscriptionId, experimentId, status, this.now())
      if (!row) throw new OmnimeterError("not_found", `No experiment ${experimentId} exists.`)
      return row
    })
    this.deps.invalidate(subscriptionId)
    return updated
  }

  /** Per variant figures, the primary metric with its interval, the tests against the control, the verdict. */
  async results(
    subscriptionId: string,
    experimentId: string,
    scope?: TenantScope,
  ): Promise<ExperimentResults> {
    requireExperimentId(experimentId)
    return withVisibleSubscription(this.deps.database, scope, subscriptionId, async (db) => {
      const experiment = await this.requireExperiment(db, subscriptionId, experimentId)
      const start = experiment.startedAt
      const end = experiment.stoppedAt ?? this.now()
      const people = start ? await experimentPeople(db, subscriptionId, experiment.channels, start, end) : []
      return experimentResults(experiment, people, { start: start ?? end, end })
    })
  }

  private async requireExperiment(db: Kysely<DB>, subscriptionId: string, experimentId: string) {
    const experiment = await findExperiment(db, subscriptionId, experimentId)
    if (!experiment) throw new OmnimeterError("not_found", `No experiment ${experimentId} exists.`)
    return experiment
  }

  private async requireChannelsFree(
    db: Kysely<DB>,
    subscriptionId: string,
    channels: readonly Channel[],
    except: string | undefined,
  ): Promise<void> {
    const running = await listExperiments(db, subscriptionId, { running: true })
    const clash = running.find(
      (other) => other.id !== except && other.channels.some((channel) => channels.includes(channel)),
    )
    if (clash)
      throw new OmnimeterError(
        "conflict",
        `status: experiment "${clash.name}" (${clash.id}) already runs on ${clash.channels.filter((c) => channels.includes(c)).join(", ")}; stop it first.`,
        { field: "status", experimentId: clash.id },
      )
  }

  private async readPerson(db: Kysely<DB>, subscriptionId: string, personId: string): Promise<Person> {
    const links = await findPersonIdentifiers(db, subscriptionId, personId)
    return {
      subscriptionId,
      personId,
      identifiers: links.map((link) => ({
        channel: link.channel,
        userIdentifier: link.userIdentifier,
        linkedAt: link.linkedAt,
      })),
    }
  }

  private now(): Date {
    return new Date(this.deps.clock.now())
  }
}

/**
 * Per person (as consume assigns them) on the experiment's channels in [start, end]: turns, tokens, money
 * cost and mean sentiment of their turns (turn_details), mean CSAT of the feedback on their turns or
 * sessions, and whether they converted (an outcome in the window; null when the subscription recorded none).
 */
async function experimentPeople(
  db: Kysely<DB>,
  subscriptionId: string,
  channels: readonly Channel[],
  start: Date,
  end: Date,
): Promise<PersonFigures[]> {
  const result = await sql<{
    person: string
    turns: string | number
    raw: string | number
    billed: string | number
    cost_micros: string | null
    sentiment: string | null
    csat: string | null
  }>`
    with t as (
      select ${PERSON_KEY_SQL} as person, l.id, l.session_id, l.status, l.raw_tokens, l.billed_tokens
      from token_usage_logs l
      left join person_identifiers p
        on p.subscription_id = l.subscription_id and p.channel = l.channel and p.user_identifier = l.user_identifier
      where l.subscription_id = ${subscriptionId} and l.created_at >= ${start} and l.created_at <= ${end}
        and l.user_identifier is not null and l.channel in (${sql.join([...channels])})
    ), per as (
      select person, count(*) filter (where status <> 'denied') as turns,
        coalesce(sum(raw_tokens) filter (where status <> 'denied'), 0) as raw,
        coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0) as billed
      from t group by person
    ), details as (
      select t.person, sum(d.cost_micros)::text as cost_micros, avg(d.sentiment)::text as sentiment
      from t join turn_details d on d.usage_id = t.id and d.subscription_id = ${subscriptionId}
      group by t.person
    ), rated as (
      select person, avg(csat)::text as csat from (
        select distinct t.person, f.id, f.csat from t
        join feedback f on f.subscription_id = ${subscriptionId} and f.csat is not null
          and (f.usage_id = t.id or (f.usage_id is null and f.session_id = t.session_id))
      ) x group by person
    )
    select per.person, per.turns, per.raw, per.billed, details.cost_micros, details.sentiment, rated.csat
    from per left join details using (person) left join rated using (person)
  `.execute(db)
  const conversions = await firstConversions(db, subscriptionId, start, end)
  const number = (value: string | null) => (value === null ? null : Number(value))
  return result.rows.map((row) => ({
    person: row.person,
    turns: Number(row.turns),
    rawTokens: Number(row.raw),
    billedTokens: Number(row.billed),
    costMicros: number(row.cost_micros),
    sentiment: number(row.sentiment),
    csat: number(row.csat),
    converted: conversions ? conversions.has(row.person) : null,
  }))
}

/** A variant's overrides as the API shows them (the multiplier as a number, not hundredths). */
export function overridesView(overrides: VariantOverrides) {
  return {
    ...(overrides.multiplierHundredths !== undefined
      ? { tokenMultiplier: hundredthsToMultiplier(overrides.multiplierHundredths) }
      : {}),
    ...(overrides.maxMessageLength !== undefined ? { maxMessageLength: overrides.maxMessageLength } : {}),
    ...(overrides.requestsPerMinute !== undefined ? { requestsPerMinute: overrides.requestsPerMinute } : {}),
    ...(overrides.tokensPerMinute !== undefined ? { tokensPerMinute: overrides.tokensPerMinute } : {}),
    ...(overrides.priority !== undefined ? { priority: overrides.priority } : {}),
  }
}
