/**
 * Experiment assignment's reads (issue 15): the running experiments are read once per cache TTL for the
 * whole deployment, however many subscriptions run one, so the consume path asks the database nothing per
 * turn; a start or stop through the instance applies to the next turn, through another within the TTL.
 */
import type { KyselyPlugin, QueryResult, RootOperationNode, UnknownRow } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { insertSubscription, openTestDatabase } from "../../test/support/database.js"
import { ManualClock } from "../core/clock.js"
import type { Database } from "../storage/database.js"
import { ExperimentAssigner } from "./assigner.js"
import { ExperimentService } from "./service.js"

let database: Database
const clock = new ManualClock(Date.parse("2026-03-01T00:00:00Z"))

beforeAll(async () => {
  database = await openTestDatabase()
})
afterAll(async () => database?.close())

/** Counts the statements that read a table, by name. */
class ReadCounter implements KyselyPlugin {
  readonly reads = new Map<string, number>()
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    for (const table of ["experiments", "person_identifiers"])
      if (JSON.stringify(args.node).includes(`"name":"${table}"`))
        this.reads.set(table, (this.reads.get(table) ?? 0) + 1)
    return args.node
  }
  async transformResult(args: { result: QueryResult<UnknownRow> }): Promise<QueryResult<UnknownRow>> {
    return args.result
  }
}

const subscription = (name: string) => insertSubscription(database, name)

describe("the experiment assigner", () => {
  it("reads the running experiments once a TTL for the whole deployment, not once per subscription", async () => {
    const counter = new ReadCounter()
    const assigner = new ExperimentAssigner(
      { ...database, db: database.db.withPlugin(counter) },
      { ttlMs: 1000, now: () => clock.now() },
    )
    // Another instance's service: its starts reach this assigner only through the database.
    const service = new ExperimentService({ database, clock, invalidate: () => {} })
    const subscriptions = await Promise.all(Array.from({ length: 20 }, (_, i) => subscription(`assign-${i}`)))
    const started = new Map<string, string>()
    for (const id of subscriptions) {
      const experiment = await service.create(id, {
        name: "shorter answers",
        channels: ["website"],
        variants: [
          { name: "control", weight: 1 },
          { name: "short", weight: 1, overrides: { tokenMultiplier: 0.5 }, label: "short" },
        ],
        primaryMetric: "tokens_per_turn",
        status: "running",
      })
      started.set(id, experiment.id)
    }
    // 20 subscriptions, 10 people each, over 0.9 s: every turn in its subscription's experiment.
    for (let step = 0; step < 9; step++) {
      for (const id of subscriptions)
        for (let person = 0; person < 10; person++) {
          const assigned = await assigner.assign(id, "website", `u-${person}`)
          expect(assigned?.experiments.map((e) => e.id)).toEqual([started.get(id)])
        }
      clock.advance(100)
    }
    await assigner.settled()
    // One read of the running experiments' versions, one of the rows it had not seen; then, past half the
    // TTL, one more read of the versions ahead of expiry, and none of the rows (nothing changed).
    expect(counter.reads.get("experiments")).toBe(3)
    // Each subscription's links once (kept 60 s).
    expect(counter.reads.get("person_identifiers")).toBe(20)
    // A turn on a channel outside the experiment, or without an identifier, is in none.
    expect(await assigner.assign(subscriptions[0] ?? "", "whatsapp", "u-1")).toBeUndefined()
    expect(await assigner.assign(subscriptions[0] ?? "", "website", undefined)).toBeUndefined()

    // Another instance stops one: this one sees it within the TTL, reading only the versions.
    const stopped = subscriptions[3] ?? ""
    await service.update(stopped, started.get(stopped) ?? "", { status: "stopped" })
    clock.advance(1000)
    await assigner.settled()
    const before = counter.reads.get("experiments") ?? 0
    expect(await assigner.assign(stopped, "website", "u-1")).toBeUndefined()
    expect((await assigner.assign(subscriptions[4] ?? "", "website", "u-1"))?.experiments).toHaveLength(1)
    expect((counter.reads.get("experiments") ?? 0) - before).toBe(1)
  })

  it("lets the turns that arrive together after a start share one read of the experiments and the links", async () => {
    const counter = new ReadCounter()
    const assigner = new ExperimentAssigner(
      { ...database, db: database.db.withPlugin(counter) },
      { ttlMs: 1000, now: () => clock.now() },
    )
    const service = new ExperimentService({ database, clock, invalidate: (id) => assigner.invalidate(id) })
    const id = await subscription("assign-burst")
    const started = await service.create(id, {
      name: "shorter answers",
      channels: ["website"],
      variants: [
        { name: "control", weight: 1 },
        { name: "short", weight: 1, overrides: { tokenMultiplier: 0.5 } },
      ],
      primaryMetric: "tokens_per_turn",
      status: "running",
    })
    // 64 turns in flight at once, as a busy instance has them right after the start.
    const burst = await Promise.all(
      Array.from({ length: 64 }, (_, person) => assigner.assign(id, "website", `u-${person}`)),
    )
    expect(burst.every((assigned) => assigned?.experiments[0]?.id === started.id)).toBe(true)
    // The running experiments' versions and their rows once, the subscription's links once.
    expect(counter.reads.get("experiments")).toBe(2)
    expect(counter.reads.get("person_identifiers")).toBe(1)
    // A stop through this instance: the next turn does not join a read begun before it, and sees none.
    await service.update(id, started.id, { status: "stopped" })
    expect(await assigner.assign(id, "website", "u-1")).toBeUndefined()
  })
})
