/**
 * Webhooks end to end, against a real HTTP receiver on loopback: endpoints over HTTP, the outbox written
 * with its cause, signatures, retries with backoff, order per endpoint, restarts and competing workers.
 * The workers run on a manual clock, driven pass by pass with runOnce.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { HttpWebhookSender } from "../../src/alerts/sender.js"
import { AlertService } from "../../src/alerts/service.js"
import { verifyWebhookSignature } from "../../src/alerts/signature.js"
import { DeliveryWorker } from "../../src/alerts/worker.js"
import { ManualClock } from "../../src/core/clock.js"
import { claimDeliveries } from "../../src/storage/alerts.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { type Receiver, startReceiver } from "../support/receiver.js"

let t: TestApp
let receiver: Receiver
// Near the real date: the quota trigger treats periods that began over 31 days before the database's now()
// as history.
const clock = new ManualClock(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 20 * 24 * 3_600_000)

beforeAll(async () => {
  t = await startTestApp({
    clock,
    env: { OMNIMETER_WEBHOOK_ALLOW_PRIVATE: "true" },
  })
  receiver = await startReceiver()
})
afterAll(async () => {
  await receiver.close()
  await t.close()
})
beforeEach(async () => {
  // Each test starts with an empty outbox: what earlier tests left pending is delivered now.
  receiver.respond = () => 200
  clock.advance(3_600_000)
  await drain(worker())
})

/** A worker on the manual clock; the generous default timeout keeps a loaded test machine from flaking. */
function worker(options: { owner?: string; maxAttempts?: number; timeoutMs?: number } = {}): DeliveryWorker {
  const { timeoutMs = 10_000, ...rest } = options
  return new DeliveryWorker({
    database: t.container.database,
    clock,
    random: () => 0.5,
    sender: new HttpWebhookSender({ timeoutMs, allowPrivateNetworks: true }),
    leaseMs: 60_000,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    ...rest,
  })
}

async function subscriptionWithWebhook(
  tokenLimit = 1000,
  eventTypes: string[] = ["quota.threshold_reached"],
): Promise<{
  sub: Awaited<ReturnType<TestApp["subscription"]>>
  webhookId: string
  secret: string
  url: string
}> {
  const sub = await t.subscription({ token_limit: tokenLimit })
  const url = `${receiver.url}/${sub.id}`
  const created = await t.request({
    method: "POST",
    url: `/api/subscriptions/${sub.id}/webhooks`,
    key: sub.key,
    payload: { url, event_types: eventTypes, description: "ops" },
  })
  expect(created.statusCode, created.body).toBe(201)
  return { sub, webhookId: created.json().id, secret: created.json().secret, url }
}

async function consume(entityId: string, tokens: number, channel = "website") {
  return t.container.meter.validateAndConsumeTokens({
    entityId,
    entityType: "organization",
    estimatedTokens: tokens,
    operationType: "chat",
    channel: channel as "website",
  })
}

/** Runs the worker until a pass finds nothing due. */
async function drain(w: DeliveryWorker): Promise<void> {
  for (let i = 0; i < 50 && (await w.runOnce()) > 0; i += 1) {}
}

const forSubscription = (id: string) => receiver.received.filter((r) => r.body.includes(id))

