/**
 * The demo as the browser suites see it: 60 days of synthetic traffic and the saved dashboards, seeded once
 * per run into an embedded database (test/support/demo.global.ts) that every suite's server loads a copy of,
 * and what a suite needs to trust that copy: the subscriptions the seed created and the moment it ran.
 */
import type { Container } from "../../src/container.js"
import type { Subscription } from "../../src/core/subscription.js"
import { seedDemoDashboards } from "../../src/demo/dashboards.js"
import { DEMO_SUBSCRIPTIONS, seedDemo } from "../../src/demo/seed.js"

/** Days of demo history, as `omnimeter demo` seeds. */
export const DEMO_DAYS = 60

/** The demo's traffic and saved dashboards, ending at `now`, through the container's services. */
export async function seedDashboardDemo(
  container: Pick<Container, "meter" | "database" | "dashboards">,
  now: Date,
): Promise<Subscription[]> {
  const demo = await seedDemo(container.meter, container.database, now, DEMO_DAYS)
  await seedDemoDashboards(container.dashboards, demo)
  return demo
}

/**
 * The demo seeded into a database no server runs on yet, left as a server finds its data after it has run:
 * the ledger's partition maintenance (which a server runs first thing) before the seed, and once more after
 * it, so the months the history reaches back to have partitions of their own and every suite's server
 * finds nothing to move from the default partition when it starts.
 */
export async function seedDemoSnapshot(
  container: Pick<Container, "meter" | "database" | "dashboards" | "ledgerMaintenance">,
  now: Date,
): Promise<Subscription[]> {
  await container.ledgerMaintenance.runOnce()
  const demo = await seedDashboardDemo(container, now)
  await container.ledgerMaintenance.runOnce()
  return demo
}

/** The seeded copy every browser suite starts from (the browser project's `inject("demoSnapshot")`). */
export interface DemoSnapshot {
  /** The data directory tarball. */
  path: string
  /** When the seed ran (ISO 8601): the demo's "now". */
  seededAt: string
  /** The subscriptions seedDemo answered, as JSON. */
  subscriptions: string
}

const DATE_FIELDS = new Set(["periodAnchor", "createdAt", "updatedAt"])

/** The subscriptions of a snapshot, their dates revived. */
export function snapshotSubscriptions(snapshot: DemoSnapshot): Subscription[] {
  return JSON.parse(snapshot.subscriptions, (key, value) =>
    DATE_FIELDS.has(key) && typeof value === "string" ? new Date(value) : value,
  ) as Subscription[]
}

/** The calendar day of `at` in `timeZone` (YYYY-MM-DD). */
function dayOf(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone }).format(at)
}

/**
 * Whether a demo seeded at `seededAt` tells the same story at `now` as one seeded at `now`: the same
 * calendar day in UTC (the browser's zone) and in every demo subscription's zone, so "today", "yesterday"
 * and the default periods the suites compute from the wall clock fall on the seed's days. A suite that
 * starts past such a midnight seeds its own demo instead.
 */
export function seedStillCurrent(seededAt: Date, now: Date): boolean {
  return ["UTC", ...DEMO_SUBSCRIPTIONS.map((d) => d.timezone)].every(
    (zone) => dayOf(seededAt, zone) === dayOf(now, zone),
  )
}
