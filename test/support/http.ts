/**
 * An omnimeter app on a fresh test database, driven in-process with `inject` through the real HTTP layer
 * (routing, validation, auth, serialization, error handler).
 */
import type { InjectOptions, LightMyRequestResponse } from "fastify"
import { loadConfig } from "../../src/config.js"
import { buildContainer, type Container } from "../../src/container.js"
import type { Clock } from "../../src/core/clock.js"
import { buildApp } from "../../src/http/app.js"
import type { App } from "../../src/http/types.js"
import type { Database } from "../../src/storage/database.js"
import { openTestDatabase } from "./database.js"

export const ADMIN_KEY = "om_admin_test_key_0123456789abcdef"

export interface TestApp {
  app: App
  container: Container
  request(options: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>
  /** Creates a subscription as the admin and issues it a key. */
  subscription(
    body?: Record<string, unknown>,
  ): Promise<{ id: string; entityId: string; key: string; keyId: string }>
  close(): Promise<void>
}

let counter = 0

export async function startTestApp(
  options: {
    clock?: Clock
    env?: Record<string, string>
    dashboardDir?: string | false
    /** A database opened elsewhere (a fault test's own cluster); closed with the app. */
    database?: Database
  } = {},
): Promise<TestApp> {
  const database = options.database ?? (await openTestDatabase())
  const config = loadConfig({
    OMNIMETER_ADMIN_KEY: ADMIN_KEY,
    LOG_LEVEL: "silent",
    // Journeys answers are computed on every read unless a test asks for stored ones: on a loaded machine a
    // small answer may take over the default second, and a stored one would not show the test's new turns.
    OMNIMETER_JOURNEYS_STORE_AFTER_MS: "3600000",
    ...options.env,
  })
  const container = await buildContainer(config, {
    database,
    ...(options.clock ? { clock: options.clock } : {}),
  })
  await container.keys.ensureAdminKey(config.adminKey)
  // No dashboard unless asked: API tests must not depend on whether web/dist happens to be built.
  const app = await buildApp(container, { logger: false, dashboardDir: options.dashboardDir ?? false })
  await app.ready()

  const request: TestApp["request"] = ({ key = ADMIN_KEY, headers, ...rest }) =>
    app.inject({ ...rest, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } })

  return {
    app,
    container,
    request,
    async subscription(body = {}) {
      counter += 1
      const entityId = `http-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`
      const created = await request({
        method: "POST",
        url: "/api/subscriptions",
        payload: { entity_id: entityId, entity_type: "organization", plan: "enterprise", ...body },
      })
      if (created.statusCode !== 201) throw new Error(`subscription not created: ${created.body}`)
      const id = created.json().id as string
      const issued = await request({
        method: "POST",
        url: `/api/subscriptions/${id}/keys`,
        payload: { label: "test" },
      })
      if (issued.statusCode !== 201) throw new Error(`key not issued: ${issued.body}`)
      return { id, entityId, key: issued.json().key, keyId: issued.json().key_id }
    },
    async close() {
      await app.close()
      await container.close()
      await database.close()
    },
  }
}
