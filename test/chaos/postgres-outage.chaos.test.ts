/**
 * PostgreSQL going away under load, with three omnimeter servers as real child processes on a private
 * cluster (never the machine's shared PostgreSQL): `pg_ctl restart -m fast`, a 10 s stop,
 * `pg_terminate_backend` on busy backends, a `kill -9` of one instance, and idempotent twins racing at the
 * quota boundary. What must hold: no instance exits; during an outage callers get 503 with Retry-After,
 * never 500; every instance answers 200 again within 2 s of PostgreSQL being up; afterwards the grants,
 * the ledger rows and the quota counter agree, with no turn charged twice. The ledger side is read with
 * SQL, independently of what the clients were told. Each scenario prints its figures ("[chaos] ...").
 */
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createSubscription, type TestSubscription } from "../support/fleet.js"
import { ADMIN_KEY } from "../support/http.js"
import { type PostgresCluster, startPostgresCluster } from "../support/postgres-cluster.js"
import { freePort, type ServerProcess, startServerProcess } from "../support/processes.js"

const DATABASE = "outage"
const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }

let cluster: PostgresCluster
let servers: ServerProcess[] = []

beforeAll(async () => {
  cluster = await startPostgresCluster()
  const url = await cluster.createDatabase(DATABASE)
  // One at a time: the first applies the migrations, the others find them applied.
  for (let n = 0; n < 3; n += 1) {
    servers.push(
      await startServerProcess({
        DATABASE_URL: url,
        PORT: String(await freePort()),
        OMNIMETER_ADMIN_KEY: ADMIN_KEY,
        OMNIMETER_POOL_SIZE: "6",
      }),
    )
  }
}, 180_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await cluster?.destroy()
})

/** One query on a fresh connection: a restart kills any connection kept open. */
async function query<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: cluster.url(DATABASE) })
  await client.connect()
  try {
    return (await client.query<R>(text, params)).rows
  } finally {
    await client.end()
  }
}

function server(instance: number): ServerProcess {
  const found = servers[instance % servers.length]
  if (!found) throw new Error(`no server ${instance}`)
  return found
}

function alive(instance: number): boolean {
  const child = server(instance).child
  return child.exitCode === null && child.signalCode === null
}

async function call(instance: number, method: string, path: string, body?: unknown, extra = {}) {
  const response = await fetch(`${server(instance).url}${path}`, {
    method,
    headers: { ...headers, ...extra },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Record<string, unknown>,
  }
}

/** A subscription whose `website` channel does not rate-limit this load: the quota is what is tested. */
function subscription(tokenLimit: number): Promise<TestSubscription> {
  return createSubscription(servers[0] as ServerProcess, tokenLimit, 1_000_000)
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
    },
    key ? { "idempotency-key": key } : {},
  )
}

interface Answer {
  instance: number
  /** 0: no HTTP answer at all (the instance is gone). */
  status: number
  retryAfter: string | null
  code?: string
  usageId?: string
  billed?: number
  replayed?: boolean
  sentAt: number
  answeredAt: number
}

/**
 * A bounded load: `workers` clients, each sending one turn at a time (round robin over the instances),
 * keyless unless `keyed`, pausing a little after anything but a 200 so that an outage is not a busy loop.
 * Keyed, a turn without a 200 is retried with its key on the next instance until it gets one.
 */
