/**
 * The dashboard shows a subscription's shared capacity and what was shed for higher priorities (Overview),
 * and sets the capacity, curve and reserve (Configuration), showing the API's message next to the field it
 * names.
 */
import type { Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../../src/server.js"
import type { ConsoleError } from "../support/browser.js"
import {
  callApi,
  type DashboardFixture,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_capacity_key_0123456789abcdef"

let dashboard: DashboardFixture
let server: RunningServer
let page: Page
let errors: ConsoleError[]
let expectedRefusals: string[] = []
let subscription: { id: string; entity_id: string }

function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  return callApi<T>(server.url, ADMIN_KEY, path, init)
}

async function text(selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

async function open(link: string): Promise<void> {
  await page.goto(`${server.url}/`)
  const signOut = page.getByRole("button", { name: "Sign out" })
  const keyField = page.getByLabel("API key")
  await signOut.or(keyField).waitFor()
  if (await signOut.isVisible()) await signOut.click()
  await keyField.fill(ADMIN_KEY)
  await page.getByRole("button", { name: "Sign in" }).click()
  await page.getByRole("button", { name: subscription.entity_id, exact: true }).click()
  await page.getByRole("heading", { name: "Overview" }).waitFor()
  if (link === "Overview") return
  await page.getByRole("link", { name: link, exact: true }).click()
  await page.getByRole("heading", { name: link, level: 1 }).waitFor()
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18880, 18900] })
  ;({ server, page, errors } = dashboard)
  subscription = await api("/api/subscriptions", {
    method: "POST",
    body: {
      entity_id: "aaa-priority-shop",
      entity_type: "organization",
      plan: "enterprise",
      tokens_per_minute: 1000,
    },
  })
  await api(`/api/onboarding/subscription/${subscription.id}/channels/api/config`, {
    method: "PUT",
    body: { priority: 2, token_multiplier: 1 },
  })
  // Priority 2 may fill 56% of 1,000 tokens: five turns of 100 pass, three are shed.
  for (let i = 0; i < 8; i += 1) {
    await fetch(`${server.url}/api/tokens/consume`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({
        entity_id: subscription.entity_id,
        entity_type: "organization",
        channel: "api",
        estimated_tokens: 100,
      }),
    })
  }
})

afterAll(async () => {
  await dashboard?.close()
})

afterEach(() => {
  const unexpected = takeUnexpectedErrors(errors, expectedRefusals, /status of 400/)
  expectedRefusals = []
  expect(unexpected).toEqual([])
})

describe("shared capacity in the dashboard", () => {
  it("shows the capacity and each channel's shed turns on the Overview, as analytics counts them", async () => {
    await open("Overview")
    // The turns above were shed today, which the default period (complete days) leaves out.
    await page.getByRole("button", { name: "Today (partial)" }).click()
    await page.locator('[data-testid="shedding"]').waitFor()
    await expect.poll(() => text('[data-testid="shed-total"]')).toBe("3")
    await screenshot(page, "capacity-01-overview")
    expect(await text('[data-testid="shared-capacity"]')).toBe("1,000 tokens per minute")
    expect(await text('[data-testid="shed-total"]')).toBe("3")
    expect(await text('[data-testid="shedding-table"] tr[data-channel="api"] td')).toBe("3")
  })

  it("sets the capacity, curve and reserve on the Configuration page, and names the field of a bad curve", async () => {
    await open("Configuration")
    const form = page.locator('[data-testid="shared-capacity-form"]')
    await form.waitFor()
    const cells = await page
      .locator('[data-testid="priority-curve"] tbody td')
      .evaluateAll((nodes) => nodes.map((n) => (n.textContent ?? "").trim()))
    expect(cells).toEqual(["50%", "56%", "61%", "67%", "72%", "78%", "83%", "89%", "94%", "100%"])
    expectedRefusals = [`/api/subscriptions/${subscription.id}`]
    await page.getByLabel("Priority curve").fill("50, 40, 60, 70, 80, 90, 95, 96, 97, 100")
    await form.getByRole("button", { name: "Save" }).click()
    const problem = page.locator("#shared-priority_curve-error")
    await problem.waitFor()
    expect(await problem.textContent()).toContain("priority 2 (40%) is below priority 1 (50%)")
    await screenshot(page, "capacity-02-bad-curve")

    await page.getByLabel("Priority curve").fill("")
    await page.getByLabel("Shared tokens per minute").fill("2000")
    await page.getByLabel("Quota reserve (%)").fill("10")
    await form.getByRole("button", { name: "Save" }).click()
    await form.getByRole("status").filter({ hasText: "Saved" }).waitFor()
    await screenshot(page, "capacity-03-saved")
    expect(await api(`/api/subscriptions/${subscription.id}`)).toMatchObject({
      tokens_per_minute: 2000,
      priority_curve: null,
      quota_reserve_percent: 10,
    })
  })
})
