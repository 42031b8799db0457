/**
 * The priority load test (issue 13): three service instances on one PostgreSQL database and one Redis. One
 * subscription has a shared capacity of C tokens per minute and two channels, priority 9 (whatsapp) and
 * priority 2 (api), each offering 100% of C at a steady pace, open loop, spread round robin over the three
 * instances, through HTTP. Two minutes of load (the first window warms up; the second is the steady state),
 * on a clock the test moves: every instance, its ledger and its Redis windows read one manual clock (the
 * limiter's injectable `now`, which replaces Redis server time), so the two minutes pass in seconds and the
 * windows the ledger is checked against are exactly the limiter's.
 *
 * Checked against the ledger (SQL), not against the answers: in every rolling window the admitted tokens
 * stay within C; in the steady-state minute priority 9 gets at least 90% of its demand (up to C), and
 * priority 2 only what is left. Figures are printed and kept in bench/RESULTS.md.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../src/config.js"
import { ManualClock } from "../src/core/clock.js"
import { createRedisClient, type RedisClient, RedisRateLimiter } from "../src/limits/redis.js"
import { type RunningServer, startServer } from "../src/server.js"
import { createScratchPostgres } from "./support/database.js"
import { call } from "./support/fleet.js"
import { ADMIN_KEY } from "./support/http.js"

const redisUrl = process.env.OMNIMETER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
/** The shared capacity, tokens per minute, and each turn's estimate: 120 turns a minute fill it. */
const CAPACITY = 60_000
const TURN = 500
/** Each channel offers CAPACITY per minute: one turn every 500 ms. */
const PACE_MS = (60_000 * TURN) / CAPACITY
const RUN_MS = 120_000
const WINDOW_MS = 60_000

/** Ends before the wall clock's now, so no ledger row is dated in the future. */
const clock = new ManualClock(Date.now() - RUN_MS - 60_000)
let scratch: { url: string; drop: () => Promise<void> }
let servers: RunningServer[] = []
const clients: RedisClient[] = []
let sql: pg.Client

beforeAll(async () => {
  scratch = await createScratchPostgres()
  const config = loadConfig({
    DATABASE_URL: scratch.url,
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    OMNIMETER_POOL_SIZE: "4",
    LOG_LEVEL: "silent",
    HOST: "127.0.0.1",
    PORT: "0",
  })
  const keyPrefix = `omnimeter-test:${randomBytes(6).toString("hex")}:`
  // One at a time: the first applies the migrations, the others find them applied. Each instance has its
  // own database pool and its own Redis connection, as separate processes would.
  for (let i = 0; i < 3; i += 1) {
    const redis = createRedisClient(redisUrl)
    clients.push(redis)
    const rateLimiter = new RedisRateLimiter({ redis, keyPrefix, clock, batch: config.redisBatch })
    servers.push(await startServer(config, { clock, rateLimiter }, { logger: false }))
  }
  sql = new pg.Client({ connectionString: scratch.url })
  await sql.connect()
}, 120_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await Promise.all(clients.map((redis) => redis.quit()))
  await sql?.end()
  await scratch?.drop()
})

function server(i: number): RunningServer {
  const s = servers[i % servers.length]
  if (!s) throw new Error("no server")
  return s
}

/** The most `value` summed over any window of `windowMs` ending at an event. */
function maxWindowSum(events: Array<{ at: number; value: number }>, windowMs: number): number {
  const sorted = [...events].sort((a, b) => a.at - b.at)
  let best = 0
  let sum = 0
  let start = 0
  for (const event of sorted) {
    sum += event.value
    while ((sorted[start]?.at ?? 0) <= event.at - windowMs) {
      sum -= sorted[start]?.value ?? 0
      start += 1
    }
    best = Math.max(best, sum)
  }
  return best
}