function startLoad(entityId: string, options: { workers?: number; keyed?: boolean } = {}) {
  const answers: Answer[] = []
  let running = true
  let next = 0
  const worker = async () => {
    while (running) {
      const turn = next++
      const key = options.keyed ? `turn-${turn}` : undefined
      // Keyless, a turn is sent once; keyed, it is sent again (even after stop) until it gets a 200.
      for (let attempt = 0; ; attempt += 1) {
        const instance = (turn + attempt) % 3
        const sentAt = performance.now()
        const answer = await consume(instance, entityId, 10 + (turn % 7), key).then(
          (a) => ({
            instance,
            status: a.status,
            retryAfter: a.retryAfter,
            sentAt,
            answeredAt: performance.now(),
            ...(typeof a.body.error === "object" && a.body.error
              ? { code: String((a.body.error as { code?: unknown }).code) }
              : {}),
            ...(a.status === 200
              ? {
                  usageId: String(a.body.usage_id),
                  billed: Number(a.body.billed_tokens),
                  replayed: a.body.replayed === true,
                }
              : {}),
          }),
          () => ({ instance, status: 0, retryAfter: null, sentAt, answeredAt: performance.now() }),
        )
        answers.push(answer)
        if (answer.status === 200) break
        await new Promise((resolve) => setTimeout(resolve, 25))
        if (!key) break
        if (attempt > 400) throw new Error(`turn ${turn} found no instance to answer it`)
      }
    }
  }
  const done = Promise.all(Array.from({ length: options.workers ?? 9 }, worker))
  return {
    answers,
    stop: async () => {
      running = false
      await done
      return answers
    },
  }
}

/** For each instance, ms from `upAt` to the first 200 it gave a turn sent after `upAt`. */
function recovery(answers: Answer[], upAt: number): number[] {
  return [0, 1, 2].map((instance) => {
    const first = answers
      .filter((a) => a.instance === instance && a.status === 200 && a.sentAt >= upAt)
      .reduce((min, a) => Math.min(min, a.answeredAt), Number.POSITIVE_INFINITY)
    return Math.round(first - upAt)
  })
}

