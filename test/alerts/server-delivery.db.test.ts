/**
 * The running service delivers webhooks on its own: the server starts the delivery worker, a consume over
 * HTTP that crosses a quota threshold reaches a real receiver, signed, within seconds; stopping the server
 * stops the worker.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { verifyWebhookSignature } from "../../src/alerts/signature.js"
import { loadConfig } from "../../src/config.js"
import { type RunningServer, startServer } from "../../src/server.js"
import type { Database } from "../../src/storage/database.js"
import { openTestDatabase } from "../support/database.js"
import { ADMIN_KEY } from "../support/http.js"
import { type Receiver, startReceiver } from "../support/receiver.js"

let server: RunningServer
let database: Database
let receiver: Receiver

beforeAll(async () => {
  database = await openTestDatabase()
  receiver = await startReceiver()
  const config = loadConfig({
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    PORT: "0",
    LOG_LEVEL: "silent",
    OMNIMETER_WEBHOOK_ALLOW_PRIVATE: "true",
  })
  server = await startServer(config, { database })
})
afterAll(async () => {
  await server.stop()
  await receiver.close()
  await database.close()
})

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
}

describe("webhook delivery in the running service", () => {
  it("sends a signed quota event to the receiver without anyone driving the worker", async () => {
    const entityId = `server-delivery-${Date.now()}`
    const sub = (await (
      await api("POST", "/api/subscriptions", {
        entity_id: entityId,
        entity_type: "organization",
        plan: "basic",
        token_limit: 1000,
      })
    ).json()) as { id: string }
    const hook = (await (
      await api("POST", `/api/subscriptions/${sub.id}/webhooks`, {
        url: receiver.url,
        event_types: ["quota.threshold_reached"],
      })
    ).json()) as { secret: string }
    const consumed = await api("POST", "/api/tokens/consume", {
      entity_id: entityId,
      entity_type: "organization",
      estimated_tokens: 800,
      channel: "website",
    })
    expect(consumed.status).toBe(200)
    const deadline = Date.now() + 15_000
    while (receiver.received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const thresholds = receiver.received.map((r) => JSON.parse(r.body).data.threshold).sort()
    expect(thresholds).toEqual([0.5, 0.8])
    // The worker records a result just after the receiver answers: poll the metric briefly.
    let metrics = ""
    while (!metrics.includes('result="delivered"} 2') && Date.now() < deadline) {
      metrics = await (await fetch(`${server.url}/metrics`)).text()
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(metrics).toContain('omnimeter_webhook_attempts_total{result="delivered"} 2')
    for (const r of receiver.received) {
      expect(
        verifyWebhookSignature(
          hook.secret,
          String(r.headers["omnimeter-signature"]),
          r.body,
          Date.now() / 1000,
        ).valid,
      ).toBe(true)
    }
  })
})
