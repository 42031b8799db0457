// A webhook receiver that verifies omnimeter's signatures, run by the test suite.
//
//   OMNIMETER_WEBHOOK_SECRET=whsec_... PORT=18790 npx tsx examples/verify-webhook.ts   # serve
//   npx tsx examples/verify-webhook.ts                                                 # self-check
//
// Verification: HMAC-SHA256 with the endpoint's secret over `${t}.${raw body}`, compared in constant time
// with the v1 value of the Omnimeter-Signature header (`t=<unix seconds>,v1=<hex>`); reject a t more
// than five minutes away from now (a replay). Use the RAW body: re-serialised JSON does not match.
// Then deduplicate on Omnimeter-Event-Id: a delivery can, rarely, arrive twice.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { signatureHeader, verifyWebhookSignature } from "../src/index.js" // in your project: from "omnimeter"

const secret = process.env.OMNIMETER_WEBHOOK_SECRET || "whsec_example_secret_for_the_self_check"
const seen = new Set<string>()

const server = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8")
    const header = request.headers["omnimeter-signature"]
    const check = verifyWebhookSignature(
      secret,
      typeof header === "string" ? header : undefined,
      body,
      Date.now() / 1000,
    )
    if (!check.valid) {
      response.writeHead(400).end(check.reason)
      return
    }
    const eventId = String(request.headers["omnimeter-event-id"])
    if (!seen.has(eventId)) {
      seen.add(eventId)
      const event = JSON.parse(body) as { type: string; data: unknown }
      console.log(`accepted ${event.type} ${eventId}`)
    }
    response.writeHead(204).end()
  })
})

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", async () => {
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  if (process.env.OMNIMETER_WEBHOOK_SECRET) {
    console.log(`listening on ${url}`)
    return
  }
  // Self-check: one genuine delivery, one forged, one replayed from an hour ago.
  const body = JSON.stringify({ id: "evt_1", type: "webhook.test", data: {} })
  const now = Math.floor(Date.now() / 1000)
  for (const [name, signature] of [
    ["genuine", signatureHeader(secret, now, body)],
    ["forged", signatureHeader("whsec_someone_else", now, body)],
    ["replayed", signatureHeader(secret, now - 3600, body)],
  ] as const) {
    const answer = await fetch(url, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        "omnimeter-signature": signature,
        "omnimeter-event-id": "evt_1",
      },
    })
    console.log(`${name}: ${answer.status} ${await answer.text()}`.trim())
  }
  server.close()
})