describe("priority under a shared capacity, three instances", () => {
  it("keeps priority 9 served and sheds priority 2, never passing the capacity in any window", async () => {
    const entityId = `load-${randomBytes(6).toString("hex")}`
    const created = await call(server(0), "POST", "/api/subscriptions", {
      entity_id: entityId,
      entity_type: "organization",
      plan: "enterprise",
      token_limit: 100_000_000,
      tokens_per_minute: CAPACITY,
    })
    expect(created.status, created.text).toBe(201)
    const id = String(created.json().id)
    for (const [channel, priority] of [
      ["whatsapp", 9],
      ["api", 2],
    ] as const) {
      const configured = await call(
        server(0),
        "PUT",
        `/api/onboarding/subscription/${id}/channels/${channel}/config`,
        {
          priority,
          token_multiplier: 1,
          requests_per_minute: 10_000,
          tokens_per_minute: 10_000_000,
        },
      )
      expect(configured.status, configured.text).toBe(200)
    }

    // Open loop: turn k of each channel is sent at k * PACE_MS (the clock set there), whatever the answers
    // before it; the clock moves on once both of that moment's turns are answered.
    const started = clock.now()
    const answers: Array<{ status: number; reason?: unknown }> = []
    for (let k = 0; k * PACE_MS < RUN_MS; k += 1) {
      clock.set(started + k * PACE_MS)
      const moment = await Promise.all(
        ["whatsapp", "api"].map((channel, n) =>
          call(server(k + n), "POST", "/api/tokens/consume", {
            entity_id: entityId,
            entity_type: "organization",
            channel,
            estimated_tokens: TURN,
          }).then((answer) => ({ status: answer.status, reason: answer.json().reason })),
        ),
      )
      answers.push(...moment)
    }
    expect(answers.every((a) => a.status === 200 || (a.status === 429 && a.reason === "capacity_shed"))).toBe(
      true,
    )

    // The independent recomputation: the ledger's rows and their times.
    const rows = await sql.query<{ channel: string; status: string; denial_reason: string | null; at: Date }>(
      `select channel, status, denial_reason, created_at as at from token_usage_logs
       where subscription_id = $1 order by created_at`,
      [id],
    )
    const first = rows.rows[0]?.at.getTime() ?? 0
    const admitted = rows.rows
      .filter((r) => r.status !== "denied")
      .map((r) => ({ channel: r.channel, at: r.at.getTime() - first, value: TURN }))
    // The limiter's windows and the ledger's times come from the one clock: the window is exact.
    const peak = maxWindowSum(admitted, WINDOW_MS)
    expect(peak).toBeLessThanOrEqual(CAPACITY)

    const steadyFrom = WINDOW_MS
    const steadyTo = steadyFrom + WINDOW_MS
    const inSteady = (at: number) => at >= steadyFrom && at < steadyTo
    const offered = (channel: string) =>
      rows.rows.filter((r) => r.channel === channel && inSteady(r.at.getTime() - first)).length * TURN
    const got = (channel: string) =>
      admitted.filter((r) => r.channel === channel && inSteady(r.at)).reduce((sum, r) => sum + r.value, 0)
    const total = (channel: string) => admitted.filter((r) => r.channel === channel).length * TURN
    const high = { offered: offered("whatsapp"), admitted: got("whatsapp") }
    const low = { offered: offered("api"), admitted: got("api") }
    const figures = {
      capacity: CAPACITY,
      runMs: RUN_MS,
      peakAdmittedInAnyWindow: peak,
      steadyMinute: { priority9: high, priority2: low },
      priority9Share: Math.round((high.admitted / Math.min(high.offered, CAPACITY)) * 1000) / 1000,
      wholeRun: { priority9: total("whatsapp"), priority2: total("api") },
      shed: rows.rows.filter((r) => r.denial_reason === "capacity_shed").length,
    }
    console.log(`priority load figures: ${JSON.stringify(figures)}`)

    expect(high.admitted).toBeGreaterThanOrEqual(0.9 * Math.min(high.offered, CAPACITY))
    expect(high.admitted + low.admitted).toBeLessThanOrEqual(CAPACITY)
    // Priority 2 gets the rest: what it was admitted fits beside priority 9's, and it was served while
    // the window had room (the first part of the first minute), not starved outright.
    expect(figures.wholeRun.priority2).toBeGreaterThan(0)
    expect(low.admitted).toBeLessThanOrEqual(CAPACITY - high.admitted)
  }, 120_000)
})
