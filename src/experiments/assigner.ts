/**
 * Experiment assignment on the consume path: which running experiments a turn is in, and the overrides
 * of its variants.
 *
 * Design note. Goals, in order: (1) a subscription without a running experiment pays one Map lookup per
 * turn; (2) a person's variant is the same on every instance and after every restart (it is a hash, see
 * core/experiments.ts, never a stored draw); (3) a start or stop through this instance applies to the next
 * turn (`invalidate`), through another instance within `ttlMs`, the context cache's bound.
 *
 * - The running experiments are read once per `ttlMs` for the whole deployment: one short query of their
 *   ids, subscriptions and last changes (refreshed ahead like the rest), then the rows of the ones this
 *   instance has not seen, or that changed, by id. A subscription without one asks nothing more; nor does a
 *   subscription with one. Before, each subscription with a running experiment had its experiments read
 *   once per `ttlMs`: with a TTL of 1 s and 100 such subscriptions, 100 reads a second, about half of what
 *   a running experiment cost the PostgreSQL consume path per decision (bench/RESULTS.md, issue 15's last
 *   pass); before issue 18, every subscription was read so.
 * - A turn is assigned by its person: the person its (channel, user_identifier) is linked to, else the
 *   identifier itself. While an experiment runs, the subscription's links are read into memory at once (up
 *   to `maxPeople` of them) and kept `linksTtlMs` (default 60 s; a link changed through this instance
 *   applies at once): a turn then asks no query. A subscription with more links falls back to one cached
 *   lookup per identifier. A turn without a user_identifier is in no experiment: there is nobody to keep
 *   the variant sticky for.
 * - Reads are single-flight: the turns that miss the cache together (after a start or stop through this
 *   instance, every turn in flight) share one read; a turn after an invalidation never joins an older one.
 * - The running experiments are refreshed ahead, like the subscription contexts (meter/context-cache.ts):
 *   a turn served from an entry past half its TTL starts the next read in the background, so a busy
 *   subscription is never read on a turn's path; an entry still answers only until its own expiry.
 * - At most one experiment runs per channel (ExperimentService refuses a second), so overrides never
 *   compete.
 */
import type { Channel } from "../core/channels.js"
import {
  assignVariant,
  type Experiment,
  type ExperimentAssignment,
  personKey,
  type VariantOverrides,
} from "../core/experiments.js"
import type { Database } from "../storage/database.js"
import { experimentsById, runningExperimentVersions } from "../storage/experiments.js"
import { findPersonOf } from "../storage/people.js"

/** A running experiment as turns need it: its weights, and each variant's assignment, made once. */
interface Prepared {
  experiment: Experiment
  weights: number[]
  /** Per variant, what a turn on a channel with no other experiment gets: shared by those turns, so frozen. */
  alone: { overrides: VariantOverrides; assignment: ExperimentAssignment }[]
}

function prepare(experiment: Experiment): Prepared {
  return {
    experiment,
    weights: experiment.variants.map((variant) => variant.weight),
    alone: experiment.variants.map((variant) => ({
      overrides: Object.freeze({ ...variant.overrides }),
      assignment: Object.freeze({ id: experiment.id, variant: variant.name, label: variant.label }),
    })),
  }
}

export interface TurnAssignment {
  /** The variants' overrides, to put on top of the channel's. */
  overrides: VariantOverrides
  experiments: ExperimentAssignment[]
}

interface Timed<T> {
  value: T
  expires: number
  /** A background read was started for this entry. */
  refreshing?: boolean
}

export interface ExperimentAssignerOptions {
  ttlMs: number
  now: () => number
  /** Most identifiers whose person is remembered. Default 100,000. */
  maxPeople?: number
  /** How long a subscription's links are kept in memory. Default 60,000 ms. */
  linksTtlMs?: number
}

/**
 * @example
 * const assigner = new ExperimentAssigner(database, { ttlMs: 1000, now: () => performance.now() })
 * const assigned = await assigner.assign(subscriptionId, "whatsapp", "+15550100")
 * const overrides = assigned ? withVariantOverrides(channelOverrides, assigned.overrides) : channelOverrides
 */
