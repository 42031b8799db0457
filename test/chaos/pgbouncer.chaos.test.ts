/**
 * omnimeter behind PgBouncer in `pool_mode=transaction` (what Supabase, Neon and RDS Proxy put in front), on
 * a private cluster. 12 client connections share 3 server connections, so consecutive transactions of one
 * client land on different server connections. The schema owner is a plain login role (not a superuser),
 * as on a managed database: if any statement ran as it, row level security would not apply.
 *
 * Before each case the pooler is told to RECONNECT: every later transaction runs on a server connection
 * opened after the service started, which never saw anything the service did at connect time.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { type Database, openDatabase } from "../../src/storage/database.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { type PgBouncer, startPgBouncer } from "../support/pgbouncer.js"
import { type PostgresCluster, startPostgresCluster } from "../support/postgres-cluster.js"

const OWNER = "omnimeter_owner"
const DB_NAME = "chaos"

let cluster: PostgresCluster
let bouncer: PgBouncer
let database: Database
let t: TestApp

beforeAll(async () => {
  cluster = await startPostgresCluster()
  await cluster.query(`create role ${OWNER} login createrole`)
  await cluster.query(`create database ${DB_NAME} owner ${OWNER}`)
  bouncer = await startPgBouncer({
    upstreamPort: cluster.port,
    databases: [DB_NAME],
    users: [OWNER],
    poolSize: 3,
  })
  // Migrations too run through the pooler.
  database = await openDatabase({ databaseUrl: bouncer.url(OWNER, DB_NAME), poolSize: 12 })
  // Records, outside omnimeter, which role wrote each ledger insert: the proof that row level security
  // applied to the hot path's statements (PUBLIC may insert, so a wrong role is recorded, not refused).
  await cluster.query(
    `create table chaos_ledger_writers (role name not null);
     grant insert on chaos_ledger_writers to public;
     create function chaos_record_writer() returns trigger language plpgsql as
       $$ begin insert into chaos_ledger_writers values (current_user); return null; end $$;
     create trigger chaos_record_writer after insert on token_usage_logs
       for each statement execute function chaos_record_writer();`,
    DB_NAME,
  )
  t = await startTestApp({ database })
})

afterAll(async () => {
  await t?.close()
  await bouncer?.stop()
  await cluster?.destroy()
})

beforeEach(async () => {
  await bouncer.admin(`RECONNECT ${DB_NAME}`)
})

/** Reads the cluster directly as the superuser: an independent view of what was committed. */
function direct<R extends Record<string, unknown>>(text: string): Promise<R[]> {
  return cluster.query<R>(text, DB_NAME)
}

async function subscriptionWithRoom(tokenLimit: number) {
  const sub = await t.subscription({ token_limit: tokenLimit })
  const configured = await t.request({
    method: "PUT",
    url: `/api/onboarding/subscription/${sub.id}/channels/whatsapp/config`,
    payload: { token_multiplier: 1, requests_per_minute: 10_000, tokens_per_minute: 10_000_000 },
  })
  expect(configured.statusCode).toBe(200)
  return sub
}

function consume(entityId: string, key: string, user: string) {
  return t.request({
    method: "POST",
    url: "/api/tokens/consume",
    key,
    payload: {
      entity_id: entityId,
      entity_type: "organization",
      estimated_tokens: 100,
      operation_type: "chat",
      channel: "whatsapp",
      chatbot_id: "bot",
      session_id: "s1",
      user_identifier: user,
    },
  })
}

