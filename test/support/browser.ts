/**
 * Debian's Chromium (/usr/bin/chromium, installed by .ci/run from the distribution's packages) driven by
 * playwright-core: no browser download. Each launch gets a fresh profile (--user-data-dir, which
 * playwright passes for a persistent context), and every console
 * error or uncaught page error is collected so a test can fail on it.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

export const CHROMIUM_PATH = process.env.OMNIMETER_TEST_CHROMIUM ?? "/usr/bin/chromium"

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH)
}

/** A console error or uncaught page error, with the URL it names (a failed resource's address). */
export interface ConsoleError {
  text: string
  url: string
}

export interface TestBrowser {
  context: BrowserContext
  /** A new tab (its own sessionStorage) whose console errors and page errors are collected in `errors`. */
  page(options?: { width?: number; height?: number }): Promise<{ page: Page; errors: ConsoleError[] }>
  close(): Promise<void>
}

export async function launchBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "omnimeter-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    locale: "en-US",
    timezoneId: "UTC",
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--lang=en-US",
    ],
  })
  return {
    context,
    async page(options = {}) {
      const page = await context.newPage()
      await page.setViewportSize({ width: options.width ?? 1280, height: options.height ?? 900 })
      const errors: ConsoleError[] = []
      page.on("console", (message) => {
        if (message.type() === "error") errors.push({ text: message.text(), url: message.location().url })
      })
      page.on("pageerror", (error) => errors.push({ text: `uncaught: ${error.message}`, url: page.url() }))
      return { page, errors }
    },
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
