/**
 * Redis faults under load: a slow Redis (DEBUG SLEEP, never down) under real CPU contention, and a Redis
 * that dies for 10 s and comes back empty. Three omnimeter server processes share one PostgreSQL database
 * (a scratch database on the shared server: the quota is checked exactly against its ledger) and a PRIVATE
 * redis-server that this file starts, slows, kills and restarts; the shared Redis is never touched.
 *
 * The bounds tested, for a limit of L = 100 requests per minute and N = 3 instances (fair share
 * s = floor(L / N) = 33):
 * - slow Redis: no 60 s window grants more than L, and no instance ever switches to its fallback;
 * - a window lying wholly inside the outage grants at most N x s = 99 <= L;
 * - a window holding the grants from before the outage and from during it: at most L + N x s = 199;
 * - with Redis back empty (its windows restart), a window spanning all three phases: at most
 *   2L + N x s = 299, of which at most L come from the first window of the empty Redis.
 * Every figure measured is printed.
 */
import { spawn } from "node:child_process"
import { Redis } from "ioredis"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createScratchPostgres } from "../support/database.js"
import {
  createSubscription,
  eventually,
  ledgerOf,
  maxInWindow,
  metric,
  metricSum,
  type Outcome,
  runLoad,
} from "../support/fleet.js"
import { ADMIN_KEY } from "../support/http.js"
import {
  freePort,
  type RunningProcess,
  type ServerProcess,
  startRedisServer,
  startServerProcess,
} from "../support/processes.js"

const LIMIT = 100
const INSTANCES = 3
const SHARE = Math.floor(LIMIT / INSTANCES)
const CLIENTS = 64

let redisPort: number
let redis: RunningProcess | undefined
let scratch: { url: string; drop: () => Promise<void> }
let servers: ServerProcess[] = []
let sql: pg.Client

beforeAll(async () => {
  redisPort = await freePort()
  redis = await startRedisServer(redisPort)
  scratch = await createScratchPostgres()
  const env = {
    DATABASE_URL: scratch.url,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    OMNIMETER_POOL_SIZE: "8",
  }
  // The first applies the migrations; the others then start together.
  const start = async () => startServerProcess({ ...env, PORT: String(await freePort()) })
  servers.push(await start())
  servers.push(...(await Promise.all(Array.from({ length: INSTANCES - 1 }, start))))
  sql = new pg.Client({ connectionString: scratch.url })
  await sql.connect()
  // Every instance has seen the others' heartbeats: N = 3.
  await eventually(async () =>
    (await Promise.all(servers.map((s) => metric(s, "omnimeter_rate_limiter_instances")))).every(
      (n) => n === INSTANCES,
    ),
  )
}, 120_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await redis?.stop()
  await sql?.end()
  await scratch?.drop()
})

const grantsOf = (outcomes: Outcome[], entityId: string) =>
  outcomes.filter((o) => o.status === 200 && o.entityId === entityId)

/** Checks that every answer is a decision (no 5xx, no dropped request) and the ledger holds exactly them. */
async function expectExactLedger(outcomes: Outcome[], subscription: { id: string; entityId: string }) {
  const mine = outcomes.filter((o) => o.entityId === subscription.entityId)
  expect(mine.filter((o) => o.status !== 200 && o.status !== 429)).toEqual([])
  const ledger = await ledgerOf(sql, subscription.id)
  expect(ledger.chargedRows).toBe(mine.filter((o) => o.status === 200).length)
  expect(ledger.denials.rate_limited ?? 0).toBe(mine.filter((o) => o.status === 429).length)
  expect(ledger.counter).toBe(ledger.chargedTokens)
  return ledger
}

/** A CPU-bound child process for the duration of a test: real contention on a small machine. */
function burnCpu(): { stop: () => void } {
  const child = spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" })
  return { stop: () => child.kill("SIGKILL") }
}