describe("behind PgBouncer in transaction pooling mode", () => {
  it("runs every statement as omnimeter_app with the trusted tenant, on whichever server connection it lands", async () => {
    const rows = await Promise.all(
      Array.from({ length: 60 }, () =>
        sql<{ role: string; tenant: string | null; backend: number }>`
          select current_user as role, current_setting('omnimeter.tenant', true) as tenant,
                 pg_backend_pid() as backend from pg_sleep(0.005)`
          .execute(database.db)
          .then((result) => result.rows[0]),
      ),
    )
    expect(new Set(rows.map((row) => row?.role))).toEqual(new Set(["omnimeter_app"]))
    expect(new Set(rows.map((row) => row?.tenant))).toEqual(new Set(["*"]))
    // The pooler really multiplexed: several server connections, never more than its pool.
    const backends = new Set(rows.map((row) => row?.backend)).size
    expect(backends).toBeGreaterThan(1)
    expect(backends).toBeLessThanOrEqual(3)
  })

  it("grants exactly the quota to 200 concurrent turns asking for twice it, each written as omnimeter_app", async () => {
    const sub = await subscriptionWithRoom(10_000)
    await direct("truncate chaos_ledger_writers")
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => consume(sub.entityId, sub.key, `u${i}`)),
    )
    const statuses = answers.map((answer) => answer.statusCode)
    expect(statuses.filter((status) => status !== 200 && status !== 402)).toEqual([])
    const grants = answers.filter((answer) => answer.statusCode === 200)
    const billed = grants.reduce((sum, answer) => sum + Number(answer.json().billed_tokens), 0)
    expect(grants.length * 100).toBe(10_000)
    expect(billed).toBe(10_000)

    const [ledger] = await direct<{ charged: string; billed: string; ids: string }>(
      `select count(*) filter (where status <> 'denied') as charged,
              coalesce(sum(billed_tokens) filter (where status <> 'denied'), 0) as billed,
              count(distinct id) filter (where status <> 'denied') as ids
       from token_usage_logs where subscription_id = '${sub.id}'`,
    )
    expect(Number(ledger?.charged)).toBe(grants.length)
    expect(Number(ledger?.ids)).toBe(grants.length)
    expect(Number(ledger?.billed)).toBe(10_000)
    const [counter] = await direct<{ used: string }>(
      `select sum(used_tokens) as used from quota_counters where subscription_id = '${sub.id}'`,
    )
    expect(Number(counter?.used)).toBe(10_000)
    const writers = await direct<{ role: string }>("select distinct role from chaos_ledger_writers")
    expect(writers.map((row) => row.role)).toEqual(["omnimeter_app"])
  })

  it("never lets a subscription key see another subscription while their requests interleave", async () => {
    const [a, b] = [await subscriptionWithRoom(100_000), await subscriptionWithRoom(100_000)]
    const calls = Array.from({ length: 60 }, async (_, i) => {
      const [me, other] = i % 2 === 0 ? [a, b] : [b, a]
      const target = i % 3 === 0 ? me : other
      const url = i % 6 < 3 ? `/api/subscriptions/${target.id}` : `/api/onboarding/analytics/${target.id}`
      const res = await t.request({ method: "GET", url, key: me.key })
      return { url, mine: target === me, status: res.statusCode, body: res.body }
    })
    for (const outcome of await Promise.all(calls)) {
      expect(outcome.status, outcome.url).toBe(outcome.mine ? 200 : 404)
      if (!outcome.mine) expect(outcome.body).not.toContain("whatsapp")
    }
  })

  it("keeps each tenant-scoped transaction to its own rows while transactions share server connections", async () => {
    const [a, b] = [await subscriptionWithRoom(100_000), await subscriptionWithRoom(100_000)]
    for (const [sub, user] of [
      [a, "ua"],
      [b, "ub"],
    ] as const) {
      expect((await consume(sub.entityId, sub.key, user)).statusCode).toBe(200)
    }
    const scoped = Array.from({ length: 30 }, async (_, i) => {
      const mine = i % 2 === 0 ? a.id : b.id
      return database.withTenant(mine, async (trx) => {
        const before = await sql<{ id: string }>`select subscription_id as id from token_usage_logs`.execute(
          trx,
        )
        await sql`select pg_sleep(0.01)`.execute(trx)
        const subscriptions = await sql<{ id: string }>`select id from subscriptions`.execute(trx)
        const [who] = (await sql<{ role: string }>`select current_user as role`.execute(trx)).rows
        return { mine, seen: [...before.rows, ...subscriptions.rows].map((row) => row.id), role: who?.role }
      })
    })
    // Trusted statements in between see both tenants: the scoped setting never outlives its transaction.
    const trusted = Array.from({ length: 10 }, () =>
      sql<{ n: string }>`select count(distinct subscription_id) as n from token_usage_logs
        where subscription_id in (${a.id}, ${b.id})`
        .execute(database.db)
        .then((result) => Number(result.rows[0]?.n)),
    )
    const [views, counts] = await Promise.all([Promise.all(scoped), Promise.all(trusted)])
    for (const view of views) {
      expect(view.role).toBe("omnimeter_app")
      expect(view.seen.length).toBeGreaterThan(0)
      expect(new Set(view.seen)).toEqual(new Set([view.mine]))
    }
    expect(counts).toEqual(counts.map(() => 2))
  })
})

describe("migrations behind PgBouncer in transaction pooling mode", () => {
  it("leave no advisory lock behind when instances start together while other transactions keep the server connections busy", async () => {
    let busy = true
    const load = Array.from({ length: 8 }, async () => {
      while (busy) await sql`select pg_sleep(0.002)`.execute(database.db)
    })
    try {
      // Two instances starting at once, twice: their migration runs take turns under the lock.
      for (let i = 0; i < 2; i += 1) {
        const instances = await Promise.all(
          [0, 1].map(() => openDatabase({ databaseUrl: bouncer.url(OWNER, DB_NAME), poolSize: 2 })),
        )
        await Promise.all(instances.map((instance) => instance.close()))
      }
    } finally {
      busy = false
      await Promise.all(load)
    }
    const locks = await direct<{ n: string }>(
      "select count(*) as n from pg_locks where locktype = 'advisory'",
    )
    expect(Number(locks[0]?.n)).toBe(0)
  }, 30_000)
})
