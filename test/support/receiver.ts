/**
 * A real webhook receiver on loopback (port 0: the OS picks a free port), recording every request. Tests
 * choose its answer per request: a status, or "hang" to never answer.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

export interface ReceivedWebhook {
  headers: Record<string, string | string[] | undefined>
  body: string
  eventId: string
  eventType: string
}

export interface Receiver {
  url: string
  received: ReceivedWebhook[]
  /** Decides the answer to the n-th request (0-based) for this event id. */
  respond: (webhook: ReceivedWebhook, attemptForEvent: number) => number | "hang"
  close(): Promise<void>
}

export async function startReceiver(path = "/hook"): Promise<Receiver> {
  const received: ReceivedWebhook[] = []
  const hanging = new Set<() => void>()
  const receiver: Receiver = {
    url: "",
    received,
    respond: () => 200,
    close: () =>
      new Promise((resolve) => {
        for (const release of hanging) release()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      const webhook: ReceivedWebhook = {
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        eventId: String(req.headers["omnimeter-event-id"]),
        eventType: String(req.headers["omnimeter-event-type"]),
      }
      const attempt = received.filter((r) => r.eventId === webhook.eventId).length
      received.push(webhook)
      const answer = receiver.respond(webhook, attempt)
      if (answer === "hang") {
        const release = () => res.destroy()
        hanging.add(release)
        return
      }
      res.statusCode = answer
      res.end(answer >= 300 ? "receiver says no" : "ok")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`
  return receiver
}
