/**
 * A defended server (issue 11, defects 7 and 8), over real sockets: slow clients are cut off by the
 * request and headers timeouts, a caller without a valid key is answered before its body is read, bodies
 * are limited per route, and errors Node raises before routing (431, 408) are in the one envelope with
 * X-Request-Id.
 */
import net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/http.js"

let t: TestApp
let port: number

beforeAll(async () => {
  t = await startTestApp({
    env: {
      OMNIMETER_REQUEST_TIMEOUT_MS: "2000",
      OMNIMETER_HEADERS_TIMEOUT_MS: "1000",
      OMNIMETER_KEEP_ALIVE_TIMEOUT_MS: "500",
    },
  })
  await t.app.listen({ host: "127.0.0.1", port: 0 })
  const address = t.app.server.address()
  port = typeof address === "object" && address ? address.port : 0
})
afterAll(async () => t?.close())

interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
  /** Milliseconds from connecting to the server closing the connection. */
  closedAfterMs: number
}

/**
 * Opens a connection, writes `head`, then `chunks` one every `everyMs` (stopping when the server answers or
 * closes), and resolves with what the server said once it closes the connection.
 */
function rawRequest(head: string, chunks: string[] = [], everyMs = 0): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = net.connect({ host: "127.0.0.1", port })
    let received = ""
    let timer: NodeJS.Timeout | undefined
    socket.setEncoding("latin1")
    socket.on("data", (data: string) => {
      received += data
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      clearInterval(timer)
      const [headText = "", ...rest] = received.split("\r\n\r\n")
      const [statusLine = "", ...headerLines] = headText.split("\r\n")
      const headers = Object.fromEntries(
        headerLines.map((line) => {
          const at = line.indexOf(":")
          return [line.slice(0, at).toLowerCase(), line.slice(at + 1).trim()]
        }),
      )
      resolve({
        status: Number(statusLine.split(" ")[1]),
        headers,
        body: rest.join("\r\n\r\n"),
        closedAfterMs: Date.now() - started,
      })
    })
    socket.on("connect", () => {
      socket.write(head)
      const queue = [...chunks]
      if (queue.length === 0) return
      timer = setInterval(() => {
        const next = queue.shift()
        if (next === undefined || received !== "" || socket.destroyed) {
          clearInterval(timer)
          return
        }
        socket.write(next)
      }, everyMs)
    })
    setTimeout(() => {
      socket.destroy()
      reject(new Error(`no close within 15 s; received so far: ${received.slice(0, 200)}`))
    }, 15_000)
  })
}

function expectEnvelope(answer: RawAnswer, status: number, code: string) {
  expect(answer.status).toBe(status)
  const body = JSON.parse(answer.body) as { error: { code: string; request_id: string } }
  expect(body.error.code).toBe(code)
  expect(body.error.request_id).toMatch(/\S/)
  expect(answer.headers["x-request-id"]).toBe(body.error.request_id)
}