describe("Redis faults under load", () => {
  it("a slow Redis under CPU contention grants at most the limit in any window, and never falls back", async () => {
    const subscription = await createSubscription(servers[0] as ServerProcess, 100_000_000, LIMIT)
    const client = new Redis(`redis://127.0.0.1:${redisPort}`)
    const burner = burnCpu()
    const started = performance.now()
    let stopped = false
    const sleeps: number[] = []
    try {
      const load = runLoad({
        servers,
        clients: CLIENTS,
        stop: () => stopped,
        pick: () => subscription.entityId,
        started,
      })
      // Redis stops answering for 300 ms, six times, 2 s apart: slow, never down.
      for (let i = 0; i < 6; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 2_000))
        const before = performance.now()
        await client.call("DEBUG", "SLEEP", "0.3")
        sleeps.push(Math.round(performance.now() - before))
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      stopped = true
      const outcomes = await load
      const grants = grantsOf(outcomes, subscription.entityId)
      const worst = maxInWindow(grants.map((g) => g.at))
      const switches = await Promise.all(
        servers.map((s) => metricSum(s, "omnimeter_rate_limiter_switches_total")),
      )
      const shared = await Promise.all(servers.map((s) => metric(s, "omnimeter_rate_limiter_shared")))
      console.info(
        `[chaos] slow Redis: ${outcomes.length} turns in ${Math.round(performance.now() - started)} ms from ${CLIENTS} clients over ${INSTANCES} instances with one CPU burner; DEBUG SLEEP 0.3 x ${sleeps.length} (each took ${sleeps.join(", ")} ms); grants ${grants.length}, worst 60 s window ${worst} (limit ${LIMIT}); switches per instance ${switches.join(", ")}`,
      )
      expect(worst).toBeLessThanOrEqual(LIMIT)
      // The limit is reached (64 clients for 13 s ask for far more): the shared limit decided every turn.
      expect(grants.length).toBe(LIMIT)
      expect(switches).toEqual([0, 0, 0])
      expect(shared).toEqual([1, 1, 1])
      await expectExactLedger(outcomes, subscription)
    } finally {
      burner.stop()
      client.disconnect()
    }
  })

  it("Redis down for 10 s: fair shares hold, the switches are logged and counted, the quota stays exact, and an empty Redis restarts the windows", async () => {
    const first = servers[0] as ServerProcess
    // `main` is asked throughout; `inside` only while Redis is down, so its windows lie wholly in the outage.
    const main = await createSubscription(first, 100_000_000, LIMIT)
    const inside = await createSubscription(first, 100_000_000, LIMIT)
    const started = performance.now()
    const now = () => performance.now() - started
    let phase: "before" | "down" | "after" = "before"
    let stopped = false
    let flip = 0
    const load = runLoad({
      servers,
      clients: CLIENTS,
      stop: () => stopped,
      pick: () => {
        flip += 1
        return phase === "down" && flip % 2 === 0 ? inside.entityId : main.entityId
      },
      started,
    })
    // The mode of every instance, sampled every 100 ms: when each switched, and back.
    const modes: Array<{ at: number; shared: number[] }> = []
    const sampling = (async () => {
      while (!stopped) {
        modes.push({
          at: now(),
          shared: await Promise.all(servers.map((s) => metric(s, "omnimeter_rate_limiter_shared"))),
        })
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    })()

    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const killedAt = now()
    phase = "down"
    await redis?.stop(0)
    redis = undefined
    await new Promise((resolve) => setTimeout(resolve, 10_000))
    phase = "after"
    redis = await startRedisServer(redisPort)
    const backAt = now()
    await eventually(async () => (modes.at(-1)?.shared ?? []).every((m) => m === 1), 20_000, 50)
    const recoveredAt = now()
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    stopped = true
    const outcomes = await load
    await sampling

    const grants = grantsOf(outcomes, main.entityId)
    const before = grants.filter((g) => g.at < killedAt).length
    const during = grants.filter((g) => g.at >= killedAt && g.at < backAt).length
    // Between Redis's return and the last instance trusting it again, some instances still grant their
    // fallback shares; from then on every grant is Redis's, in the fresh windows of the empty Redis.
    const rejoining = grants.filter((g) => g.at >= backAt && g.at < recoveredAt).length
    const after = grants.filter((g) => g.at >= recoveredAt).length
    const insideGrants = grantsOf(outcomes, inside.entityId)
    const insideByServer = servers.map((_, i) => insideGrants.filter((g) => g.server === i).length)
    const worst = maxInWindow(grants.map((g) => g.at))
    const firstFallback = modes.find((m) => m.at >= killedAt && m.shared.every((s) => s === 0))
    const switchedOut = await Promise.all(
      servers.map((s) =>
        metricSum(s, "omnimeter_rate_limiter_switches_total", { from: "shared", to: "fallback" }),
      ),
    )
    const switchedBack = await Promise.all(
      servers.map((s) =>
        metric(s, "omnimeter_rate_limiter_switches_total", {
          from: "fallback",
          to: "shared",
          reason: "recovered",
        }),
      ),
    )
    console.info(
      `[chaos] Redis down 10 s: ${outcomes.length} turns; main grants before ${before}, during ${during}, while the instances rejoined ${rejoining}, after (first window of the empty Redis) ${after}; worst 60 s window ${worst} (bound 2L + N x s = ${2 * LIMIT + INSTANCES * SHARE}); a key used only during the outage: ${insideGrants.length} grants (${insideByServer.join(" + ")}; bound N x s = ${INSTANCES * SHARE}); all instances in fallback ${firstFallback ? Math.round(firstFallback.at - killedAt) : "?"} ms after the kill; all shared again ${Math.round(recoveredAt - backAt)} ms after Redis was back; switches out ${switchedOut.join(", ")}, back ${switchedBack.join(", ")}`,
    )

    // Fair share: a window wholly inside the outage stays within N x s <= L, each instance within s.
    expect(insideGrants.length).toBeLessThanOrEqual(INSTANCES * SHARE)
    for (const count of insideByServer) expect(count).toBeLessThanOrEqual(SHARE)
    // Spanning the switch: Redis's window before plus the fallback's: L + N x s.
    expect(before).toBeLessThanOrEqual(LIMIT)
    expect(before + during).toBeLessThanOrEqual(LIMIT + INSTANCES * SHARE)
    // Redis came back empty: its windows restart, so its first window grants up to L again, beside the
    // fallback shares of the instances that had not yet switched back: L + N x s.
    expect(after).toBeLessThanOrEqual(LIMIT)
    expect(rejoining + after).toBeLessThanOrEqual(LIMIT + INSTANCES * SHARE)
    expect(worst).toBeLessThanOrEqual(2 * LIMIT + INSTANCES * SHARE)
    // Loud: every instance switched out and back, counted and logged with the reason.
    expect(firstFallback).toBeDefined()
    for (const count of switchedOut) expect(count).toBeGreaterThanOrEqual(1)
    for (const count of switchedBack) expect(count).toBeGreaterThanOrEqual(1)
    for (const server of servers) {
      const lines = server
        .output()
        .split("\n")
        .filter((line) => line.includes('"event":"rate_limiter_switch"'))
        .map((line) => JSON.parse(line) as { from: string; to: string; reason: string; level: number })
      expect(lines.some((l) => l.from === "shared" && l.to === "fallback" && l.reason !== "recovered")).toBe(
        true,
      )
      expect(lines.some((l) => l.from === "fallback" && l.to === "shared" && l.reason === "recovered")).toBe(
        true,
      )
    }
    // The quota, decided in PostgreSQL, stayed exact: every grant is a ledger row, every denial too.
    await expectExactLedger(outcomes, main)
    await expectExactLedger(outcomes, inside)
  })
})
