/**
 * Three omnimeter server processes on one PostgreSQL database and one Redis, driven in parallel through
 * HTTP. Checks the three promises that must hold across instances: the quota is never exceeded (and what
 * was granted is exactly what the ledger holds), a rate limit of R per minute grants at most R in total,
 * and an idempotency key charges once whichever instance each call reaches.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createScratchPostgres } from "./support/database.js"
import {
  createSubscription,
  ledgerOf as ledgerOfSubscription,
  type TestSubscription,
} from "./support/fleet.js"
import { ADMIN_KEY } from "./support/http.js"
import { type ServerProcess, startServerProcess } from "./support/processes.js"

const PORTS = [18510, 18511, 18512]
const redisUrl = process.env.OMNIMETER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }

let scratch: { url: string; drop: () => Promise<void> }
let servers: ServerProcess[] = []
let sql: pg.Client

beforeAll(async () => {
  scratch = await createScratchPostgres()
  const env = {
    DATABASE_URL: scratch.url,
    REDIS_URL: redisUrl,
    // A key prefix of this run only: the shared Redis is never flushed, and other suites never collide.
    OMNIMETER_REDIS_KEY_PREFIX: `omnimeter-test:${randomBytes(6).toString("hex")}:`,
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    OMNIMETER_POOL_SIZE: "8",
  }
  // One at a time: the first applies the migrations, the others find them applied.
  for (const port of PORTS) servers.push(await startServerProcess({ ...env, PORT: String(port) }))
  sql = new pg.Client({ connectionString: scratch.url })
  await sql.connect()
}, 180_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await sql?.end()
  await scratch?.drop()
})

async function call(instance: number, method: string, path: string, body?: unknown, extra = {}) {
  const server = servers[instance % servers.length]
  if (!server) throw new Error("no server")
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { ...headers, ...extra },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** A subscription whose `website` channel allows `requestsPerMinute`, made through the first instance. */
function subscription(tokenLimit: number, requestsPerMinute: number): Promise<TestSubscription> {
  return createSubscription(servers[0] as ServerProcess, tokenLimit, requestsPerMinute)
}

/** Runs `count` calls, `concurrency` at a time, the i-th on instance i mod 3. */
async function drive<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next
        next += 1
        results[i] = await fn(i)
      }
    }),
  )
  return results
}

function consume(instance: number, entityId: string, estimatedTokens: number, key?: string) {
  return call(
    instance,
    "POST",
    "/api/tokens/consume",
    {
      entity_id: entityId,
      entity_type: "organization",
      estimated_tokens: estimatedTokens,
      channel: "website",
      user_identifier: `u-${instance}`,
    },
    key ? { "idempotency-key": key } : {},
  )
}

/** The ledger as SQL sees it (test/support/fleet.ts), on this suite's database. */
function ledgerOf(subscriptionId: string) {
  return ledgerOfSubscription(sql, subscriptionId)
}

describe("three instances on one PostgreSQL and one Redis", () => {
  it("never exceed the quota, and grant exactly what the ledger holds", async () => {
    const { id, entityId } = await subscription(20_000, 1_000_000)
    const sizes = (i: number) => 37 + ((i * 13) % 29)
    const answers = await drive(900, 45, (i) => consume(i, entityId, sizes(i)))
    expect(answers.every((a) => a.status === 200 || a.status === 402)).toBe(true)
    const granted = answers.reduce((sum, a) => sum + (a.status === 200 ? Number(a.body.billed_tokens) : 0), 0)
    // 900 turns of about 51 tokens ask for about 46,000: the quota runs out, up to the last small turn.
    expect(answers.filter((a) => a.status === 402).length).toBeGreaterThan(400)
    expect(granted).toBeLessThanOrEqual(20_000)
    expect(granted).toBeGreaterThan(20_000 - 65)
    const ledger = await ledgerOf(id)
    expect(ledger.chargedTokens).toBe(granted)
    expect(ledger.counter).toBe(granted)
    expect(ledger.chargedRows).toBe(answers.filter((a) => a.status === 200).length)
    expect(ledger.denials.quota_exceeded).toBe(answers.filter((a) => a.status === 402).length)
  })

  it("grant a rate limit of R per minute at most R times in total", async () => {
    const { id, entityId } = await subscription(100_000_000, 60)
    const answers = await drive(240, 30, (i) => consume(i, entityId, 10))
    const allowed = answers.filter((a) => a.status === 200).length
    const limited = answers.filter((a) => a.status === 429).length
    expect(allowed).toBe(60)
    expect(limited).toBe(180)
    // Every instance saw grants and denials: the limit is shared, not per instance.
    for (const instance of [0, 1, 2]) {
      const mine = answers.filter((_, i) => i % 3 === instance)
      expect(mine.some((a) => a.status === 429)).toBe(true)
    }
    const ledger = await ledgerOf(id)
    expect(ledger.chargedRows).toBe(60)
    expect(ledger.denials.rate_limited).toBe(180)
  })

  it("charge an idempotency key once whichever instances its calls reach", async () => {
    const { id, entityId } = await subscription(100_000_000, 1_000_000)
    const keys = Array.from({ length: 20 }, (_, k) => `wamid.${k}`)
    // Every key is sent six times, twice to each instance, all at once.
    const answers = await drive(120, 60, (i) =>
      consume(i, entityId, 100, keys[i % 20]).then((a) => ({ ...a, i })),
    )
    expect(answers.every((a) => a.status === 200)).toBe(true)
    for (const key of keys.keys()) {
      const mine = answers.filter((a) => a.i % 20 === key)
      expect(new Set(mine.map((a) => a.body.usage_id)).size).toBe(1)
      expect(mine.filter((a) => a.body.replayed === false)).toHaveLength(1)
    }
    const ledger = await ledgerOf(id)
    expect(ledger.chargedRows).toBe(20)
    expect(ledger.chargedTokens).toBe(2_000)
    expect(ledger.counter).toBe(2_000)
  })
})