/** Waits until every instance has answered a turn with 200 after `upAt` (at most `ms`). */
async function untilRecovered(answers: Answer[], upAt: number, ms = 6000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 50) {
    if (recovery(answers, upAt).every(Number.isFinite)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

function byStatus(answers: Answer[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1
  return counts
}

/** The ledger as SQL sees it: charged rows, their tokens, the counter, ids or keys charged twice. */
async function ledger(subscriptionId: string) {
  const [rows] = await query<{ charged: string; tokens: string; denied: string; ids: string }>(
    `select count(*) filter (where status <> 'denied') as charged,
       coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0) as tokens,
       count(*) filter (where status = 'denied') as denied, count(distinct id) as ids
     from token_usage_logs where subscription_id = $1`,
    [subscriptionId],
  )
  const [counter] = await query<{ used: string }>(
    "select coalesce(sum(used_tokens), 0) as used from quota_counters where subscription_id = $1",
    [subscriptionId],
  )
  const [twice] = await query<{ n: string }>(
    `select count(*) as n from (select idempotency_key from token_usage_logs
       where subscription_id = $1 and status <> 'denied' and idempotency_key is not null
       group by idempotency_key having count(*) > 1) k`,
    [subscriptionId],
  )
  const chargedRows = Number(rows?.charged ?? 0)
  return {
    chargedRows,
    chargedTokens: Number(rows?.tokens ?? 0),
    denied: Number(rows?.denied ?? 0),
    duplicateIds: chargedRows + Number(rows?.denied ?? 0) - Number(rows?.ids ?? 0),
    keysChargedTwice: Number(twice?.n ?? 0),
    counter: Number(counter?.used ?? 0),
  }
}

/** What every outage scenario must show once it is over. */
async function expectConsistent(subscriptionId: string, answers: Answer[]) {
  const granted = answers.filter((a) => a.status === 200)
  const grantedTokens = granted.reduce((sum, a) => sum + (a.billed ?? 0), 0)
  const ids = granted.map((a) => a.usageId)
  const book = await ledger(subscriptionId)
  expect(new Set(ids).size).toBe(ids.length)
  expect(book.chargedRows).toBe(granted.length)
  expect(book.chargedTokens).toBe(grantedTokens)
  expect(book.counter).toBe(grantedTokens)
  expect(book.duplicateIds).toBe(0)
  expect(book.denied).toBe(0)
  return { grants: granted.length, ...book }
}

/** Statuses allowed while the database is away: 200 (before or after), 503 with Retry-After. */
function expectOutageAnswers(answers: Answer[]) {
  expect(answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([])
  const unavailable = answers.filter((a) => a.status === 503)
  expect(unavailable.every((a) => a.code === "service_unavailable" && Number(a.retryAfter) >= 1)).toBe(true)
}

describe("PostgreSQL faults under load, three instances", () => {
  it("after pg_ctl restart -m fast every instance lives, answers 503 with Retry-After meanwhile, and 200 within 2 s", async () => {
    const { id, entityId } = await subscription(100_000_000)
    const load = startLoad(entityId)
    await new Promise((resolve) => setTimeout(resolve, 800))
    const downAt = performance.now()
    await cluster.restart("fast")
    const upAt = performance.now()
    await untilRecovered(load.answers, upAt)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const answers = await load.stop()
    const recovered = recovery(answers, upAt)
    expect([0, 1, 2].map(alive)).toEqual([true, true, true])
    expectOutageAnswers(answers)
    expect(Math.max(...recovered)).toBeLessThanOrEqual(2000)
    const book = await expectConsistent(id, answers)
    const during = answers.filter((a) => a.answeredAt >= downAt && a.sentAt <= upAt)
    console.info(
      `[chaos] pg_ctl restart -m fast: down ${Math.round(upAt - downAt)} ms; recovery per instance ${recovered.join("/")} ms; ` +
        `between the pg_ctl call and the server up ${JSON.stringify(byStatus(during))}; all ${JSON.stringify(byStatus(answers))}; ` +
        `grants ${book.grants} = ledger rows ${book.chargedRows}, counter ${book.counter} = tokens ${book.chargedTokens}, duplicates ${book.duplicateIds}`,
    )
  })

  it("through a 10 s stop every instance answers 503 with Retry-After, /readyz says so, and all answer 200 within 2 s of the start", async () => {
    const { id, entityId } = await subscription(100_000_000)
    const load = startLoad(entityId, { workers: 6 })
    await new Promise((resolve) => setTimeout(resolve, 500))
    const downAt = performance.now()
    await cluster.stop("fast")
    const stoppedAt = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const ready = await Promise.all([0, 1, 2].map((n) => call(n, "GET", "/readyz")))
    await new Promise((resolve) => setTimeout(resolve, 9000))
    await cluster.start()
    const upAt = performance.now()
    await untilRecovered(load.answers, upAt)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const answers = await load.stop()
    const recovered = recovery(answers, upAt)
    expect([0, 1, 2].map(alive)).toEqual([true, true, true])
    for (const r of ready) {
      expect(r.status).toBe(503)
      expect((r.body.database as { ok: boolean }).ok).toBe(false)
    }
    const readyAfter = await Promise.all([0, 1, 2].map((n) => call(n, "GET", "/readyz")))
    expect(readyAfter.map((r) => r.status)).toEqual([200, 200, 200])
    // The outage is counted in /metrics, and the database is shown available again.
    for (const n of [0, 1, 2]) {
      const metrics = await (await fetch(`${server(n).url}/metrics`)).text()
      expect(Number(/^omnimeter_database_outages_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1)
      expect(metrics).toMatch(/^omnimeter_database_available 1$/m)
    }
    expectOutageAnswers(answers)
    // Sent once the server was down (pg_ctl -w returned) and answered before it was up again.
    const during = answers.filter((a) => a.sentAt >= stoppedAt && a.answeredAt <= upAt)
    expect(during.length).toBeGreaterThan(0)
    expect(during.every((a) => a.status === 503)).toBe(true)
    expect(Math.max(...recovered)).toBeLessThanOrEqual(2000)
    const book = await expectConsistent(id, answers)
    console.info(
      `[chaos] 10 s stop: down ${Math.round(upAt - downAt)} ms; recovery per instance ${recovered.join("/")} ms; ` +
        `during outage ${JSON.stringify(byStatus(during))}; /readyz during ${ready.map((r) => r.status).join("/")}; ` +
        `grants ${book.grants} = ledger rows ${book.chargedRows}, counter ${book.counter}, duplicates ${book.duplicateIds}`,
    )
  }, 60_000)

  it("after pg_terminate_backend on busy backends every instance lives and answers 200 within 2 s", async () => {
    const { id, entityId } = await subscription(100_000_000)
    const load = startLoad(entityId)
    let terminated = 0
    await new Promise((resolve) => setTimeout(resolve, 500))
    const firstAt = performance.now()
    for (let round = 0; round < 3; round += 1) {
      terminated += await cluster.terminateBackends(DATABASE)
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    const upAt = performance.now()
    await untilRecovered(load.answers, upAt)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const answers = await load.stop()
    const recovered = recovery(answers, upAt)
    expect([0, 1, 2].map(alive)).toEqual([true, true, true])
    expect(terminated).toBeGreaterThan(0)
    expectOutageAnswers(answers)
    expect(Math.max(...recovered)).toBeLessThanOrEqual(2000)
    const book = await expectConsistent(id, answers)
    const during = answers.filter((a) => a.answeredAt >= firstAt && a.sentAt <= upAt)
    console.info(
      `[chaos] pg_terminate_backend x3: ${terminated} backends killed; recovery per instance ${recovered.join("/")} ms; ` +
        `during ${JSON.stringify(byStatus(during))}; grants ${book.grants} = ledger rows ${book.chargedRows}, ` +
        `counter ${book.counter}, duplicates ${book.duplicateIds}`,
    )
  })

  it("replays an idempotent twin at the quota boundary: 50 racers with one key over 3 instances, 16 rounds", async () => {
    const rounds: string[] = []
    let denials = 0
    let extraCharges = 0
    let denialRows = 0
    for (let round = 0; round < 16; round += 1) {
      const { id, entityId } = await subscription(1_000)
      // 950 of 1,000 used: exactly one 50-token turn still fits.
      expect((await consume(round, entityId, 950)).status).toBe(200)
      const key = `wamid.boundary-${round}`
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => consume(i + round, entityId, 50, key)),
      )
      const statuses = byStatus(answers.map((a) => ({ ...a, instance: 0, sentAt: 0, answeredAt: 0 })))
      rounds.push(JSON.stringify(statuses))
      denials += answers.filter((a) => a.status !== 200).length
      const book = await ledger(id)
      extraCharges += book.chargedRows - 2
      denialRows += book.denied
      expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200))
      expect(new Set(answers.map((a) => a.body.usage_id)).size).toBe(1)
      expect(answers.filter((a) => a.body.replayed === false)).toHaveLength(1)
      expect(book).toMatchObject({ chargedRows: 2, chargedTokens: 1_000, counter: 1_000, denied: 0 })
    }
    console.info(
      `[chaos] twin race: 16 rounds x 50 racers: denials ${denials}, extra charges ${extraCharges}, denial rows ${denialRows}`,
    )
  })

  it("after a kill -9 of an instance under load, grants match ledger rows and no turn is charged twice", async () => {
    const { id, entityId } = await subscription(100_000_000)
    const load = startLoad(entityId, { keyed: true })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    server(2).child.kill("SIGKILL")
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const answers = await load.stop()
    expect(alive(0) && alive(1)).toBe(true)
    expect(answers.filter((a) => a.status !== 200 && a.status !== 0)).toEqual([])
    // Every turn ended with a 200 (retried with its key on another instance when its answer was lost).
    const granted = answers.filter((a) => a.status === 200)
    const firstCharges = granted.filter((a) => !a.replayed)
    const turns = new Set(granted.map((a) => a.usageId))
    const book = await ledger(id)
    expect(book.chargedRows).toBe(turns.size)
    expect(book.keysChargedTwice).toBe(0)
    expect(book.duplicateIds).toBe(0)
    const tokens = new Map(granted.map((a) => [a.usageId, a.billed ?? 0]))
    const grantedTokens = [...tokens.values()].reduce((sum, n) => sum + n, 0)
    expect(book.chargedTokens).toBe(grantedTokens)
    expect(book.counter).toBe(grantedTokens)
    console.info(
      `[chaos] kill -9 of one instance: ${JSON.stringify(byStatus(answers))}; ${turns.size} turns granted ` +
        `(${firstCharges.length} first answers, ${granted.length - firstCharges.length} replays after a lost answer) = ledger rows ${book.chargedRows}; ` +
        `keys charged twice ${book.keysChargedTwice}, duplicates ${book.duplicateIds}`,
    )
  })
})
