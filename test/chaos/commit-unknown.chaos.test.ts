/**
 * Both sides of a commit whose answer is unknown, on a private PostgreSQL cluster, with the meter as a
 * library (createMeter) so that the test controls the connection:
 * (a) PostgreSQL committed the batch, but the connection dies before its reply reaches omnimeter: a TCP
 *     proxy written here forwards the batch statement and closes omnimeter's side instead of relaying the
 *     reply (which PostgreSQL sends only after the commit);
 * (b) the backend is terminated before the commit: a deferred constraint trigger makes the commit wait
 *     (pg_sleep) while the test runs pg_terminate_backend on it.
 * Either way every caller must be answered truthfully: allowed exactly when its row exists, and no turn
 * charged twice. The ledger is read with SQL, independently of what the callers were told.
 */
import net from "node:net"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DatabaseUnavailableError } from "../../src/core/errors.js"
import type { Decision } from "../../src/meter/decisions.js"
import { createMeter, type Meter } from "../../src/meter/meter.js"
import { type PostgresCluster, startPostgresCluster } from "../support/postgres-cluster.js"

/** ReadyForQuery ('Z', length 5, status): PostgreSQL's last message of a statement, sent after its commit. */
function endsWithReadyForQuery(data: Buffer): boolean {
  const n = data.length
  return n >= 6 && data[n - 6] === 0x5a && data.readInt32BE(n - 5) === 5
}

/**
 * A loopback TCP proxy to PostgreSQL. Armed, it lets the next statement that contains `marker` through,
 * swallows its whole reply, and closes both sides of that connection: the statement ran and committed,
 * and its client never hears so.
 */
class ReplyCuttingProxy {
  private readonly server: net.Server
  private armed: { marker: string; cut: () => void } | undefined
  private readonly sockets = new Set<net.Socket>()
  cuts = 0

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.relay(client))
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve))
    const address = this.server.address()
    return typeof address === "object" && address ? address.port : 0
  }

  /** Resolves once a reply to a statement containing `marker` has been cut. */
  arm(marker: string): Promise<void> {
    return new Promise((resolve) => {
      this.armed = { marker, cut: resolve }
    })
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, "127.0.0.1")
    this.sockets.add(client).add(upstream)
    let cutting: (() => void) | undefined
    let reply = Buffer.alloc(0)
    client.on("data", (data: Buffer) => {
      if (this.armed && data.includes(this.armed.marker)) {
        cutting = this.armed.cut
        this.armed = undefined
      }
      upstream.write(data)
    })
    upstream.on("data", (data: Buffer) => {
      if (!cutting) return void client.write(data)
      reply = Buffer.concat([reply, data])
      if (endsWithReadyForQuery(reply)) {
        // Committed: PostgreSQL sends ReadyForQuery after the statement's implicit commit.
        client.destroy()
        upstream.destroy()
        this.cuts += 1
        cutting()
      }
    })
    const close = () => {
      client.destroy()
      upstream.destroy()
      this.sockets.delete(client)
      this.sockets.delete(upstream)
    }
    client.on("error", close).on("close", close)
    upstream.on("error", close).on("close", close)
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

let cluster: PostgresCluster
let proxy: ReplyCuttingProxy
let meter: Meter
let sql: pg.Client

beforeAll(async () => {
  cluster = await startPostgresCluster()
  const direct = await cluster.createDatabase("commit_unknown")
  proxy = new ReplyCuttingProxy(cluster.port)
  const proxyPort = await proxy.listen()
  meter = await createMeter({
    databaseUrl: direct.replace(`:${cluster.port}/`, `:${proxyPort}/`),
    poolSize: 6,
  })
  sql = new pg.Client({ connectionString: direct })
  await sql.connect()
}, 120_000)

afterAll(async () => {
  await meter?.close()
  await sql?.end()
  await proxy?.close()
  await cluster?.destroy()
})

async function subscription(name: string, tokenLimit: number): Promise<{ id: string; entityId: string }> {
  const created = await meter.createSubscription({
    entityId: name,
    entityType: "organization",
    plan: "enterprise",
    tokenLimit,
  })
  await meter.updateChannelConfig(created.id, "website", {
    requestsPerMinute: 1_000_000,
    tokensPerMinute: 100_000_000,
  })
  return { id: created.id, entityId: name }
}

/** `count` turns at once, every third with an idempotency key of its own, the rest without. */
function turns(entityId: string, count: number): Promise<Decision[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      meter.validateAndConsumeTokens({
        entityId,
        entityType: "organization",
        estimatedTokens: 10 + i,
        operationType: "chat",
        channel: "website",
        userIdentifier: `user-${i}`,
        ...(i % 3 === 0 ? { idempotencyKey: `${entityId}-key-${i}` } : {}),
      }),
    ),
  )
}

/** The ledger as SQL sees it, with nothing taken from the callers. */
async function ledger(subscriptionId: string) {
  const rows = await sql.query<{ id: string; status: string; billed_tokens: string }>(
    "select id, status, billed_tokens from token_usage_logs where subscription_id = $1",
    [subscriptionId],
  )
  const counter = await sql.query<{ used: string }>(
    "select coalesce(sum(used_tokens), 0) as used from quota_counters where subscription_id = $1",
    [subscriptionId],
  )
  const charged = rows.rows.filter((r) => r.status !== "denied")
  return {
    chargedIds: charged.map((r) => r.id),
    chargedTokens: charged.reduce((sum, r) => sum + Number(r.billed_tokens), 0),
    denials: rows.rows.length - charged.length,
    counter: Number(counter.rows[0]?.used ?? 0),
  }
}

