/**
 * The property-based fuzz test (issue 11): requests generated from the OpenAPI document the app serves,
 * valid and mutated, against every endpoint, with the admin key, a subscription key, no key and malformed
 * keys, in-process through `inject`. Three properties hold for every request:
 *   1. no 5xx;
 *   2. every error is the one envelope, with `request_id` equal to the X-Request-Id header;
 *   3. a 4xx changes no state: quota, ledger, subscriptions (and their channel settings), keys, webhooks,
 *      alert settings, queued deliveries and saved dashboards are compared by SQL before and after. The
 *      one documented exception: a consume denial writes exactly one denied ledger row (billed 0) for
 *      analytics, except `subscription_not_found`, which writes none.
 *
 * Bounded: a fixed seed and a fixed number of requests (OMNIMETER_FUZZ_RUNS, default 2500;
 * OMNIMETER_FUZZ_SEED to explore another sequence). The run prints the request count and the status
 * histogram.
 */
import fc from "fast-check"
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { testEngine } from "../support/database.js"
import {
  type GeneratedRequest,
  type JsonSchema,
  operationsOf,
  requestFor,
  SchemaArbitraries,
  surfaceOf,
} from "../support/fuzz-requests.js"
import { startTestApp, type TestApp } from "../support/http.js"

const RUNS = Number(process.env.OMNIMETER_FUZZ_RUNS ?? 2500)
const SEED = Number(process.env.OMNIMETER_FUZZ_SEED ?? 20261129)
/** Fixtures a generated request may have broken (suspended, deleted, settled) are restored this often. */
const REPAIR_EVERY = 100

let t: TestApp
const clock = new ManualClock(Date.parse("2026-06-15T12:00:00Z"))
const fixtures: Record<string, string> = {}
let subscriptionKey = ""

async function consumeOne(entityId: string, key?: string): Promise<string> {
  const res = await t.request({
    method: "POST",
    url: "/api/tokens/consume",
    ...(key ? { key } : {}),
    payload: { entity_id: entityId, entity_type: "organization", estimated_tokens: 10, channel: "api" },
  })
  if (res.statusCode !== 200) throw new Error(`fixture turn refused: ${res.body}`)
  return res.json().usage_id
}

async function createWebhook(subscriptionId: string): Promise<string> {
  const res = await t.request({
    method: "POST",
    url: `/api/subscriptions/${subscriptionId}/webhooks`,
    payload: { url: "https://hooks.example.com/omnimeter", event_types: ["quota.threshold_reached"] },
  })
  if (res.statusCode !== 201) throw new Error(`fixture webhook refused: ${res.body}`)
  return res.json().id
}

async function createDashboard(subscriptionId: string): Promise<string> {
  const res = await t.request({
    method: "POST",
    url: `/api/subscriptions/${subscriptionId}/dashboards`,
    payload: { name: `Fixture ${Math.random().toString(36).slice(2)}`, widgets: [{ kind: "totals" }] },
  })
  if (res.statusCode !== 201) throw new Error(`fixture dashboard refused: ${res.body}`)
  return res.json().id
}

async function issueKey(subscriptionId: string): Promise<{ key: string; id: string }> {
  const res = await t.request({
    method: "POST",
    url: `/api/subscriptions/${subscriptionId}/keys`,
    payload: {},
  })
  if (res.statusCode !== 201) throw new Error(`fixture key refused: ${res.body}`)
  return { key: res.json().key, id: res.json().key_id }
}

