/**
 * The security matrix for the alerts, webhooks, forecast and insights endpoints: no key, a wrong key, a
 * revoked key, another subscription's key (404: no existence leak), the subscription's own key and the
 * admin key. And row level security on the new tables, beneath the HTTP layer.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

let t: TestApp
let owner: Awaited<ReturnType<TestApp["subscription"]>>
let other: Awaited<ReturnType<TestApp["subscription"]>>
let revokedKey: string
let webhookId: string

beforeAll(async () => {
  t = await startTestApp({ env: { OMNIMETER_WEBHOOK_ALLOW_PRIVATE: "true" } })
  owner = await t.subscription({ token_limit: 1000 })
  other = await t.subscription({ token_limit: 1000 })
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })
  const created = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/webhooks`,
    payload: { url: "http://127.0.0.1:9/hook", event_types: ["quota.threshold_reached"] },
  })
  webhookId = created.json().id
  // Both subscriptions get alerts and outbox rows for the RLS checks.
  for (const sub of [owner, other]) {
    await t.container.meter.validateAndConsumeTokens({
      entityId: sub.entityId,
      entityType: "organization",
      estimatedTokens: 600,
      channel: "website",
    })
  }
  await t.request({
    method: "POST",
    url: `/api/subscriptions/${other.id}/webhooks`,
    payload: { url: "http://127.0.0.1:9/other", event_types: ["rate_limit.exceeded"] },
  })
})
afterAll(async () => t.close())

const hook = () => `/api/subscriptions/${owner.id}/webhooks/${webhookId}`
const endpoints: MatrixEndpoint[] = [
  {
    name: "create webhook",
    method: "POST",
    route: "/api/subscriptions/:id/webhooks",
    url: () => `/api/subscriptions/${owner.id}/webhooks`,
    payload: () => ({ url: "http://127.0.0.1:9/x", event_types: ["rate_limit.exceeded"] }),
    expect: { other: 404, own: 201, admin: 201 },
  },
  {
    name: "list webhooks",
    method: "GET",
    route: "/api/subscriptions/:id/webhooks",
    url: () => `/api/subscriptions/${owner.id}/webhooks`,
    expect: { other: 404 },
  },
  {
    name: "update webhook",
    method: "PATCH",
    route: "/api/subscriptions/:id/webhooks/:webhook_id",
    url: hook,
    payload: () => ({ description: "edited" }),
    expect: { other: 404 },
  },
  {
    name: "webhook deliveries",
    method: "GET",
    route: "/api/subscriptions/:id/webhooks/:webhook_id/deliveries",
    url: () => `${hook()}/deliveries`,
    expect: { other: 404 },
  },
  {
    name: "webhook test event",
    method: "POST",
    route: "/api/subscriptions/:id/webhooks/:webhook_id/test",
    url: () => `${hook()}/test`,
    expect: { other: 404, own: 202, admin: 202 },
  },
  {
    name: "delete webhook",
    method: "DELETE",
    route: "/api/subscriptions/:id/webhooks/:webhook_id",
    url: () => `/api/subscriptions/${owner.id}/webhooks/00000000-0000-4000-8000-000000000000`,
    expect: { other: 404, own: 404, admin: 404 },
  },
  {
    name: "alerts",
    method: "GET",
    route: "/api/subscriptions/:id/alerts",
    url: () => `/api/subscriptions/${owner.id}/alerts`,
    expect: { other: 404 },
  },
  {
    name: "read alert settings",
    method: "GET",
    route: "/api/subscriptions/:id/alert-settings",
    url: () => `/api/subscriptions/${owner.id}/alert-settings`,
    expect: { other: 404 },
  },
  {
    name: "write alert settings",
    method: "PUT",
    route: "/api/subscriptions/:id/alert-settings",
    url: () => `/api/subscriptions/${owner.id}/alert-settings`,
    payload: () => ({ quota_thresholds: [0.5, 0.8, 0.95, 1] }),
    expect: { other: 404 },
  },
  {
    name: "forecast",
    method: "GET",
    route: "/api/onboarding/analytics/:subscription_id/forecast",
    url: () => `/api/onboarding/analytics/${owner.id}/forecast`,
    expect: { other: 404 },
  },
  {
    name: "insights",
    method: "GET",
    route: "/api/onboarding/analytics/:subscription_id/insights",
    url: () => `/api/onboarding/analytics/${owner.id}/insights`,
    expect: { other: 404 },
  },
]

describeSecurityMatrix(endpoints, {
  app: () => t,
  revokedKey: () => revokedKey,
  otherKey: () => other.key,
  ownKey: () => owner.key,
})

describe("row level security on the alert tables", () => {
  it("shows a subscription-scoped transaction only its own alerts, endpoints, deliveries and settings", async () => {
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${other.id}/alert-settings`,
      payload: { quota_thresholds: [0.3] },
    })
    const seen = await t.container.database.withTenant(owner.id, async (trx) => {
      const count = async (table: string) =>
        Number(
          (
            await sql<{
              n: number
            }>`select count(*)::int as n from ${sql.table(table)} where subscription_id <> ${owner.id}`.execute(
              trx,
            )
          ).rows[0]?.n,
        )
      return {
        alerts: await count("alerts"),
        endpoints: await count("webhook_endpoints"),
        deliveries: await count("webhook_deliveries"),
        settings: await count("alert_settings"),
      }
    })
    expect(seen).toEqual({ alerts: 0, endpoints: 0, deliveries: 0, settings: 0 })
    // The trusted service sees both tenants' rows, so the zero above is the policy, not an empty table.
    const all = await sql<{
      n: number
    }>`select count(distinct subscription_id)::int as n from alerts`.execute(t.container.database.db)
    expect(all.rows[0]?.n).toBeGreaterThanOrEqual(2)
  })

  it("refuses to write another subscription's rows from a scoped transaction", async () => {
    await expect(
      t.container.database.withTenant(owner.id, (trx) =>
        sql`insert into alerts (subscription_id, type, dedupe_key, data, occurred_at)
            values (${other.id}, 'rate_limit.exceeded', 'forged', '{}', now())`.execute(trx),
      ),
    ).rejects.toThrow(/row-level security/)
  })
})