function expectTruthful(answers: Decision[], book: Awaited<ReturnType<typeof ledger>>): void {
  const allowed = answers.flatMap((a) => (a.allowed ? [a] : []))
  expect(allowed).toHaveLength(answers.length)
  const ids = allowed.map((a) => a.usageId)
  // Every answer "allowed" has its row, and every row was answered: the same set, nothing twice.
  expect(new Set(ids).size).toBe(ids.length)
  expect([...book.chargedIds].sort()).toEqual([...ids].sort())
  const granted = allowed.reduce((sum, a) => sum + a.billedTokens, 0)
  expect(book.chargedTokens).toBe(granted)
  expect(book.counter).toBe(granted)
  expect(book.denials).toBe(0)
}

describe("a batch whose commit outcome is unknown", () => {
  it("committed, reply lost: every caller gets its committed decision, and nothing is charged again", async () => {
    const { id, entityId } = await subscription("cut-after-commit", 1_000_000)
    const cut = proxy.arm("omnimeter_consume_batch")
    const started = performance.now()
    const answers = await turns(entityId, 24)
    const answeredMs = performance.now() - started
    await cut
    expect(proxy.cuts).toBe(1)
    const book = await ledger(id)
    expectTruthful(answers, book)
    console.info(
      `[chaos] commit-unknown (a) reply cut after COMMIT: ${answers.length} turns, ${book.chargedIds.length} ledger rows, ` +
        `${answers.length - new Set(answers.map((a) => (a.allowed ? a.usageId : ""))).size} duplicates, all answered in ${answeredMs.toFixed(0)} ms`,
    )
  })

  it("terminated before the commit: nothing was written, so the turns run again and are charged once", async () => {
    const { id, entityId } = await subscription("killed-before-commit", 1_000_000)
    // A deferred constraint trigger runs at COMMIT: armed, it holds the commit until the test kills it.
    await sql.query(`
      create table chaos_switch (armed boolean not null);
      insert into chaos_switch values (true);
      create function chaos_hold_commit() returns trigger language plpgsql security definer as $$
      begin
        if (select armed from chaos_switch) then perform pg_sleep(30); end if;
        return null;
      end $$;
      create constraint trigger chaos_hold_commit after insert or update on quota_counters
        deferrable initially deferred for each row execute function chaos_hold_commit();
    `)
    try {
      const pending = turns(entityId, 24)
      const held: number[] = []
      for (let waited = 0; held.length === 0 && waited < 10_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        const rows = await sql.query<{ pid: number }>(
          "select pid from pg_stat_activity where wait_event = 'PgSleep' and query like '%omnimeter_consume_batch%'",
        )
        held.push(...rows.rows.map((r) => r.pid))
      }
      expect(held.length).toBeGreaterThan(0)
      await sql.query("update chaos_switch set armed = false")
      for (const pid of held) await sql.query("select pg_terminate_backend($1)", [pid])
      const started = performance.now()
      const answers = await pending
      const book = await ledger(id)
      expectTruthful(answers, book)
      console.info(
        `[chaos] commit-unknown (b) backend terminated before COMMIT: ${held.length} backend(s) killed, ` +
          `${answers.length} turns re-run and answered in ${(performance.now() - started).toFixed(0)} ms, ` +
          `${book.chargedIds.length} ledger rows, duplicates 0`,
      )
    } finally {
      await sql.query(
        "drop trigger if exists chaos_hold_commit on quota_counters; drop function if exists chaos_hold_commit(); drop table if exists chaos_switch",
      )
    }
  })

  it("while PostgreSQL is stopped a library caller gets the typed, retryable error, and service resumes by itself", async () => {
    const { id, entityId } = await subscription("library-outage", 1_000_000)
    // The test's own connection would die with the server: close it first, open a new one afterwards.
    await sql.end()
    await cluster.stop("fast")
    try {
      const failed = await turns(entityId, 3).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failed).toBeInstanceOf(DatabaseUnavailableError)
      expect(failed).toMatchObject({ code: "service_unavailable", retryable: true, retryAfterSeconds: 1 })
      await expect(meter.getQuota(id)).rejects.toBeInstanceOf(DatabaseUnavailableError)
    } finally {
      await cluster.start()
    }
    const upAt = performance.now()
    let answers: Decision[] | undefined
    while (!answers && performance.now() - upAt < 5000) {
      answers = await turns(entityId, 3).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20))
        return undefined
      })
    }
    const recoveredMs = performance.now() - upAt
    expect(recoveredMs).toBeLessThan(2000)
    sql = new pg.Client({ connectionString: cluster.url("commit_unknown") })
    await sql.connect()
    expectTruthful(answers ?? [], await ledger(id))
    console.info(
      `[chaos] library during a stop: DatabaseUnavailableError; first turn allowed ${recoveredMs.toFixed(0)} ms after the start`,
    )
  })
})