export class ExperimentAssigner {
  /** The running experiments of every subscription that has one, deployment-wide, by channel. */
  private running: Timed<Map<string, Map<Channel, Prepared[]>>> | undefined
  /** The reads under way (the running experiments, each subscription's links), shared by the turns that wait. */
  private readonly pending = new Map<string, { generation: number; read: Promise<unknown> }>()
  /** Every running experiment read so far, by id, to read only the new or changed ones. */
  private readonly seen = new Map<string, Prepared>()
  private readonly people = new Map<string, Timed<string | null>>()
  /** All links of a subscription, or null when there are too many to hold. */
  private readonly links = new Map<string, Timed<Map<string, string> | null>>()
  private readonly maxPeople: number
  private generation = 0
  /** Reads running in the background (refreshes ahead). */
  private readonly refreshes = new Set<Promise<unknown>>()

  constructor(
    private readonly database: Database,
    private readonly options: ExperimentAssignerOptions,
  ) {
    this.maxPeople = options.maxPeople ?? 100_000
  }

  /** The turn's experiments and overrides, or undefined when it is in none. */
  async assign(
    subscriptionId: string,
    channel: Channel,
    userIdentifier: string | undefined,
  ): Promise<TurnAssignment | undefined> {
    if (userIdentifier === undefined) return undefined
    const experiments = (await this.runningExperiments(subscriptionId))?.get(channel)
    if (experiments === undefined) return undefined
    const person = personKey(
      await this.personOf(subscriptionId, channel, userIdentifier),
      channel,
      userIdentifier,
    )
    const assigned: TurnAssignment = { overrides: {}, experiments: [] }
    for (const { experiment, weights, alone } of experiments) {
      const variant = alone[assignVariant(experiment.id, person, weights)]
      if (!variant) continue
      // The one experiment of the channel (the service allows no second): its variant's overrides as they are.
      if (experiments.length === 1) assigned.overrides = variant.overrides
      else Object.assign(assigned.overrides, variant.overrides)
      assigned.experiments.push(variant.assignment)
    }
    return assigned
  }

  /** Forgets the subscription's experiments and links: the next turn reads them afresh. */
  invalidate(subscriptionId: string): void {
    this.generation += 1
    this.running = undefined
    this.links.delete(subscriptionId)
    const prefix = `${subscriptionId}\u0000`
    for (const key of this.people.keys()) if (key.startsWith(prefix)) this.people.delete(key)
  }

  private async allLinks(subscriptionId: string): Promise<Map<string, string> | null> {
    const cached = this.links.get(subscriptionId)
    if (cached && cached.expires > this.options.now()) return cached.value
    return this.shared(`links\u0000${subscriptionId}`, () => this.readLinks(subscriptionId))
  }

  private async readLinks(subscriptionId: string): Promise<Map<string, string> | null> {
    const generation = this.generation
    const rows = await this.database.db
      .selectFrom("person_identifiers")
      .select(["channel", "user_identifier", "person_id"])
      .where("subscription_id", "=", subscriptionId)
      .limit(this.maxPeople + 1)
      .execute()
    const value =
      rows.length > this.maxPeople
        ? null
        : new Map(rows.map((row) => [`${row.channel}\u0000${row.user_identifier}`, row.person_id]))
    const ttl = this.options.linksTtlMs ?? 60_000
    if (generation === this.generation && this.options.ttlMs > 0)
      this.links.set(subscriptionId, { value, expires: this.options.now() + ttl })
    return value
  }

  /** Resolves once the reads running in the background have finished. */
  async settled(): Promise<void> {
    await Promise.all(this.refreshes)
  }

  private async runningExperiments(subscriptionId: string): Promise<Map<Channel, Prepared[]> | undefined> {
    const running = await this.cached(
      () => this.running,
      () => this.shared("running", () => this.readRunning()),
    )
    return running.get(subscriptionId)
  }

