/**
 * Saved dashboards and the admin console (issue 16) in Chromium, on demo data: the demo's saved view opened
 * by its shareable link with every widget's figures as the analytics API answers them; a view created,
 * refused with the API's field messages, reordered, refused on a stale version, and deleted; the admin's
 * ranking as the overview endpoint answers it; creating a subscription, changing its plan, limit and status,
 * issuing a key shown once and revoking it, disabling, editing and deleting a webhook endpoint; the first-run
 * empty state; all at desktop and phone width, with screenshots, and no console error left unexplained.
 */
import type { Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { loadConfig } from "../../src/config.js"
import type { Subscription } from "../../src/core/subscription.js"
import type { ComprehensiveAnalyticsBody } from "../../src/http/analytics-schemas.js"
import type { SubscriptionOverviewBody } from "../../src/http/routes/admin.js"
import type { DashboardBody } from "../../src/http/routes/dashboards.js"
import { type RunningServer, startServer } from "../../src/server.js"
import { openDatabase } from "../../src/storage/database.js"
import type { ConsoleError, TestBrowser } from "../support/browser.js"
import {
  callApi,
  type DashboardFixture,
  demoSubscription,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_dashboards_key_0123456789abcdef"
const int = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 })

let dashboard: DashboardFixture
let server: RunningServer
let browser: TestBrowser
let page: Page
let errors: ConsoleError[]
let demo: Subscription[]
let expectedRefusals: string[] = []

function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<T> {
  return callApi<T>(server.url, init.key ?? ADMIN_KEY, path, init)
}

async function text(selector: string, target: Page = page): Promise<string> {
  return ((await target.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

/** Signs in afresh (forgetting a key the tab kept) on whatever path `url` opens. */
async function signInAt(target: Page, url: string, key = ADMIN_KEY): Promise<void> {
  await target.goto(url)
  // The tab restores the key it kept (GET /api/me) and then stores it again: a clear while that restore is
  // under way is undone by it, and the page opens signed in, with no key field (seen in CI, where the previous
  // test's queries kept /api/me waiting). So wait for the restore to end: a signed-in page's heading, or the
  // key field. Up to 75 s: embedded PGlite answers one query at a time, behind those the last page asked for.
  const keyField = target.getByLabel("API key")
  await keyField
    .or(target.getByRole("heading", { level: 1 }))
    .first()
    .waitFor({ timeout: 75_000 })
  await target.evaluate("window.sessionStorage.clear()")
  await target.goto(url)
  await keyField.fill(key, { timeout: 75_000 })
  await target.getByRole("button", { name: "Sign in" }).click()
}

async function overflow(target: Page): Promise<number> {
  return target.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18960, 18980] })
  ;({ server, demo, browser, page, errors } = dashboard)
})
afterAll(async () => dashboard?.close())
afterEach(() => {
  const unexpected = takeUnexpectedErrors(errors, expectedRefusals, /status of (400|409)/)
  expectedRefusals = []
  expect(unexpected).toEqual([])
})