describe("webhook endpoints over HTTP", () => {
  it("shows the signing secret once and never in lists or updates", async () => {
    const { sub, webhookId, secret } = await subscriptionWithWebhook()
    expect(secret).toMatch(/^whsec_[\w-]{43}$/)
    const list = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks`,
      key: sub.key,
    })
    expect(list.statusCode).toBe(200)
    expect(list.body).not.toContain(secret)
    expect(list.json().webhooks).toHaveLength(1)
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/webhooks", list)
    const patched = await t.request({
      method: "PATCH",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}`,
      key: sub.key,
      payload: { enabled: false, event_types: ["rate_limit.exceeded", "usage.spike_detected"] },
    })
    expect(patched.statusCode, patched.body).toBe(200)
    expect(patched.json()).toMatchObject({
      enabled: false,
      event_types: ["rate_limit.exceeded", "usage.spike_detected"],
    })
    expect(patched.body).not.toContain(secret)
    expectDocumented(t.app, "PATCH", "/api/subscriptions/:id/webhooks/:webhook_id", patched)
  })

  it("rejects unknown event types, unknown fields and non-http URLs naming the field", async () => {
    const sub = await t.subscription()
    const cases: [Record<string, unknown>, string][] = [
      [{ url: receiver.url, event_types: ["quota.nearly_gone"] }, "event_types.0"],
      [{ url: receiver.url, event_types: [] }, "event_types"],
      [{ url: "ftp://example.com/hook", event_types: ["rate_limit.exceeded"] }, "url"],
      [{ url: "not a url", event_types: ["rate_limit.exceeded"] }, "url"],
      [{ url: receiver.url, event_types: ["rate_limit.exceeded"], secret: "mine" }, "secret"],
    ]
    for (const [payload, field] of cases) {
      const res = await t.request({ method: "POST", url: `/api/subscriptions/${sub.id}/webhooks`, payload })
      expect(res.statusCode, JSON.stringify(payload)).toBe(400)
      expect(res.json().error.field).toBe(field)
      expectDocumented(t.app, "POST", "/api/subscriptions/:id/webhooks", res)
    }
    const list = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/webhooks` })
    expect(list.json().webhooks).toEqual([])
  })

  it("answers 404 for an endpoint of another subscription, even to the admin", async () => {
    const { webhookId } = await subscriptionWithWebhook()
    const other = await t.subscription()
    for (const [method, url] of [
      ["PATCH", `/api/subscriptions/${other.id}/webhooks/${webhookId}`],
      ["DELETE", `/api/subscriptions/${other.id}/webhooks/${webhookId}`],
      ["GET", `/api/subscriptions/${other.id}/webhooks/${webhookId}/deliveries`],
      ["POST", `/api/subscriptions/${other.id}/webhooks/${webhookId}/test`],
    ] as const) {
      const res = await t.request({
        method,
        url,
        ...(method === "PATCH" ? { payload: { enabled: true } } : {}),
      })
      expect(res.statusCode, `${method} ${url}`).toBe(404)
      expect(res.json().error.code).toBe("not_found")
    }
  })

  it("refuses loopback, private and metadata receivers unless the operator allows private networks", async () => {
    const guarded = new AlertService({ database: t.container.database, clock, allowPrivateNetworks: false })
    const sub = await t.subscription()
    for (const url of [
      "http://127.0.0.1:9/hook",
      "http://localhost/hook",
      "http://10.1.2.3/hook",
      "http://169.254.169.254/latest/meta-data",
      "http://[::1]/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "https://user:pass@example.com/hook",
    ]) {
      await expect(
        guarded.createEndpoint(sub.id, { url, eventTypes: ["rate_limit.exceeded"] }),
        url,
      ).rejects.toMatchObject({ code: "validation_error", details: { field: "url" } })
    }
    await expect(
      guarded.createEndpoint(sub.id, {
        url: "https://hooks.example.com/omnimeter",
        eventTypes: ["rate_limit.exceeded"],
      }),
    ).resolves.toMatchObject({ url: "https://hooks.example.com/omnimeter" })
    const sender = new HttpWebhookSender({ timeoutMs: 300, allowPrivateNetworks: false })
    const refused = await sender.send({ url: receiver.url, body: "{}", headers: {} })
    expect(refused).toMatchObject({ delivered: false, status: null })
    expect(receiver.received.some((r) => r.body === "{}")).toBe(false)
  })
})

describe("quota.threshold_reached through the outbox", () => {
  it("delivers a signed event a receiver can verify, and a forged or replayed one fails verification", async () => {
    const { sub, secret } = await subscriptionWithWebhook(1000)
    await consume(sub.entityId, 600)
    await drain(worker())
    const got = forSubscription(sub.id)
    expect(got).toHaveLength(1)
    const hook = got[0]
    if (!hook) throw new Error("no webhook")
    const body = JSON.parse(hook.body)
    expect(body).toMatchObject({
      type: "quota.threshold_reached",
      subscription_id: sub.id,
      data: { threshold: 0.5, used_tokens: 600, token_limit: 1000 },
    })
    expect(hook.eventId).toBe(body.id)
    const header = String(hook.headers["omnimeter-signature"])
    const now = clock.now() / 1000
    expect(verifyWebhookSignature(secret, header, hook.body, now)).toMatchObject({ valid: true })
    expect(verifyWebhookSignature(secret, header, hook.body.replace("600", "601"), now).valid).toBe(false)
    expect(verifyWebhookSignature("whsec_wrong", header, hook.body, now).valid).toBe(false)
    expect(verifyWebhookSignature(secret, header, hook.body, now + 3600).valid).toBe(false)
  })

  it("fires each threshold once per period under concurrent consumption, and not again after a refund", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    const decisions = await Promise.all(Array.from({ length: 60 }, () => consume(sub.entityId, 20)))
    expect(decisions.filter((d) => d.allowed)).toHaveLength(50)
    const first = decisions.find((d) => d.allowed)
    if (!first?.allowed) throw new Error("nothing allowed")
    // A refund takes the counter below 100% and 95%; crossing them again in the same period is silent.
    await t.container.meter.settle(first.usageId, { actualTokens: 0 })
    await consume(sub.entityId, 20)
    const alerts = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/alerts`,
      key: sub.key,
    })
    expect(alerts.statusCode).toBe(200)
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/alerts", alerts)
    const thresholds = alerts
      .json()
      .alerts.map((a: { data: { threshold: number } }) => Number(a.data.threshold))
      .sort()
    expect(thresholds).toEqual([0.5, 0.8, 0.95, 1])
    await drain(worker())
    const types = forSubscription(sub.id).map((r) => JSON.parse(r.body).data.threshold)
    expect(types).toEqual([0.5, 0.8, 0.95, 1])
  })

  it("fires again in the next billing period", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    await consume(sub.entityId, 500)
    clock.advance(31 * 24 * 3_600_000)
    await consume(sub.entityId, 500)
    const res = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/alerts?type=quota.threshold_reached`,
    })
    expect(res.json().alerts).toHaveLength(2)
  })

  it("follows the subscription's own thresholds", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    const put = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/alert-settings`,
      key: sub.key,
      payload: { quota_thresholds: [0.9, 0.25] },
    })
    expect(put.statusCode, put.body).toBe(200)
    expect(put.json()).toEqual({ quota_thresholds: [0.25, 0.9] })
    expectDocumented(t.app, "PUT", "/api/subscriptions/:id/alert-settings", put)
    await consume(sub.entityId, 600)
    const res = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alerts`, key: sub.key })
    expect(res.json().alerts.map((a: { data: { threshold: number } }) => Number(a.data.threshold))).toEqual([
      0.25,
    ])
    const bad = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/alert-settings`,
      payload: { quota_thresholds: [0.5, 0.5] },
    })
    expect(bad.statusCode).toBe(400)
    expect(bad.json().error.field).toBe("quota_thresholds")
    const unchanged = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alert-settings` })
    expect(unchanged.json()).toEqual({ quota_thresholds: [0.25, 0.9] })
  })

  it("raises a threshold that a new limit or new thresholds bring within reach, at the next turn", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    await consume(sub.entityId, 100)
    await consume(sub.entityId, 100)
    const thresholdsRaised = async () => {
      const res = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alerts`, key: sub.key })
      return res
        .json()
        .alerts.map((a: { data: { threshold: number } }) => Number(a.data.threshold))
        .sort()
    }
    expect(await thresholdsRaised()).toEqual([])
    // At 200 of 1000 the next default mark is 500; new thresholds put one at 250.
    const put = await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/alert-settings`,
      key: sub.key,
      payload: { quota_thresholds: [0.25, 0.9] },
    })
    expect(put.statusCode, put.body).toBe(200)
    await consume(sub.entityId, 100)
    expect(await thresholdsRaised()).toEqual([0.25])
    // At 300 of 1000 the next mark is 900; a limit of 400 puts it at 360.
    await t.container.meter.updateSubscription(sub.id, { tokenLimit: 400 })
    await consume(sub.entityId, 70)
    expect(await thresholdsRaised()).toEqual([0.25, 0.9])
  })

  it("lists alerts newest first, a page at a time", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    await t.request({
      method: "PUT",
      url: `/api/subscriptions/${sub.id}/alert-settings`,
      payload: { quota_thresholds: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7] },
    })
    await consume(sub.entityId, 1000)
    const seen: number[] = []
    let url = `/api/subscriptions/${sub.id}/alerts?limit=3`
    for (let page = 0; page < 5; page += 1) {
      const res = await t.request({ method: "GET", url, key: sub.key })
      expect(res.statusCode).toBe(200)
      seen.push(...res.json().alerts.map((a: { data: { threshold: number } }) => Number(a.data.threshold)))
      const next = res.json().next_before
      if (next === null) break
      url = `/api/subscriptions/${sub.id}/alerts?limit=3&before=${next}`
    }
    expect(seen).toEqual([0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
  })

  it("writes no outbox row for a disabled endpoint or one that did not ask for the event", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000, ["rate_limit.exceeded"])
    await consume(sub.entityId, 600)
    const log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
    })
    expect(log.json().deliveries).toEqual([])
  })
})

describe("delivery: retries, order, restarts, competing workers", () => {
  it("retries a failing receiver with backoff and logs status, attempts and the last error", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000)
    receiver.respond = (hook, attempt) => (hook.body.includes(sub.id) && attempt < 2 ? 503 : 200)
    await consume(sub.entityId, 500)
    const w = worker()
    expect(await w.runOnce()).toBe(1)
    expect(await w.runOnce()).toBe(0) // not due yet: backoff
    let log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
      key: sub.key,
    })
    expectDocumented(t.app, "GET", "/api/subscriptions/:id/webhooks/:webhook_id/deliveries", log)
    expect(log.json().deliveries[0]).toMatchObject({
      status: "pending",
      attempts: 1,
      last_status_code: 503,
      last_error: "HTTP 503: receiver says no",
    })
    // random 0.5 with base 1 s: first retry after 750 ms, second after 1500 ms.
    expect(Date.parse(log.json().deliveries[0].next_attempt_at) - clock.now()).toBe(750)
    clock.advance(750)
    expect(await w.runOnce()).toBe(1)
    clock.advance(1499)
    expect(await w.runOnce()).toBe(0)
    clock.advance(1)
    expect(await w.runOnce()).toBe(1)
    log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
    })
    expect(log.json().deliveries[0]).toMatchObject({
      status: "delivered",
      attempts: 3,
      last_status_code: 200,
      last_error: null,
    })
    const attempts = forSubscription(sub.id).map((r) => r.headers["omnimeter-delivery-attempt"])
    expect(attempts).toEqual(["1", "2", "3"])
    expect(new Set(forSubscription(sub.id).map((r) => r.eventId)).size).toBe(1)
  })

  it("gives up after the last attempt and marks the delivery failed, letting later events through", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000)
    receiver.respond = (hook) =>
      hook.body.includes('"threshold":0.5') && hook.body.includes(sub.id) ? 500 : 200
    await consume(sub.entityId, 500)
    await consume(sub.entityId, 300)
    const w = worker({ maxAttempts: 2 })
    await w.runOnce()
    clock.advance(60_000)
    await w.runOnce()
    clock.advance(60_000)
    await drain(w)
    const log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
    })
    expect(
      log.json().deliveries.map((d: { status: string; attempts: number }) => [d.status, d.attempts]),
    ).toEqual([
      ["delivered", 1],
      ["failed", 2],
    ])
  })

  it("keeps order per endpoint: a retrying event holds back the later ones", async () => {
    const { sub } = await subscriptionWithWebhook(1000)
    receiver.respond = (hook, attempt) => (hook.body.includes(sub.id) && attempt === 0 ? 500 : 200)
    await consume(sub.entityId, 500)
    await consume(sub.entityId, 300)
    await consume(sub.entityId, 150)
    const w = worker()
    for (let i = 0; i < 10; i += 1) {
      await w.runOnce()
      clock.advance(60_000)
    }
    const sequence = forSubscription(sub.id).map((r) => JSON.parse(r.body).data.threshold)
    // Each event fails once then succeeds; none overtakes an earlier one.
    expect(sequence).toEqual([0.5, 0.5, 0.8, 0.8, 0.95, 0.95])
  })

  it("loses nothing when the worker restarts mid-retry, and resends a crashed worker's lease only after it expires", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000)
    receiver.respond = (hook, attempt) =>
      hook.body.includes(sub.id) && hook.body.includes('"threshold":0.5') && attempt === 0 ? 502 : 200
    await consume(sub.entityId, 500)
    const before = worker({ owner: "instance-a" })
    await before.runOnce()
    await before.stop() // the process goes away with the event waiting for its retry
    clock.advance(60_000)
    await drain(worker({ owner: "instance-b" }))
    expect(forSubscription(sub.id).map((r) => r.headers["omnimeter-delivery-attempt"])).toEqual(["1", "2"])

    // A worker that crashed after claiming: its lease hides the row until it expires, then it is resent.
    await consume(sub.entityId, 300)
    const leased = await claimDeliveries(t.container.database.db, {
      now: new Date(clock.now()),
      owner: "crashed",
      leaseMs: 60_000,
      limit: 10,
    })
    expect(leased).toHaveLength(1)
    const survivor = worker({ owner: "instance-c" })
    expect(await survivor.runOnce()).toBe(0)
    clock.advance(60_000)
    expect(await survivor.runOnce()).toBe(1)
    const log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
    })
    expect(log.json().deliveries.map((d: { status: string }) => d.status)).toEqual(["delivered", "delivered"])
  })

  it("never delivers one event twice when several workers compete", async () => {
    const subs = await Promise.all(Array.from({ length: 4 }, () => subscriptionWithWebhook(1000)))
    for (const { sub } of subs) {
      await consume(sub.entityId, 1000)
    }
    const workers = Array.from({ length: 4 }, (_, i) => worker({ owner: `w${i}` }))
    for (let round = 0; round < 8; round += 1) await Promise.all(workers.map((w) => w.runOnce()))
    for (const { sub } of subs) {
      const ids = forSubscription(sub.id).map((r) => r.eventId)
      expect(ids).toHaveLength(4)
      expect(new Set(ids).size).toBe(4)
      expect(forSubscription(sub.id).map((r) => JSON.parse(r.body).data.threshold)).toEqual([
        0.5, 0.8, 0.95, 1,
      ])
    }
  })

  it("times out a receiver that never answers, without holding up the consume path", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000)
    receiver.respond = (hook) => (hook.body.includes(sub.id) ? "hang" : 200)
    await consume(sub.entityId, 500)
    const w = worker({ timeoutMs: 300 })
    const pass = w.runOnce()
    // Consumption goes on while the worker waits for the receiver.
    const decision = await consume(sub.entityId, 10)
    expect(decision.allowed).toBe(true)
    await pass
    const log = await t.request({
      method: "GET",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/deliveries`,
    })
    expect(log.json().deliveries[0]).toMatchObject({
      status: "pending",
      attempts: 1,
      last_error: "timed out after 300 ms",
    })
  })

  it("sends a test event to one endpoint on request", async () => {
    const { sub, webhookId, secret } = await subscriptionWithWebhook(1000)
    const res = await t.request({
      method: "POST",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}/test`,
      key: sub.key,
    })
    expect(res.statusCode, res.body).toBe(202)
    expectDocumented(t.app, "POST", "/api/subscriptions/:id/webhooks/:webhook_id/test", res)
    await drain(worker())
    const got = receiver.received.filter((r) => r.eventId === res.json().event_id)
    expect(got).toHaveLength(1)
    expect(got[0]?.eventType).toBe("webhook.test")
    const hook = got[0]
    if (!hook) throw new Error("no test event")
    expect(
      verifyWebhookSignature(
        secret,
        String(hook.headers["omnimeter-signature"]),
        hook.body,
        clock.now() / 1000,
      ).valid,
    ).toBe(true)
    // Test events are not alerts.
    const alerts = await t.request({ method: "GET", url: `/api/subscriptions/${sub.id}/alerts` })
    expect(alerts.json().alerts).toEqual([])
  })

  it("deletes an endpoint with its log", async () => {
    const { sub, webhookId } = await subscriptionWithWebhook(1000)
    await consume(sub.entityId, 500)
    const del = await t.request({
      method: "DELETE",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}`,
      key: sub.key,
    })
    expect(del.statusCode).toBe(204)
    const again = await t.request({
      method: "DELETE",
      url: `/api/subscriptions/${sub.id}/webhooks/${webhookId}`,
    })
    expect(again.statusCode).toBe(404)
    expectDocumented(t.app, "DELETE", "/api/subscriptions/:id/webhooks/:webhook_id", again)
    await drain(worker())
    expect(forSubscription(sub.id)).toEqual([])
  })
})
