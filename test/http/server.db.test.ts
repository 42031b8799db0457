/**
 * The service as it runs: listening on a port, used from another language, and shutting down gracefully.
 */
import { execFile } from "node:child_process"
import { once } from "node:events"
import http from "node:http"
import { promisify } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config.js"
import { type RunningServer, startServer } from "../../src/server.js"
import { openTestDatabase } from "../support/database.js"
import { ADMIN_KEY } from "../support/http.js"

const run = promisify(execFile)
let server: RunningServer | undefined
let cleanup: (() => Promise<void>) | undefined

afterEach(async () => {
  await server?.stop()
  await cleanup?.()
  server = undefined
  cleanup = undefined
})

async function start(): Promise<RunningServer> {
  const database = await openTestDatabase()
  cleanup = () => database.close()
  const config = loadConfig({ OMNIMETER_ADMIN_KEY: ADMIN_KEY, PORT: "0", LOG_LEVEL: "silent" })
  server = await startServer(config, { database })
  return server
}

describe("the running service", () => {
  it("serves a Python client written from the README, with the standard library only", async () => {
    const { url } = await start()
    const { stdout } = await run("python3", ["examples/client.py"], {
      env: { ...process.env, OMNIMETER_URL: url, OMNIMETER_ADMIN_KEY: ADMIN_KEY },
    })
    expect(stdout).toContain("consume 200 True 420 RateLimit-Remaining: 59")
    expect(stdout).toContain("settle 200 72")
    expect(stdout).toContain("denied 403 channel_not_in_plan enterprise channel_not_in_plan")
    expect(stdout).toContain("metered 200 tokens, billed 240")
  })

  it("generates an admin key at first start when none is configured, and only then", async () => {
    const database = await openTestDatabase()
    const config = loadConfig({ PORT: "0", LOG_LEVEL: "silent" })
    const first = await startServer(config, { database })
    expect(first.generatedAdminKey).toMatch(/^om_admin_/)
    const ok = await fetch(`${first.url}/api/subscriptions`, {
      headers: { authorization: `Bearer ${first.generatedAdminKey}` },
    })
    expect(ok.status).toBe(200)
    await first.stop()
    const second = await startServer(config, { database })
    expect(second.generatedAdminKey).toBeUndefined()
    await second.stop()
    await database.close()
  })

  it("drains an in-flight request on shutdown, then refuses new connections", async () => {
    const running = await start()
    const target = new URL("/api/usage/import", running.url)
    const arrived = once(running.app.server, "request")
    const request = http.request(target, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/x-ndjson" },
    })
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on("response", (res) => {
        let body = ""
        res.on("data", (chunk) => {
          body += chunk
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
      })
      request.on("error", reject)
    })
    request.write('{"not": "a turn"}\n')
    // The server holds the request, its body still open; only then does shutdown begin.
    await arrived
    const stopped = running.stop()
    // Once the server has stopped listening, the rest of the body arrives: the request is still served.
    while (running.app.server.listening) await new Promise((resolve) => setImmediate(resolve))
    request.end('{"still": "streaming"}\n')
    const finished = await response
    await stopped
    expect(finished.status).toBe(200)
    expect(JSON.parse(finished.body)).toMatchObject({ imported: 0, rejected_count: 2 })
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow()
  })
})