describe("saved dashboards", () => {
  it("opens the demo's saved view from the list and by its shareable link, each widget as the API answers", async () => {
    const acme = demoSubscription(demo, "acme-retail")
    const { dashboards } = await api<{ dashboards: DashboardBody[] }>(
      `/api/subscriptions/${acme.id}/dashboards`,
    )
    const saved = dashboards[0]
    if (!saved) throw new Error("the demo saved no dashboard")
    await signInAt(page, `${server.url}/`)
    await page.getByRole("button", { name: "acme-retail", exact: true }).click()
    // The Overview's cost reads the outcomes answer, slow on 60 demo days; on the embedded database's one
    // connection it would hold up the widgets' reads below (issue 14's speed target is not met yet).
    await page.locator('[data-testid="total-cost"]').waitFor({ timeout: 90_000 })
    await page.getByRole("link", { name: "Dashboards", exact: true }).click()
    await page.getByRole("heading", { name: "Dashboards", level: 1 }).waitFor()
    await page.getByRole("link", { name: "Weekly review" }).click()
    await page.getByRole("heading", { name: "Weekly review", level: 1 }).waitFor()
    await page.locator('[data-widget="denials"] [data-testid="widget-denials"]').waitFor()
    await page.waitForLoadState("networkidle")
    const kinds = await page
      .locator("[data-widget]")
      .evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-widget")))
    expect(kinds).toEqual(saved.widgets.map((w) => w.kind))

    // Totals: the last 7 complete days, as the analytics endpoint answers for the days the API resolved.
    const totals = saved.widgets[0]
    expect(totals?.kind).toBe("totals")
    const analytics = await api<ComprehensiveAnalyticsBody>(
      `/api/onboarding/analytics/${acme.id}?from=${totals?.from}&to=${totals?.to}`,
    )
    expect(await text('[data-widget="totals"] [data-testid="total-tokens_used"] [data-value]')).toBe(
      int(analytics.totals.tokens_used),
    )
    expect(await text('[data-widget="totals"] [data-testid="total-message_count"] [data-value]')).toBe(
      int(analytics.totals.message_count),
    )
    expect(await text('[data-widget="totals"] .widget-head p')).toContain("Last 7 days")
    // Quota: the subscription's counter.
    const subscription = await api<{ quota: { used_tokens: number } }>(`/api/subscriptions/${acme.id}`)
    expect(await text('[data-widget="quota"] [data-testid="quota-used"]')).toBe(
      int(subscription.quota.used_tokens),
    )
    // The one-channel trend draws the saved channel.
    const trend = saved.widgets.find((w) => w.kind === "channel_trend")
    expect(await text('[data-widget="channel_trend"] h2')).toBe(trend?.title ?? "")
    await screenshot(page, "dashboards-01-saved-view")

    // The address is the link to share: opened afresh (signed in again), it shows the same view.
    const link = page.url()
    expect(link).toContain(`/dashboards/${saved.id}`)
    expect(await page.locator("#share-link").inputValue()).toBe(link)
    await signInAt(page, link)
    await page.getByRole("heading", { name: "Weekly review", level: 1 }).waitFor()
    // And with the subscription's own key, where the link needs no ?subscription.
    const own = await api<{ key: string }>(`/api/subscriptions/${acme.id}/keys`, { method: "POST", body: {} })
    await signInAt(page, `${server.url}/dashboards/${saved.id}`, own.key)
    await page.getByRole("heading", { name: "Weekly review", level: 1 }).waitFor()
    await page.locator("[data-widget]").first().waitFor()
    expect(await page.locator("[data-widget]").count()).toBe(saved.widgets.length)
  })

  it("creates a view, shows the API's field messages, reorders it, refuses a stale save and deletes it", async () => {
    const globex = demoSubscription(demo, "globex-support")
    const base = `/api/subscriptions/${globex.id}/dashboards`
    expectedRefusals = [base]
    await signInAt(page, `${server.url}/dashboards?subscription=${globex.id}`)
    await page.getByRole("heading", { name: "Dashboards", level: 1 }).waitFor()
    await page.getByRole("link", { name: "New dashboard" }).click()
    await page.getByRole("heading", { name: "New dashboard" }).waitFor()

    // No name: the API's message next to the name.
    await page.getByRole("button", { name: "Save dashboard" }).click()
    await expect.poll(() => text("#dashboard-name ~ .field-error")).toMatch(/^name: /)
    await page.getByLabel("Name").fill("Channel health")
    // A one-channel widget without its channel: the message beside that widget.
    await page.getByRole("button", { name: "Add widget" }).click()
    await page.getByLabel("Widget 2", { exact: true }).selectOption("channel_trend")
    await page.getByRole("button", { name: "Save dashboard" }).click()
    await expect
      .poll(() => text('[data-draft="1"] .field-error'))
      .toBe("widgets.1.channels: a channel_trend widget shows exactly one channel: name one")
    await screenshot(page, "dashboards-02-editor-errors")
    await page.locator('[data-draft="1"]').getByLabel("WhatsApp").check()
    await page.locator('[data-draft="1"]').getByLabel("Title (optional)").fill("WhatsApp daily")
    await page.getByRole("button", { name: "Save dashboard" }).click()
    await page.getByRole("heading", { name: "Channel health", level: 1 }).waitFor()
    await page.locator('[data-widget="channel_trend"] [data-testid="widget-channel-trend"]').waitFor()
    const id = /\/dashboards\/([\w-]+)/.exec(page.url())?.[1]
    const created = await api<DashboardBody>(`${base}/${id}`)
    expect(created.widgets.map((w) => [w.kind, w.channels, w.title])).toEqual([
      ["totals", [], null],
      ["channel_trend", ["whatsapp"], "WhatsApp daily"],
    ])

    // Reorder: the trend first.
    await page.getByRole("button", { name: "Edit" }).click()
    await page.getByRole("button", { name: "Move widget 2 up" }).click()
    await page.getByRole("button", { name: "Save dashboard" }).click()
    await page.getByRole("button", { name: "Edit" }).waitFor()
    await expect
      .poll(async () => (await api<DashboardBody>(`${base}/${id}`)).widgets.map((w) => w.kind))
      .toEqual(["channel_trend", "totals"])
    await page.locator("[data-widget]").first().waitFor()
    expect(await page.locator("[data-widget]").first().getAttribute("data-widget")).toBe("channel_trend")

    // Someone else saves meanwhile: this editor's save is refused, and offers a reload.
    await page.getByRole("button", { name: "Edit" }).click()
    await api(`${base}/${id}`, { method: "PATCH", body: { name: "Channel health (shared)" } })
    await page.getByLabel("Name").fill("My edit")
    await page.getByRole("button", { name: "Save dashboard" }).click()
    await page.getByText("it changed since you read it").waitFor()
    await page.getByRole("button", { name: "Reload the dashboard" }).click()
    await page.getByRole("heading", { name: "Channel health (shared)", level: 1 }).waitFor()

    // Delete, with a second click to confirm.
    await page.getByRole("button", { name: "Delete…" }).click()
    await page.getByRole("button", { name: "Delete “Channel health (shared)”" }).click()
    await page.getByRole("heading", { name: "Dashboards", level: 1 }).waitFor()
    const left = await api<{ dashboards: DashboardBody[] }>(base)
    expect(left.dashboards.map((d) => d.id)).not.toContain(id)
  })

  it("fits a phone's width: the list, a saved view and the editor", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      const initech = demoSubscription(demo, "initech")
      const { dashboards } = await api<{ dashboards: DashboardBody[] }>(
        `/api/subscriptions/${initech.id}/dashboards`,
      )
      await signInAt(phone.page, `${server.url}/dashboards?subscription=${initech.id}`)
      await phone.page.getByRole("link", { name: "Weekly review" }).waitFor()
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
      await screenshot(phone.page, "dashboards-03-phone-list")
      await phone.page.goto(`${server.url}/dashboards/${dashboards[0]?.id}?subscription=${initech.id}`)
      await phone.page.locator('[data-widget="denials"]').waitFor()
      await phone.page.waitForLoadState("networkidle")
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
      await screenshot(phone.page, "dashboards-04-phone-view")
      await phone.page.getByRole("button", { name: "Edit" }).click()
      await phone.page.getByLabel("Name").waitFor()
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
      await screenshot(phone.page, "dashboards-05-phone-editor")
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })
})