describe("errors before routing are in the envelope", () => {
  it("headers over 16 kB answer 431 in the envelope with X-Request-Id", async () => {
    const answer = await rawRequest(
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${"a".repeat(20_000)}\r\n\r\n`,
    )
    expectEnvelope(answer, 431, "request_header_fields_too_large")
  })

  it("a URL over 16 kB answers 431 in the envelope with X-Request-Id", async () => {
    const answer = await rawRequest(`GET /healthz?q=${"a".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
    expectEnvelope(answer, 431, "request_header_fields_too_large")
  })

  it("U+0000 in the Idempotency-Key header answers 400 in the envelope", async () => {
    const answer = await rawRequest(
      `POST /api/tokens/consume HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nIdempotency-Key: a\u0000b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    )
    expectEnvelope(answer, 400, "validation_error")
  })

  it("malformed HTTP answers 400 in the envelope", async () => {
    const answer = await rawRequest("NOT HTTP AT ALL\r\n\r\n")
    expectEnvelope(answer, 400, "validation_error")
  })
})

describe("slow clients are cut off", () => {
  it("a body trickled one byte at a time, with a valid key, is cut off by the request timeout (408)", async () => {
    const answer = await rawRequest(
      `POST /api/subscriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      Array.from({ length: 100 }, () => " "),
      300,
    )
    expectEnvelope(answer, 408, "request_timeout")
    expect(answer.closedAfterMs).toBeLessThan(6000)
  })

  it("an import trickled past the request timeout answers 408 with what it committed, equal to the ledger", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    const lines = Array.from(
      { length: 1500 },
      (_, i) =>
        `${JSON.stringify({ subscription_id: sub.id, channel: "api", created_at: "2026-03-01T00:00:00Z", raw_tokens: 3, session_id: `s${i}` })}\n`,
    ).join("")
    const answer = await rawRequest(
      `POST /api/usage/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 10000000\r\n\r\n${lines}`,
      Array.from({ length: 100 }, () => " "),
      300,
    )
    expectEnvelope(answer, 408, "request_timeout")
    const report = JSON.parse(answer.body).import
    const counted = await t.container.database.db
      .selectFrom("token_usage_logs")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("subscription_id", "=", sub.id)
      .executeTakeFirstOrThrow()
    expect(report).toMatchObject({ imported: 1500, rejected_count: 0, resume_from_line: 1501 })
    expect(Number(counted.n)).toBe(1500)
  })

  it("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
    const answer = await rawRequest("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
    expect(answer.status).toBe(200)
    expect(answer.headers.connection).toBe("keep-alive")
    expect(answer.closedAfterMs).toBeGreaterThanOrEqual(400)
    expect(answer.closedAfterMs).toBeLessThan(3000)
  })

  it("headers trickled one byte at a time are cut off by the headers timeout", async () => {
    const answer = await rawRequest(
      "GET /healthz HTTP/1.1\r\n",
      Array.from({ length: 100 }, () => "X"),
      200,
    )
    expectEnvelope(answer, 408, "request_timeout")
    expect(answer.closedAfterMs).toBeLessThan(5000)
  })
})

describe("authentication comes before the body", () => {
  it.each([
    ["no key", ""],
    ["an unknown key", "Authorization: Bearer om_unknown_key_0123456789abcdef\r\n"],
  ])(
    "a 1 MB body with %s is answered 401 at once, without being read, and the connection is closed",
    async (_name, authorization) => {
      // Only 1 kB of the announced 1 MB is ever sent: the answer cannot wait for the body.
      const answer = await rawRequest(
        `POST /api/tokens/consume HTTP/1.1\r\nHost: x\r\n${authorization}Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n${"{".padEnd(1024, " ")}`,
      )
      expectEnvelope(answer, 401, "unauthorized")
      expect(answer.headers.connection).toBe("close")
      expect(answer.closedAfterMs).toBeLessThan(1000)
    },
  )

  it("an import with no key is answered 401 without reading its stream", async () => {
    const answer = await rawRequest(
      `POST /api/usage/import HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000000\r\n\r\n{}\n`,
    )
    expectEnvelope(answer, 401, "unauthorized")
    expect(answer.closedAfterMs).toBeLessThan(1000)
  })
})

describe("body limits per route", () => {
  it("a JSON call other than consume refuses a body over 64 kB with 413", async () => {
    const res = await t.request({
      method: "POST",
      url: "/api/subscriptions",
      payload: { entity_id: "x".repeat(70_000), entity_type: "organization", plan: "basic" },
    })
    expect(res.statusCode).toBe(413)
    expect(res.json().error.code).toBe("payload_too_large")
  })

  it("consume accepts a 200 kB message (its own, larger limit)", async () => {
    const sub = await t.subscription({ plan: "enterprise" })
    const res = await t.request({
      method: "POST",
      url: "/api/tokens/consume",
      payload: {
        entity_id: sub.entityId,
        entity_type: "organization",
        channel: "api",
        estimated_tokens: 1,
        message: "m".repeat(200_000),
      },
    })
    // The body is read and the turn decided: too long for the channel's own message limit, not for the server.
    expect(res.json()).toMatchObject({ allowed: false, reason: "message_too_long", message_length: 200_000 })
  })
})
