/**
 * The security matrix, one runner for every endpoint table: each endpoint called with no key, a wrong key,
 * a revoked key, another subscription's key, the subscription's own key and the admin key, through the real
 * HTTP layer, checking the status, the error envelope's request id, and the OpenAPI document.
 */
import { describe, expect, it } from "vitest"
import type { TestApp } from "./http.js"
import { expectDocumented } from "./openapi.js"

export type Caller = "none" | "wrong" | "revoked" | "other" | "own" | "admin"

export const CALLERS: readonly Caller[] = ["none", "wrong", "revoked", "other", "own", "admin"]

export interface MatrixEndpoint {
  name: string
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE"
  route: string
  url: () => string
  payload?: () => Record<string, unknown>
  /** Expected status per caller; unlisted: 401 without a valid key, 200 otherwise. */
  expect: Partial<Record<Caller, number>>
  /** Runs before each call (e.g. a fresh turn to settle). */
  before?: () => Promise<void>
  /** False where a denial answers with the decision body as well as the envelope (consume). */
  checkEnvelope?: boolean
}

/** The keys the matrix calls with, read when the tests run (after `beforeAll`). */
export interface MatrixCallers {
  app: () => TestApp
  revokedKey: () => string
  otherKey: () => string
  ownKey: () => string
}

function keyFor(caller: Caller, callers: MatrixCallers): string | null | undefined {
  switch (caller) {
    case "none":
      return null
    case "wrong":
      return "om_sk_this_key_was_never_issued_to_anyone"
    case "revoked":
      return callers.revokedKey()
    case "other":
      return callers.otherKey()
    case "own":
      return callers.ownKey()
    case "admin":
      return undefined // the test app's default: the admin key
  }
}

/** Declares one test per endpoint and caller. */
export function describeSecurityMatrix(endpoints: readonly MatrixEndpoint[], callers: MatrixCallers): void {
  describe.each(endpoints)("$method $route ($name)", (endpoint) => {
    it.each(CALLERS)("answers the %s caller as expected", async (caller) => {
      await endpoint.before?.()
      const t = callers.app()
      const expected = endpoint.expect[caller] ?? (["none", "wrong", "revoked"].includes(caller) ? 401 : 200)
      const key = keyFor(caller, callers)
      const res = await t.request({
        method: endpoint.method,
        url: endpoint.url(),
        ...(endpoint.payload ? { payload: endpoint.payload() } : {}),
        ...(key === undefined ? {} : { key }),
      })
      expect(res.statusCode, res.body).toBe(expected)
      if (expected >= 400 && endpoint.checkEnvelope !== false) {
        expect(res.json().error.request_id).toBe(res.headers["x-request-id"])
      }
      if (expected === 401) expect(res.json().error.code).toBe("unauthorized")
      expectDocumented(t.app, endpoint.method, endpoint.route, res)
    })
  })
}
