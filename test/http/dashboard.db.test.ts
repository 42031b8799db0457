/**
 * The dashboard served by the API server: its files at `/`, client-side routes answered with index.html,
 * and the service's own paths (API, docs, OpenAPI, metrics) keeping their 404 envelope. Also GET /api/me,
 * which the dashboard's sign-in reads.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { brotliDecompressSync, gunzipSync } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const html = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" }
// Over the 1 kB under which compressing does not pay.
const BIG_SCRIPT = Array.from({ length: 400 }, (_, i) => `export const value${i} = ${i * 7};`).join("\n")
let dir: string
let t: TestApp

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "omnimeter-dashboard-"))
  mkdirSync(join(dir, "assets"))
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>omnimeter</title><div id=root></div>")
  writeFileSync(join(dir, "assets", "index-abc123.js"), "console.log('dashboard')")
  writeFileSync(join(dir, "assets", "big-def456.js"), BIG_SCRIPT)
  t = await startTestApp({ dashboardDir: dir })
})
afterAll(async () => {
  await t.close()
  rmSync(dir, { recursive: true, force: true })
})

describe("serving the dashboard", () => {
  it("serves index.html at / with a strict content security policy, revalidated on every load", async () => {
    const res = await t.request({ method: "GET", url: "/", key: null, headers: html })
    expect(res.statusCode).toBe(200)
    expect(res.headers["content-type"]).toContain("text/html")
    expect(res.body).toContain("<div id=root>")
    expect(res.headers["cache-control"]).toBe("no-cache")
    expect(res.headers["content-security-policy"]).toContain("script-src 'self'")
    expect(res.headers["x-request-id"]).toBeTruthy()
  })

  it("serves hashed assets with a year-long immutable cache", async () => {
    const res = await t.request({ method: "GET", url: "/assets/index-abc123.js", key: null })
    expect(res.statusCode).toBe(200)
    expect(res.headers["content-type"]).toContain("javascript")
    expect(res.headers["cache-control"]).toContain("immutable")
  })

  it("answers a client-side route such as /configuration with index.html, so a reload works", async () => {
    for (const url of ["/configuration", "/playground", "/channels/whatsapp?from=2026-11-01"]) {
      const res = await t.request({ method: "GET", url, key: null, headers: html })
      expect(res.statusCode, url).toBe(200)
      expect(res.body, url).toContain("<div id=root>")
    }
  })

  it("keeps the 404 envelope for unknown API, docs, OpenAPI and metrics paths, even for a browser", async () => {
    for (const url of [
      "/api/nope",
      "/api",
      "/docs/nope/deeper",
      "/openapi.json/x",
      "/metrics/x",
      "/healthz/x",
    ]) {
      const res = await t.request({ method: "GET", url, key: null, headers: html })
      expect(res.statusCode, url).toBe(404)
      expect(res.json().error.code, url).toBe("not_found")
      expect(res.json().error.request_id).toBe(res.headers["x-request-id"])
    }
  })

  it("keeps the 404 envelope for a missing asset and for non-GET requests", async () => {
    const asset = await t.request({ method: "GET", url: "/assets/missing.js", key: null, headers: html })
    expect(asset.statusCode).toBe(404)
    expect(asset.json().error.code).toBe("not_found")
    const post = await t.request({
      method: "POST",
      url: "/configuration",
      key: null,
      headers: html,
      payload: {},
    })
    expect(post.statusCode).toBe(404)
    expect(post.json().error.code).toBe("not_found")
  })

  it("answers a JSON client's unknown path with the envelope, not the page", async () => {
    const res = await t.request({ method: "GET", url: "/configuration", key: null })
    expect(res.statusCode).toBe(404)
    expect(res.json().error.code).toBe("not_found")
  })

  it("still serves the API docs and the OpenAPI document", async () => {
    const doc = await t.request({ method: "GET", url: "/openapi.json", key: null })
    expect(doc.statusCode).toBe(200)
    expect(doc.json().paths["/api/me"]).toBeDefined()
    expect(Object.keys(doc.json().paths).some((path) => path.startsWith("/assets"))).toBe(false)
    const docs = await t.request({ method: "GET", url: "/docs", key: null, headers: html })
    expect([200, 302]).toContain(docs.statusCode)
  })
})

describe("compressed responses", () => {
  it("sends the dashboard's scripts with brotli or gzip, whichever the browser accepts, and says so", async () => {
    for (const [accept, encoding, decode] of [
      ["br, gzip", "br", brotliDecompressSync],
      ["gzip", "gzip", gunzipSync],
    ] as const) {
      const res = await t.request({
        method: "GET",
        url: "/assets/big-def456.js",
        key: null,
        headers: { "accept-encoding": accept },
      })
      expect(res.statusCode, accept).toBe(200)
      expect(res.headers["content-encoding"], accept).toBe(encoding)
      expect(res.headers.vary, accept).toMatch(/accept-encoding/i)
      expect(res.rawPayload.length, accept).toBeLessThan(BIG_SCRIPT.length / 2)
      expect(decode(res.rawPayload).toString("utf8"), accept).toBe(BIG_SCRIPT)
    }
  })

  it("compresses the API's JSON, and sends it plain to a client that accepts no encoding", async () => {
    const gzipped = await t.request({
      method: "GET",
      url: "/openapi.json",
      key: null,
      headers: { "accept-encoding": "gzip" },
    })
    expect(gzipped.headers["content-encoding"]).toBe("gzip")
    const plain = await t.request({ method: "GET", url: "/openapi.json", key: null })
    expect(plain.headers["content-encoding"]).toBeUndefined()
    expect(JSON.parse(gunzipSync(gzipped.rawPayload).toString("utf8"))).toEqual(plain.json())
    expect(gzipped.rawPayload.length).toBeLessThan(plain.rawPayload.length / 4)
  })

  it("leaves a small JSON answer as it is, where compressing would not pay", async () => {
    const res = await t.request({ method: "GET", url: "/api/me", headers: { "accept-encoding": "br, gzip" } })
    expect(res.headers["content-encoding"]).toBeUndefined()
    expect(res.json()).toEqual({ kind: "admin", subscription_id: null })
  })
})

describe("without a built dashboard", () => {
  it("answers / with the 404 envelope", async () => {
    const bare = await startTestApp({ dashboardDir: join(dir, "does-not-exist") })
    try {
      const res = await bare.request({ method: "GET", url: "/", key: null, headers: html })
      expect(res.statusCode).toBe(404)
      expect(res.json().error.code).toBe("not_found")
    } finally {
      await bare.close()
    }
  })
})

describe("GET /api/me", () => {
  it("tells a subscription key which subscription it belongs to", async () => {
    const owner = await t.subscription()
    const res = await t.request({ method: "GET", url: "/api/me", key: owner.key })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ kind: "subscription", subscription_id: owner.id })
    expectDocumented(t.app, "GET", "/api/me", res)
  })

  it("tells the admin key it is the admin, with no subscription", async () => {
    const res = await t.request({ method: "GET", url: "/api/me" })
    expect(res.json()).toEqual({ kind: "admin", subscription_id: null })
    expectDocumented(t.app, "GET", "/api/me", res)
  })

  it("refuses a missing or unknown key with 401", async () => {
    for (const key of [null, "om_sk_never_issued_to_anyone_at_all"]) {
      const res = await t.request({ method: "GET", url: "/api/me", key })
      expect(res.statusCode).toBe(401)
      expect(res.json().error.code).toBe("unauthorized")
      expectDocumented(t.app, "GET", "/api/me", res)
    }
  })
})
