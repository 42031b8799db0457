/**
 * What the dashboard's browser suites share: a server on demo data (an in-memory PGlite holding a copy of
 * the demo seeded once for the run, 60 days of synthetic traffic) serving the dashboard built once for the
 * run, a Chromium tab, the API called as the admin, screenshots, and the check that a test left no console
 * error it did not provoke on purpose.
 */
import { mkdirSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import type { Page } from "playwright-core"
import { inject } from "vitest"
import { loadConfig } from "../../src/config.js"
import type { Subscription } from "../../src/core/subscription.js"
import { type RunningServer, startServer } from "../../src/server.js"
import { openDatabase } from "../../src/storage/database.js"
import { type ConsoleError, launchBrowser, type TestBrowser } from "./browser.js"
import { seedDashboardDemo, seedStillCurrent, snapshotSubscriptions } from "./demo.js"

export const SCREENSHOTS = resolve("test-results/screenshots")

export interface DashboardFixture {
  server: RunningServer
  demo: Subscription[]
  browser: TestBrowser
  /** The main tab, and the console errors it collects. */
  page: Page
  errors: ConsoleError[]
  /** The built dashboard this server serves. */
  dashboardDir: string
  close(): Promise<void>
}

/**
 * Starts the server on the first free port of `ports` (inclusive start, exclusive end) on a copy of the
 * run's demo (test/support/demo.global.ts), opens a tab. When the run's seed is from another calendar day
 * (a midnight passed since, in UTC or a demo zone), or there is none, or `ownDemo` is set, the suite seeds
 * its own demo instead, ending now.
 */
export async function startDashboard(options: {
  adminKey: string
  ports: readonly [number, number]
  env?: Record<string, string>
  /**
   * Seed a demo of the suite's own whose history ends as the suite starts, for figures that move with the
   * time since the history's last turn (a forecast of a spent quota's denied demand projects the last
   * days' billed tokens, which a run's seed minutes old no longer reaches).
   */
  ownDemo?: boolean
}): Promise<DashboardFixture> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const dashboardDir = inject("dashboardDir")
  const snapshot = options.ownDemo ? undefined : inject("demoSnapshot")
  const copy = snapshot && seedStillCurrent(new Date(snapshot.seededAt), new Date()) ? snapshot : undefined
  const database = await openDatabase({
    dataDir: ":memory:",
    ...(copy ? { loadDataDir: new Blob([await readFile(copy.path)], { type: "application/x-tar" }) } : {}),
  })
  let server: RunningServer | undefined
  for (let port = options.ports[0]; port < options.ports[1] && !server; port += 1) {
    const config = loadConfig({
      OMNIMETER_ADMIN_KEY: options.adminKey,
      LOG_LEVEL: "silent",
      HOST: "127.0.0.1",
      PORT: String(port),
      ...options.env,
    })
    try {
      server = await startServer(config, { database }, { dashboardDir, logger: false })
    } catch (error) {
      if (!(error instanceof Error && /EADDRINUSE/.test(error.message))) throw error
    }
  }
  if (!server) throw new Error(`no free port in ${options.ports[0]}-${options.ports[1] - 1}`)
  const running = server
  const demo = copy ? snapshotSubscriptions(copy) : await seedDashboardDemo(running.container, new Date())
  const browser = await launchBrowser()
  const { page, errors } = await browser.page()
  return {
    server: running,
    demo,
    browser,
    page,
    errors,
    dashboardDir,
    close: async () => {
      await browser.close()
      await running.stop()
    },
  }
}

/** Calls the API as `key` and answers its JSON; a non-2xx answer throws with the status and body. */
export async function callApi<T>(
  baseUrl: string,
  key: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${key}`,
      ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  })
  const text = await response.text()
  if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${text}`)
  return (text ? JSON.parse(text) : undefined) as T
}

/** The demo subscription of `entityId`. */
export function demoSubscription(demo: readonly Subscription[], entityId: string): Subscription {
  const found = demo.find((s) => s.entityId === entityId)
  if (!found) throw new Error(`no demo subscription ${entityId}`)
  return found
}

/** A full-page screenshot, from the top so the sticky header sits where it belongs. */
export async function screenshot(target: Page, name: string): Promise<void> {
  await target.evaluate("window.scrollTo(0, 0)")
  await target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

/**
 * Empties `errors` and returns those a test did not provoke: a refused resource (a status matching
 * `refusal`) is expected only on one of `expectedPaths`.
 */
export function takeUnexpectedErrors(
  errors: ConsoleError[],
  expectedPaths: readonly string[],
  refusal: RegExp,
): ConsoleError[] {
  const unexpected = errors.filter(
    (e) =>
      !(
        /Failed to load resource: the server responded with a status of/.test(e.text) &&
        refusal.test(e.text) &&
        expectedPaths.some((path) => e.url.includes(path))
      ),
  )
  errors.length = 0
  return unexpected
}

/** A calendar day in `timeZone`, `offset` days from today (YYYY-MM-DD). */
export function dayIn(timeZone: string, offset = 0): string {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone }).format(new Date())
  const [y, m, d] = today.split("-").map(Number)
  return new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + offset)).toISOString().slice(0, 10)
}