/** Puts back what generated requests may have changed, so later requests still reach real rows. */
async function repairFixtures(): Promise<void> {
  for (const id of [fixtures.subscriptionA, fixtures.subscriptionB]) {
    await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${id}`,
      payload: {
        status: "active",
        plan: "enterprise",
        token_limit: 1_000_000_000,
        requests_per_minute: null,
        tokens_per_minute: null,
        quota_reserve_percent: 0,
      },
    })
  }
  const hooks = await t.request({
    method: "GET",
    url: `/api/subscriptions/${fixtures.subscriptionA}/webhooks`,
  })
  const ids = (hooks.json().webhooks as { id: string }[]).map((w) => w.id)
  if (!ids.includes(fixtures.webhookA ?? ""))
    fixtures.webhookA = await createWebhook(fixtures.subscriptionA ?? "")
  const keys = await t.request({ method: "GET", url: `/api/subscriptions/${fixtures.subscriptionA}/keys` })
  const live = (keys.json().keys as { key_id: string; revoked_at: string | null }[]).filter(
    (k) => !k.revoked_at,
  )
  if (!live.some((k) => k.key_id === fixtures.spareKeyA))
    fixtures.spareKeyA = (await issueKey(fixtures.subscriptionA ?? "")).id
  for (const id of [fixtures.subscriptionA, fixtures.subscriptionB]) {
    await t.request({
      method: "PUT",
      url: `/api/onboarding/subscription/${id}/channels/api/config`,
      payload: { enabled: true, requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000 },
    })
  }
  const views = await t.request({
    method: "GET",
    url: `/api/subscriptions/${fixtures.subscriptionA}/dashboards`,
  })
  const kept = (views.json().dashboards as { id: string }[]).map((d) => d.id)
  // Any surviving view will do (generated requests may have filled the subscription's 50).
  if (!kept.includes(fixtures.dashboardA ?? ""))
    fixtures.dashboardA = kept[0] ?? (await createDashboard(fixtures.subscriptionA ?? ""))
  fixtures.usageA = await consumeOne(fixtures.entityA ?? "")
}

beforeAll(async () => {
  t = await startTestApp({ clock })
  const a = await t.subscription({ plan: "enterprise", token_limit: 1_000_000_000 })
  const b = await t.subscription({ plan: "enterprise", token_limit: 1_000_000_000 })
  subscriptionKey = a.key
  Object.assign(fixtures, {
    subscriptionA: a.id,
    subscriptionAUpper: a.id.toUpperCase(),
    subscriptionB: b.id,
    entityA: a.entityId,
    entityB: b.entityId,
    keyB: b.keyId,
    usageB: await consumeOne(b.entityId),
    webhookB: await createWebhook(b.id),
  })
  fixtures.webhookA = await createWebhook(a.id)
  fixtures.dashboardA = await createDashboard(a.id)
  fixtures.dashboardB = await createDashboard(b.id)
  fixtures.spareKeyA = (await issueKey(a.id)).id
  fixtures.usageA = await consumeOne(a.entityId, a.key)
}, 120_000)
afterAll(async () => t?.close())

/** Every placeholder of the generated request replaced by the fixture's current value. */
function resolve(text: string): string {
  // A placeholder in a path or query was percent-encoded with the rest of its value.
  return text.replace(
    /(?:@@|%40%40)(\w+)(?:@@|%40%40)/g,
    (_, name: string) => fixtures[name] ?? "00000000-0000-4000-8000-000000000000",
  )
}

interface Snapshot {
  /** Hash of every row of the state a 4xx must not touch. */
  state: string
  /** Denied ledger rows, by reason: a consume denial adds exactly one. */
  denied: Record<string, number>
}

/** One statement: an order-independent hash of each table's rows (every column), and the denials. */
async function snapshot(): Promise<Snapshot> {
  const hash = (table: string, where = "true") =>
    sql.raw(
      `(select coalesce(sum(hashtext(r::text)::numeric), 0) || ':' || count(*) from ${table} r where ${where})`,
    )
  const result = await sql<{ state: string; denied: Record<string, number> | string | null }>`
    select concat_ws('|',
      ${hash("quota_counters")},
      ${hash("token_usage_logs", "status <> 'denied'")},
      ${hash("usage_idempotency_keys")},
      ${hash("subscriptions")},
      ${hash("channel_configurations")},
      ${hash("api_keys")},
      ${hash("webhook_endpoints")},
      ${hash("alert_settings")},
      ${hash("alerts")},
      ${hash("webhook_deliveries")},
      ${hash("dashboards")}
    ) as state,
    (select json_object_agg(reason, n) from (
      select denial_reason as reason, count(*) as n from token_usage_logs where status = 'denied' group by 1
    ) d) as denied`.execute(t.container.database.db)
  const row = result.rows[0]
  const denied = typeof row?.denied === "string" ? JSON.parse(row.denied) : (row?.denied ?? {})
  return {
    state: row?.state ?? "",
    denied: Object.fromEntries(Object.entries(denied).map(([k, v]) => [k, Number(v)])),
  }
}

function deniedDelta(before: Snapshot, after: Snapshot): Record<string, number> {
  const delta: Record<string, number> = {}
  for (const reason of new Set([...Object.keys(before.denied), ...Object.keys(after.denied)])) {
    const change = (after.denied[reason] ?? 0) - (before.denied[reason] ?? 0)
    if (change !== 0) delta[reason] = change
  }
  return delta
}

interface Failure {
  operation: string
  caller: string
  status: number
  problem: string
  request: string
  response: string
}

const clip = (text: string, n = 240) =>
  text.length > n ? `${text.slice(0, n)}… (${text.length} chars)` : text

/** Checks the three properties for one request; returns what was wrong, if anything. */
function problemsOf(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  before: Snapshot,
  after: Snapshot,
): string[] {
  const problems: string[] = []
  const status = response.statusCode
  const requestId = response.headers["x-request-id"]
  if (status >= 500) problems.push("5xx")
  if (typeof requestId !== "string" || requestId.length === 0) problems.push("no X-Request-Id header")
  let body:
    | {
        error?: { code?: unknown; message?: unknown; request_id?: unknown }
        allowed?: unknown
        reason?: unknown
      }
    | undefined
  try {
    body = response.body === "" ? undefined : JSON.parse(response.body)
  } catch {
    body = undefined
  }
  if (status >= 400) {
    const error = body?.error
    if (!error || typeof error.code !== "string" || typeof error.message !== "string")
      problems.push("error outside the envelope")
    else if (error.request_id !== requestId) problems.push("envelope request_id differs from X-Request-Id")
  }
  if (status >= 400 && status < 500) {
    const delta = deniedDelta(before, after)
    const isDenial = body?.allowed === false && typeof body.reason === "string"
    const expected: Record<string, number> =
      isDenial && body?.reason !== "subscription_not_found" ? { [String(body?.reason)]: 1 } : {}
    if (before.state !== after.state) problems.push("4xx changed state")
    if (JSON.stringify(delta) !== JSON.stringify(expected))
      problems.push(`4xx denial rows ${JSON.stringify(delta)}, expected ${JSON.stringify(expected)}`)
  }
  return problems
}

describe(`fuzzing every endpoint from the OpenAPI document (${testEngine})`, () => {
  it("never answers 5xx, answers every error in the envelope with its request id, and changes nothing on a 4xx", async () => {
    const document = (await t.request({ method: "GET", url: "/openapi.json", key: null })).json()
    // OMNIMETER_FUZZ_ONLY narrows a local run to operations whose "METHOD /path" contains it.
    const only = process.env.OMNIMETER_FUZZ_ONLY
    const all = operationsOf(document)
    const operations = only ? all.filter((o) => `${o.method} ${o.path}`.includes(only)) : all
    const consume = all.find((o) => o.path === "/api/tokens/consume")
    const channels = ((consume?.body?.properties?.channel as JsonSchema | undefined)?.enum ?? []) as string[]
    expect(all.length).toBeGreaterThanOrEqual(30)
    expect(channels).toContain("whatsapp")
    const subscriptionIds = ["@@subscriptionA@@", "@@subscriptionB@@", "@@subscriptionAUpper@@"]
    const schemas = new SchemaArbitraries(
      document.components?.schemas ?? {},
      {
        id: subscriptionIds,
        subscription_id: subscriptionIds,
        after: subscriptionIds,
        key_id: ["@@spareKeyA@@", "@@keyB@@"],
        webhook_id: ["@@webhookA@@", "@@webhookB@@"],
        dashboard_id: ["@@dashboardA@@", "@@dashboardB@@"],
        usage_id: ["@@usageA@@", "@@usageB@@"],
        entity_id: ["@@entityA@@", "@@entityB@@"],
        entity_type: ["organization"],
        channel: channels,
        channels: ["website,whatsapp", "api", "website,nope", ""],
        url: [
          "https://hooks.example.com/a",
          "http://93.184.216.34/x",
          "https://example.com:0/",
          "ftp://x.example/",
        ],
        timezone: ["Europe/Berlin", "Asia/Kathmandu", "UTC", "Mars/Olympus"],
        tz: ["Europe/Berlin", "Asia/Kolkata", "UTC", "Etc/GMT-14", "Mars/Olympus"],
        from: ["2026-06-01", "2026-05-01", "2025-06-01"],
        to: ["2026-06-15", "2026-06-30", "2026-05-02"],
        idempotency_key: ["fuzz-key-1", "fuzz-key-2"],
        "idempotency-key": ["fuzz-key-1", "fuzz-key-3"],
        created_at: ["2026-06-14T10:00:00Z", "2026-06-01T00:00:00+02:00", "2026-05-20T23:59:59.999Z"],
        period_start: ["2026-06-01T00:00:00Z", "2026-01-31T00:00:00+05:30"],
      },
      {
        from: ["0001-01-01", "0000-01-01", "9999-12-31", "9999-12-01", "1969-12-31", "2026-02-30"],
        to: ["9999-12-31", "0001-01-05", "0001-01-01", "10000-01-01", "2026-13-01"],
        before: ["9223372036854775808", "9223372036854775807", "1e308", "1.5", "-1", "0"],
        limit: ["0x10", "1.5", " 5", "0", "501", "-1"],
        created_at: [
          "0000-01-01T00:00:00Z",
          "0001-01-01T00:00:00Z",
          "9999-12-31T23:59:59Z",
          "0001-01-01T00:00:00+14:00",
        ],
        period_start: [
          "0000-01-01T00:00:00Z",
          "0001-01-01T00:00:00Z",
          "0001-01-01T00:00:00+14:00",
          "9999-12-31T23:59:59-14:00",
        ],
      },
    )
    const model = { schemas, channels }
    // Each operation in proportion to its surface: one more share per parameter and body field, so the
    // consume call (twelve fields) is tried far more often than /healthz (none).
    const arbitrary = fc.oneof(
      ...operations.map((operation) => ({
        weight: 1 + surfaceOf(operation),
        arbitrary: requestFor(operation, model),
      })),
    )
    const requests: GeneratedRequest[] = fc.sample(arbitrary, { seed: SEED, numRuns: RUNS })

    const statuses = new Map<number, number>()
    const perOperation = new Map<string, Map<number, number>>()
    const failures: Failure[] = []
    let before = await snapshot()
    for (const [index, generated] of requests.entries()) {
      if (index > 0 && index % REPAIR_EVERY === 0) {
        await repairFixtures()
        before = await snapshot()
      }
      const headers = Object.fromEntries(Object.entries(generated.headers).map(([k, v]) => [k, resolve(v)]))
      const url = resolve(generated.url)
      const body = generated.body === undefined ? undefined : resolve(generated.body)
      const key =
        generated.caller === "admin"
          ? undefined
          : generated.caller === "subscription"
            ? subscriptionKey
            : null
      const response = await t.request({
        method: generated.method,
        url,
        headers,
        ...(key === undefined ? {} : { key }),
        ...(body === undefined ? {} : { payload: body }),
      })
      const after = await snapshot()
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
      const byStatus = perOperation.get(generated.operation) ?? new Map<number, number>()
      byStatus.set(response.statusCode, (byStatus.get(response.statusCode) ?? 0) + 1)
      perOperation.set(generated.operation, byStatus)
      for (const problem of problemsOf(response, before, after)) {
        failures.push({
          operation: generated.operation,
          caller: generated.caller,
          status: response.statusCode,
          problem,
          request: `${generated.method} ${clip(url, 160)} ${clip(JSON.stringify(headers), 160)} ${clip(body ?? "", 300)}`,
          response: clip(response.body, 300),
        })
      }
      before = after
    }

    const histogram = Object.fromEntries([...statuses.entries()].sort(([a], [b]) => a - b))
    const fivexx = [...statuses.entries()].filter(([s]) => s >= 500).reduce((sum, [, n]) => sum + n, 0)
    console.log(
      `fuzz (${testEngine}, seed ${SEED}): ${requests.length} generated requests over ${perOperation.size} operations; statuses ${JSON.stringify(histogram)}; 5xx: ${fivexx}; failures: ${failures.length}`,
    )
    const lines = [...perOperation.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([operation, byStatus]) => {
        const counts = [...byStatus.entries()].sort(([a], [b]) => a - b)
        return `  ${operation}: ${counts.map(([status, n]) => `${status}x${n}`).join(" ")}`
      })
    console.log(`fuzz statuses per operation (${testEngine}):\n${lines.join("\n")}`)
    // Grouped, so a report can name each distinct cause once with an example.
    const groups = new Map<string, Failure[]>()
    for (const failure of failures) {
      const group = `${failure.operation} | ${failure.problem} | ${failure.status}`
      groups.set(group, [...(groups.get(group) ?? []), failure])
    }
    const summary = [...groups.entries()].map(
      ([group, list]) =>
        `${list.length}x ${group}\n    request:  ${list[0]?.request}\n    response: ${list[0]?.response}`,
    )
    if (summary.length > 0) console.log(`fuzz failures (${testEngine}):\n${summary.join("\n")}`)
    expect(perOperation.size).toBe(operations.length)
    expect(summary).toEqual([])
  }, 600_000)
})
