/**
 * The demo answers once each subscription's current billing period is written and writes the older history
 * in the background: a live turn made with a printed key meanwhile is decided on the whole current period,
 * and lands in the ledger, the quota and the analytics as it would on a database with the history complete.
 * Checked against the ledger rows (summed here, not through the service's counters or rollups). The
 * current periods' session tables are derived after the keys, from the queue: by the end they hold every
 * session, as grouped here from the ledger.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { billedTokens } from "../src/core/billing.js"
import { CHANNEL_DEFINITIONS } from "../src/core/channels.js"
import { billingPeriodAt } from "../src/core/period.js"
import type { Subscription } from "../src/core/subscription.js"
import type { DemoHistoryStatus } from "../src/demo/history.js"
import { startDemoSeed } from "../src/demo/seed.js"
import { startTestApp, type TestApp } from "./support/http.js"

// 20 days: globex-support's whole history is its current period; acme-retail and initech have older days.
const DAYS = 20
const now = new Date()
let t: TestApp
let subscriptions: Subscription[]
let keys: Map<string, string>
const whileLoading: {
  atKeys?: DemoHistoryStatus
  api?: Record<string, unknown>
  acme?: { status: number; body: Record<string, unknown> }
  acmeUsed?: number
  globex?: { status: number; body: Record<string, unknown> }
  globexUsed?: number
  afterTurns?: DemoHistoryStatus
  queued?: number
  allowed?: number
} = {}

const bySubscription = (entityId: string) => {
  const found = subscriptions.find((s) => s.entityId === entityId)
  if (!found) throw new Error(`no demo subscription ${entityId}`)
  return found
}

/** Billed tokens of the allowed ledger rows charged to the subscription's current billing period. */
async function usedInCurrentPeriod(subscription: Subscription): Promise<number> {
  const period = billingPeriodAt(subscription.periodAnchor, new Date())
  const row = await t.container.database.db
    .selectFrom("token_usage_logs")
    .select(sql<string>`coalesce(sum(billed_tokens), 0)`.as("used"))
    .where("subscription_id", "=", subscription.id)
    .where("status", "<>", "denied")
    .where("period_start", "=", period.start)
    .executeTakeFirstOrThrow()
  return Number(row.used)
}

const consume = async (entityId: string, estimated: number) => {
  const res = await t.request({
    method: "POST",
    url: "/api/tokens/consume",
    key: keys.get(entityId) ?? null,
    payload: {
      entity_id: entityId,
      entity_type: "organization",
      estimated_tokens: estimated,
      channel: "website",
      user_identifier: "live-visitor",
      session_id: "live-session",
    },
  })
  return { status: res.statusCode, body: res.json() as Record<string, unknown> }
}

beforeAll(async () => {
  t = await startTestApp()
  const seed = await startDemoSeed(
    t.container.meter,
    t.container.database,
    now,
    DAYS,
    t.container.demoHistory,
  )
  subscriptions = seed.subscriptions
  // Whatever happens below, the background writing is awaited before the database closes.
  const history = seed.history.catch((error: unknown) => error)
  whileLoading.atKeys = t.container.demoHistory.status()
  const counts = await sql<{ queued: string; allowed: string }>`
    select (select count(*) from session_queue) as queued,
      (select count(*) from token_usage_logs where status <> 'denied') as allowed`.execute(
    t.container.database.db,
  )
  whileLoading.queued = Number(counts.rows[0]?.queued)
  whileLoading.allowed = Number(counts.rows[0]?.allowed)
  keys = new Map()
  for (const s of subscriptions)
    keys.set(s.entityId, (await t.container.keys.issueSubscriptionKey(s.id, "demo")).key)
  whileLoading.api = (await t.request({ url: "/api/demo/history", key: keys.get("initech") ?? null })).json()
  whileLoading.acme = await consume("acme-retail", 300)
  whileLoading.acmeUsed = await usedInCurrentPeriod(bySubscription("acme-retail"))
  whileLoading.globex = await consume("globex-support", 300)
  whileLoading.globexUsed = await usedInCurrentPeriod(bySubscription("globex-support"))
  whileLoading.afterTurns = t.container.demoHistory.status()
  const failure = await history
  if (failure) throw failure
}, 300_000)
afterAll(async () => t.close())