  /**
   * An entry's value while it lasts; past half its TTL, the first turn it serves starts the next read in the
   * background (a failed read changes nothing: the entry expires on time and the next turn reads).
   */
  private async cached<T>(entry: () => Timed<T> | undefined, read: () => Promise<T>): Promise<T> {
    const cached = entry()
    const now = this.options.now()
    if (cached && cached.expires > now) {
      if (!cached.refreshing && cached.expires - now <= this.options.ttlMs / 2) {
        cached.refreshing = true
        const refresh: Promise<unknown> = read()
          .catch(() => {})
          .finally(() => this.refreshes.delete(refresh))
        this.refreshes.add(refresh)
      }
      return cached.value
    }
    return read()
  }

  /**
   * One read of `key` at a time: the turns that miss the cache together (after a start or stop through this
   * instance, every turn in flight does) share it; a turn after an invalidation never joins a read begun
   * before it.
   */
  private shared<T>(key: string, read: () => Promise<T>): Promise<T> {
    const pending = this.pending.get(key)
    if (pending && pending.generation === this.generation) return pending.read as Promise<T>
    const started: Promise<T> = read().finally(() => {
      if (this.pending.get(key)?.read === started) this.pending.delete(key)
    })
    this.pending.set(key, { generation: this.generation, read: started })
    return started
  }

  private async readRunning(): Promise<Map<string, Map<Channel, Prepared[]>>> {
    const generation = this.generation
    const versions = await runningExperimentVersions(this.database.db)
    const unseen = versions.filter(
      (version) => this.seen.get(version.id)?.experiment.updatedAt.getTime() !== version.updatedAt.getTime(),
    )
    for (const experiment of await experimentsById(
      this.database.db,
      unseen.map((version) => version.id),
    ))
      this.seen.set(experiment.id, prepare(experiment))
    const running = new Set(versions.map((version) => version.id))
    for (const id of this.seen.keys()) if (!running.has(id)) this.seen.delete(id)
    // Newest first, as the service lists them.
    const newestFirst = [...this.seen.values()].sort(
      (a, b) =>
        b.experiment.createdAt.getTime() - a.experiment.createdAt.getTime() ||
        (a.experiment.id < b.experiment.id ? 1 : a.experiment.id > b.experiment.id ? -1 : 0),
    )
    const value = new Map<string, Map<Channel, Prepared[]>>()
    for (const prepared of newestFirst) {
      // One that stopped between the two reads is in `seen` as it was read: only running ones count.
      if (prepared.experiment.status !== "running") continue
      const channels = value.get(prepared.experiment.subscriptionId) ?? new Map<Channel, Prepared[]>()
      for (const channel of prepared.experiment.channels) {
        const list = channels.get(channel)
        if (list) list.push(prepared)
        else channels.set(channel, [prepared])
      }
      value.set(prepared.experiment.subscriptionId, channels)
    }
    if (generation === this.generation && this.options.ttlMs > 0)
      this.running = { value, expires: this.options.now() + this.options.ttlMs }
    return value
  }

  private async personOf(
    subscriptionId: string,
    channel: Channel,
    userIdentifier: string,
  ): Promise<string | null> {
    const all = await this.allLinks(subscriptionId)
    if (all) return all.get(`${channel}\u0000${userIdentifier}`) ?? null
    const key = `${subscriptionId}\u0000${channel}\u0000${userIdentifier}`
    const cached = this.people.get(key)
    if (cached && cached.expires > this.options.now()) return cached.value
    const generation = this.generation
    const value = await findPersonOf(this.database.db, subscriptionId, channel, userIdentifier)
    if (generation === this.generation && this.options.ttlMs > 0) {
      this.people.delete(key)
      while (this.people.size >= this.maxPeople) {
        const oldest = this.people.keys().next().value
        if (oldest === undefined) break
        this.people.delete(oldest)
      }
      this.people.set(key, { value, expires: this.options.now() + this.options.ttlMs })
    }
    return value
  }
}