describe("the admin console", () => {
  it("ranks the subscriptions as the overview endpoint does, by each measure", async () => {
    await signInAt(page, `${server.url}/`)
    await page.getByRole("heading", { name: "Admin console" }).waitFor()
    for (const [sort, label] of [
      ["tokens_used", "Usage"],
      ["quota_used", "Quota used"],
      ["denied_count", "Denials"],
      ["growth", "Growth"],
    ] as const) {
      await page.getByLabel("Rank by").selectOption({ label })
      const answer = await api<SubscriptionOverviewBody>(`/api/admin/overview?sort=${sort}&days=7&limit=500`)
      await expect
        .poll(() =>
          page
            .locator('[data-testid="ranking"] tbody tr')
            .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-subscription"))),
        )
        .toEqual(answer.subscriptions.map((s) => s.subscription_id))
      const first = answer.subscriptions[0]
      if (!first) throw new Error("no subscriptions ranked")
      const row = `[data-testid="ranking"] tr[data-subscription="${first.subscription_id}"]`
      expect(await text(`${row} [data-metric="tokens_used"]`)).toBe(int(first.tokens_used))
      expect(await text(`${row} [data-metric="quota_used"]`)).toContain(int(first.quota_used_tokens))
    }
    await screenshot(page, "admin-01-console")
  })

  it("creates a subscription, changes its plan, limit and status, issues a key once and revokes it", async () => {
    expectedRefusals = ["/api/subscriptions"]
    await signInAt(page, `${server.url}/`)
    await page.getByRole("heading", { name: "New subscription" }).waitFor()
    await page.getByRole("button", { name: "Create subscription" }).click()
    await expect.poll(() => text(".admin-form .field-error")).toMatch(/^entity_id: /)
    await page.getByLabel("Entity id").fill("e2e-newco")
    await page.getByLabel("Timezone").fill("Europe/Lisbon")
    await page.getByRole("button", { name: "Create subscription" }).click()
    await page.getByRole("heading", { name: "e2e-newco", level: 1 }).waitFor()
    const id = /\/admin\/subscriptions\/([\w-]+)/.exec(page.url())?.[1] ?? ""
    expect((await api<{ plan: string; timezone: string }>(`/api/subscriptions/${id}`)).timezone).toBe(
      "Europe/Lisbon",
    )

    // A bad limit: the API's message beside the field; then a good change.
    await page.getByLabel("Token limit per period").fill("-5")
    await page.getByRole("button", { name: "Save changes" }).click()
    await expect.poll(() => text('form[aria-label="Plan and limits"] .field-error')).toMatch(/^token_limit: /)
    await page.getByLabel("Plan", { exact: true }).selectOption("professional")
    await page.getByLabel("Token limit per period").fill("250000")
    await page.getByLabel("Status").selectOption("suspended")
    await page.getByRole("button", { name: "Save changes" }).click()
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor()
    expect(await api(`/api/subscriptions/${id}`)).toMatchObject({
      plan: "professional",
      token_limit: 250000,
      status: "suspended",
    })

    // A key, shown once: it works, and is gone from the page once stored.
    await page.getByLabel("Label for a new key (optional)").fill("backend")
    await page.getByRole("button", { name: "Issue a key" }).click()
    const key = await text('[data-testid="issued-key"] code')
    expect(key).toMatch(/^om_/)
    expect(await api<{ subscription_id: string }>("/api/me", { key })).toMatchObject({ subscription_id: id })
    await screenshot(page, "admin-02-key-shown-once")
    await page.getByRole("button", { name: "I have stored it" }).click()
    expect(await page.locator('[data-testid="issued-key"]').count()).toBe(0)
    expect(await page.content()).not.toContain(key)
    await page.getByRole("button", { name: /^Revoke key/ }).click()
    await page.getByRole("button", { name: /^Revoke om_/ }).click()
    await page.locator('[data-testid="keys"] .badge-off').waitFor()
    const keys = await api<{ keys: { revoked_at: string | null }[] }>(`/api/subscriptions/${id}/keys`)
    expect(keys.keys.every((k) => k.revoked_at !== null)).toBe(true)
  })

  it("disables, edits and deletes a webhook endpoint", async () => {
    const initech = demoSubscription(demo, "initech")
    const base = `/api/subscriptions/${initech.id}/webhooks`
    expectedRefusals = [base]
    const created = await api<{ id: string }>(base, {
      method: "POST",
      body: { url: "https://hooks.example.com/initech", event_types: ["quota.threshold_reached"] },
    })
    await signInAt(page, `${server.url}/admin/subscriptions/${initech.id}`)
    const row = page.locator(`[data-webhook="${created.id}"]`)
    await row.waitFor()
    await row.getByRole("button", { name: "Disable" }).click()
    await row.getByText("disabled", { exact: true }).waitFor()
    expect((await api<{ webhooks: { id: string; enabled: boolean }[] }>(base)).webhooks).toContainEqual(
      expect.objectContaining({ id: created.id, enabled: false }),
    )
    await row.getByRole("button", { name: "Edit" }).click()
    await row.getByLabel("URL").fill("ftp://hooks.example.com/x")
    await row.getByRole("button", { name: "Save endpoint" }).click()
    await expect.poll(() => text(`[data-webhook="${created.id}"] .field-error`)).toMatch(/^url: /)
    await row.getByLabel("URL").fill("https://hooks.example.com/initech-v2")
    await row.getByLabel("Description").fill("Ops pager")
    await row.getByLabel("Usage spike", { exact: true }).check()
    await row.getByRole("button", { name: "Save endpoint" }).click()
    await row.getByText("https://hooks.example.com/initech-v2").waitFor()
    const edited = (
      await api<{ webhooks: { id: string; url: string; description: string; event_types: string[] }[] }>(base)
    ).webhooks.find((w) => w.id === created.id)
    expect(edited).toMatchObject({
      url: "https://hooks.example.com/initech-v2",
      description: "Ops pager",
      event_types: ["quota.threshold_reached", "usage.spike_detected"],
    })
    await screenshot(page, "admin-03-manage-subscription")
    await row.getByRole("button", { name: "Delete…" }).click()
    await row.getByRole("button", { name: "Delete this endpoint" }).click()
    await expect.poll(() => page.locator(`[data-webhook="${created.id}"]`).count()).toBe(0)
    expect((await api<{ webhooks: { id: string }[] }>(base)).webhooks.map((w) => w.id)).not.toContain(
      created.id,
    )
  })

  it("lets a subscription's own key disable and delete its endpoint on the Alerts page", async () => {
    const globex = demoSubscription(demo, "globex-support")
    const base = `/api/subscriptions/${globex.id}/webhooks`
    const created = await api<{ id: string }>(base, {
      method: "POST",
      body: { url: "https://hooks.example.com/globex", event_types: ["rate_limit.exceeded"] },
    })
    const own = await api<{ key: string }>(`/api/subscriptions/${globex.id}/keys`, {
      method: "POST",
      body: {},
    })
    await signInAt(page, `${server.url}/alerts`, own.key)
    const row = page.locator(`[data-webhook="${created.id}"]`)
    await row.getByRole("button", { name: "Disable" }).click()
    await row.getByText("disabled", { exact: true }).waitFor()
    expect((await api<{ webhooks: { id: string; enabled: boolean }[] }>(base)).webhooks).toContainEqual(
      expect.objectContaining({ id: created.id, enabled: false }),
    )
    await row.getByRole("button", { name: "Delete…" }).click()
    await row.getByRole("button", { name: "Delete this endpoint" }).click()
    await expect.poll(() => page.locator(`[data-webhook="${created.id}"]`).count()).toBe(0)
  })

  it("fits a phone's width: the console and a subscription's page", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      await signInAt(phone.page, `${server.url}/`)
      await phone.page.locator('[data-testid="ranking"]').waitFor()
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
      // Every figure of a ranked subscription is on screen, none behind a sideways scroll.
      for (const metric of ["quota_used", "tokens_used", "denied_count", "growth"]) {
        const box = await phone.page
          .locator(`[data-testid="ranking"] tbody tr [data-metric="${metric}"]`)
          .first()
          .boundingBox()
        expect(box && box.x >= 0 && box.x + box.width <= 390, metric).toBe(true)
      }
      await screenshot(phone.page, "admin-04-phone-console")
      await phone.page.getByRole("link", { name: "Manage acme-retail" }).click()
      await phone.page.getByRole("heading", { name: "acme-retail", level: 1 }).waitFor()
      await phone.page.locator('[data-testid="keys"]').waitFor()
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
      await screenshot(phone.page, "admin-05-phone-manage")
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })

  it("greets a new operator with no subscriptions with the form to create one, not a command line", async () => {
    const database = await openDatabase({ dataDir: ":memory:" })
    let empty: RunningServer | undefined
    for (let port = 18980; port < 19000 && !empty; port += 1) {
      try {
        empty = await startServer(
          loadConfig({
            OMNIMETER_ADMIN_KEY: ADMIN_KEY,
            LOG_LEVEL: "silent",
            HOST: "127.0.0.1",
            PORT: String(port),
          }),
          { database },
          { dashboardDir: dashboard.dashboardDir, logger: false },
        )
      } catch (error) {
        if (!(error instanceof Error && /EADDRINUSE/.test(error.message))) throw error
      }
    }
    if (!empty) throw new Error("no free port")
    try {
      await signInAt(page, `${empty.url}/`)
      await page.getByText("No subscriptions yet").waitFor()
      const body = await text("main")
      expect(body).not.toMatch(/curl|POST \/api/)
      await page.getByLabel("Entity id").fill("first-customer")
      await page.getByRole("button", { name: "Create subscription" }).click()
      await page.getByRole("heading", { name: "first-customer", level: 1 }).waitFor()
      await page.getByRole("link", { name: "Admin console" }).click()
      await page.locator('[data-testid="ranking"]').waitFor()
      expect(await text('[data-testid="ranking"] tbody')).toContain("first-customer")
      await screenshot(page, "admin-06-first-run")
    } finally {
      await empty.stop()
    }
  })
})