describe("the demo history loading in the background", () => {
  it("says it is loading once the keys can be used, with every current billing period written", () => {
    const status = whileLoading.atKeys
    expect(status?.state).toBe("loading")
    expect(status?.loadedTurns).toBeGreaterThan(0)
    expect(status?.loadedTurns).toBeLessThan(status?.totalTurns ?? 0)
    // The latest of the three current periods' starts: initech's, 5 days before now.
    const initech = bySubscription("initech")
    expect(status?.completeSince?.getTime()).toBe(billingPeriodAt(initech.periodAnchor, now).start.getTime())
    expect(whileLoading.api).toMatchObject({
      state: "loading",
      total_turns: status?.totalTurns,
      complete_since: status?.completeSince?.toISOString(),
      finished_at: null,
      error: null,
    })
  })

  it("decides a live turn made while it loads on the whole current billing period's quota", () => {
    // Both turns were decided before the older history was written.
    expect(whileLoading.afterTurns?.state).toBe("loading")
    const acme = bySubscription("acme-retail")
    expect(whileLoading.acme?.status, JSON.stringify(whileLoading.acme?.body)).toBe(200)
    expect(whileLoading.acme?.body.remaining_tokens).toBe(acme.tokenLimit - (whileLoading.acmeUsed ?? 0))
    // globex-support spent its quota three days ago: the turn is refused, on the current period's ledger.
    const globex = bySubscription("globex-support")
    const billed = billedTokens(300, CHANNEL_DEFINITIONS.website.defaults.multiplierHundredths)
    expect((whileLoading.globexUsed ?? 0) + billed).toBeGreaterThan(globex.tokenLimit)
    expect(whileLoading.globex?.status).toBe(402)
    expect(whileLoading.globex?.body.reason).toBe("quota_exceeded")
  })

  it("says loaded when every turn is written, complete from the history's first day", async () => {
    const status = t.container.demoHistory.status()
    expect(status.state).toBe("loaded")
    expect(status.error).toBeNull()
    expect(status.loadedTurns).toBe(status.totalTurns)
    expect(status.completeSince?.getTime()).toBe(status.startsAt?.getTime())
    const rows = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("user_identifier", "is distinct from", "live-visitor")
      .executeTakeFirstOrThrow()
    expect(Number(rows.n)).toBe(status.totalTurns)
    const api = (await t.request({ url: "/api/demo/history" })).json()
    expect(api).toMatchObject({ state: "loaded", loaded_turns: status.totalTurns, error: null })
  })

  it("leaves the current periods' sessions queued at the keys, and derives every one by the end", async () => {
    // The keys come before the session tables: the allowed turns written by then wait in the queue (the
    // background's first statement may already have taken some of them by the time this counts).
    expect(whileLoading.queued).toBeGreaterThan(0)
    expect(whileLoading.queued).toBeLessThanOrEqual(whileLoading.allowed ?? 0)
    const db = t.container.database.db
    const queue = await db
      .selectFrom("session_queue")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow()
    expect(Number(queue.n)).toBe(0)
    // ledger_sessions against the ledger, grouped here: each (subscription, session, channel) of allowed
    // turns, with the 15-minute UTC buckets of its first and last turn.
    const turns = await db
      .selectFrom("token_usage_logs")
      .select(["subscription_id", "session_id", "channel", "created_at"])
      .where("status", "<>", "denied")
      .where("session_id", "is not", null)
      .execute()
    const QUARTER = 15 * 60_000
    const expected = new Map<string, [number, number]>()
    for (const turn of turns) {
      const key = `${turn.subscription_id}|${turn.session_id}|${turn.channel}`
      const bucket = Math.floor(new Date(turn.created_at).getTime() / QUARTER) * QUARTER
      const seen = expected.get(key)
      expected.set(key, seen ? [Math.min(seen[0], bucket), Math.max(seen[1], bucket)] : [bucket, bucket])
    }
    const sessions = await db.selectFrom("ledger_sessions").selectAll().execute()
    const actual = new Map(
      sessions.map((r) => [
        `${r.subscription_id}|${r.session_id}|${r.channel}`,
        [new Date(r.first_bucket).getTime(), new Date(r.last_bucket).getTime()],
      ]),
    )
    expect(actual.size).toBe(expected.size)
    expect(actual).toEqual(expected)
  })

  it("tells the history's state to a key only: 401 in the error envelope without one or with a wrong one", async () => {
    for (const key of [null, "om_sk_not_a_key"]) {
      const res = await t.request({ url: "/api/demo/history", key })
      expect(res.statusCode).toBe(401)
      expect(res.json().error).toMatchObject({ code: expect.any(String), message: expect.any(String) })
      expect(res.body).not.toContain("loaded_turns")
    }
  })

  it("keeps the live turn in the ledger, the quota and the analytics once the history is written", async () => {
    const acme = bySubscription("acme-retail")
    const live = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select(["subscription_id", "status", "billed_tokens"])
      .where("user_identifier", "=", "live-visitor")
      .orderBy("subscription_id")
      .execute()
    expect(live).toHaveLength(2)
    expect(live.find((r) => r.subscription_id === acme.id)?.status).not.toBe("denied")
    // The background wrote nothing into the current period: the live turn was decided on all of it.
    expect(await usedInCurrentPeriod(acme)).toBe(whileLoading.acmeUsed)
    // The counter holds the current period's ledger: one more turn leaves exactly the rest.
    const again = await consume("acme-retail", 200)
    expect(again.status).toBe(200)
    expect(again.body.remaining_tokens).toBe(acme.tokenLimit - (await usedInCurrentPeriod(acme)))
    // The rollups behind the analytics hold every allowed turn, the history's and the live ones.
    const from = new Date(now.getTime() - (DAYS + 1) * 86_400_000).toISOString().slice(0, 10)
    const today = new Date().toISOString().slice(0, 10)
    const answer = (
      await t.request({
        url: `/api/onboarding/analytics/${acme.id}?from=${from}&to=${today}&tz=UTC`,
      })
    ).json()
    const ledger = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select([sql<string>`coalesce(sum(billed_tokens), 0)`.as("tokens"), sql<string>`count(*)`.as("turns")])
      .where("subscription_id", "=", acme.id)
      .where("status", "<>", "denied")
      .executeTakeFirstOrThrow()
    expect(answer.totals.tokens_used).toBe(Number(ledger.tokens))
    expect(answer.totals.message_count).toBe(Number(ledger.turns))
  })
})
