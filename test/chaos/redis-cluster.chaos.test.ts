/**
 * A real 3-master Redis Cluster as the rate limiter of two omnimeter server processes on one PostgreSQL
 * database. One instance finds the cluster from a comma-separated REDIS_URL listing every master, the
 * other from one node and OMNIMETER_REDIS_CLUSTER=true; both batch their decisions (the default), one
 * script call per hash slot. Checks that limits are exact, that the quota race and tenant isolation hold,
 * and that no instance ever fell back (the cluster really decided).
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { keySlot } from "../../src/limits/slot.js"
import { createScratchPostgres } from "../support/database.js"
import {
  consume,
  createSubscription,
  eventually,
  issueKey,
  ledgerOf,
  metric,
  metricSum,
} from "../support/fleet.js"
import { ADMIN_KEY } from "../support/http.js"
import { freePort, type ServerProcess, startServerProcess } from "../support/processes.js"
import { type RedisCluster, startRedisCluster } from "../support/redis-cluster.js"

const PREFIX = `omnimeter-chaos-${randomBytes(4).toString("hex")}:`

let cluster: RedisCluster
let scratch: { url: string; drop: () => Promise<void> }
let servers: ServerProcess[] = []
let sql: pg.Client

beforeAll(async () => {
  ;[cluster, scratch] = await Promise.all([startRedisCluster(3), createScratchPostgres()])
  const env = {
    DATABASE_URL: scratch.url,
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    OMNIMETER_POOL_SIZE: "8",
    OMNIMETER_REDIS_KEY_PREFIX: PREFIX,
  }
  servers.push(
    await startServerProcess({ ...env, REDIS_URL: cluster.urls.join(","), PORT: String(await freePort()) }),
  )
  servers.push(
    await startServerProcess({
      ...env,
      REDIS_URL: cluster.urls[1] ?? "",
      OMNIMETER_REDIS_CLUSTER: "true",
      PORT: String(await freePort()),
    }),
  )
  sql = new pg.Client({ connectionString: scratch.url })
  await sql.connect()
  // The heartbeat works on the cluster too: each instance counts both (N = 2 for a fair share).
  await eventually(async () =>
    (await Promise.all(servers.map((s) => metric(s, "omnimeter_rate_limiter_instances")))).every(
      (n) => n === 2,
    ),
  )
}, 120_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await cluster?.destroy()
  await sql?.end()
  await scratch?.drop()
})

const server = (i: number) => servers[i % servers.length] as ServerProcess

/** Every rate-limit key on each master: `[port, key][]`. */
async function keysByNode(): Promise<Array<[number, string]>> {
  const found: Array<[number, string]> = []
  for (const port of cluster.ports) {
    const out = await cluster.cli(port, "--scan", "--pattern", `${PREFIX}*`)
    for (const key of out.split("\n").filter((k) => k !== "")) found.push([port, key])
  }
  return found
}

describe("a 3-master Redis Cluster as the rate limiter", () => {
  it("grants each limit exactly, with batches split by slot across the masters", async () => {
    const limit = 30
    const subscriptions = await Promise.all(
      Array.from({ length: 8 }, () => createSubscription(server(0), 100_000_000, limit)),
    )
    // 60 turns per subscription, all at once, alternating between the two instances.
    const turns = subscriptions.flatMap((s) => Array.from({ length: 60 }, () => s))
    const started = performance.now()
    const answers = await Promise.all(turns.map((s, i) => consume(server(i), s.entityId)))
    const ms = Math.round(performance.now() - started)
    const grantsPer = subscriptions.map(
      (s) => answers.filter((a, i) => turns[i] === s && a.status === 200).length,
    )
    const keys = await keysByNode()
    const nodesUsed = new Set(keys.map(([port]) => port)).size
    console.info(
      `[chaos] Redis Cluster: ${answers.length} concurrent turns in ${ms} ms over 2 instances; grants per subscription ${grantsPer.join(", ")} (limit ${limit}); rate-limit keys on ${nodesUsed} of 3 masters`,
    )
    expect(grantsPer).toEqual(subscriptions.map(() => limit))
    expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true)
    // Each key sits where Redis puts its slot, and both keys of a limit share one slot (one hash tag).
    expect(nodesUsed).toBeGreaterThanOrEqual(2)
    for (const [port, key] of keys)
      expect(Number((await cluster.cli(port, "cluster", "keyslot", key)).trim())).toBe(keySlot(key))
    for (const s of subscriptions) {
      const ledger = await ledgerOf(sql, s.id)
      expect(ledger.chargedRows).toBe(limit)
      expect(ledger.denials.rate_limited).toBe(60 - limit)
    }
    // The cluster decided every turn: no instance ever switched to its fallback.
    for (const s of servers) {
      expect(await metricSum(s, "omnimeter_rate_limiter_switches_total")).toBe(0)
      expect(await metric(s, "omnimeter_rate_limiter_shared")).toBe(1)
    }
  })

  it("keeps the quota exact when 200 concurrent turns ask for twice the quota", async () => {
    const quota = 20_000
    const subscription = await createSubscription(server(0), quota, 1_000_000)
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => consume(server(i), subscription.entityId, (2 * quota) / 200)),
    )
    const granted = answers.filter((a) => a.status === 200)
    const billed = granted.reduce((sum, a) => sum + Number(a.json().billed_tokens), 0)
    const ledger = await ledgerOf(sql, subscription.id)
    console.info(
      `[chaos] Redis Cluster quota race: ${granted.length} of 200 granted, ${billed} of ${quota} tokens billed; ledger rows ${ledger.chargedRows}, ledger tokens ${ledger.chargedTokens}, counter ${ledger.counter}`,
    )
    expect(answers.every((a) => a.status === 200 || a.status === 402)).toBe(true)
    expect(billed).toBeLessThanOrEqual(quota)
    expect(granted.length).toBeGreaterThan(0)
    expect(answers.some((a) => a.status === 402)).toBe(true)
    expect(ledger.chargedRows).toBe(granted.length)
    expect(ledger.chargedTokens).toBe(billed)
    expect(ledger.counter).toBe(billed)
    expect(ledger.denials.quota_exceeded).toBe(200 - granted.length)
  })

  it("keeps tenants apart: another tenant's key is refused, and one tenant's limit never spends another's", async () => {
    const [mine, theirs] = await Promise.all([
      createSubscription(server(0), 100_000_000, 5),
      createSubscription(server(0), 100_000_000, 5),
    ])
    const [myKey, theirKey] = await Promise.all([issueKey(server(0), mine), issueKey(server(1), theirs)])
    // My key cannot charge their subscription, on either instance.
    for (const i of [0, 1]) {
      const answer = await consume(server(i), theirs.entityId, 10, myKey)
      expect(answer.status).toBe(404)
    }
    // I spend my whole limit; theirs is untouched.
    const mineAnswers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => consume(server(i), mine.entityId, 10, myKey)),
    )
    const theirAnswers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => consume(server(i), theirs.entityId, 10, theirKey)),
    )
    expect(mineAnswers.filter((a) => a.status === 200)).toHaveLength(5)
    expect(theirAnswers.filter((a) => a.status === 200)).toHaveLength(5)
    const theirLedger = await ledgerOf(sql, theirs.id)
    expect(theirLedger.chargedRows).toBe(5)
    expect(theirLedger.denials).toEqual({ rate_limited: 7 })
  })
})
