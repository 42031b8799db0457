/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a server started
 * here on demo data (a fresh in-memory PGlite, 60 days of synthetic traffic). Every number on the page is
 * compared with the JSON the API returns for the same question, formatted independently here (en-US).
 * Screenshots of each page go to test-results/screenshots/. A console error fails the test, except the
 * HTTP refusals a test provokes on purpose (named per test).
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import type { Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { Subscription } from "../../src/core/subscription.js"
import type {
  ComparisonBody,
  ComprehensiveAnalyticsBody,
  TrendsBody,
} from "../../src/http/analytics-schemas.js"
import type { SubscriptionBody } from "../../src/http/schemas.js"
import type { RunningServer } from "../../src/server.js"
import type { ConsoleError, TestBrowser } from "../support/browser.js"
import {
  callApi,
  type DashboardFixture,
  demoSubscription,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_key_0123456789abcdefghij"

const int = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 })
const dec = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 2 })
const pct = (n: number) => `${dec(n)}%`
const hour = (h: number) => `${String(h).padStart(2, "0")}:00`

let dashboard: DashboardFixture
let server: RunningServer
let browser: TestBrowser
let page: Page
let errors: ConsoleError[]
let demo: Subscription[]
/** Paths whose 4xx answers the current test provokes on purpose. */
let expectedRefusals: string[] = []

function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<T> {
  return callApi<T>(server.url, init.key ?? ADMIN_KEY, path, init)
}

function byEntity(entityId: string): Subscription {
  return demoSubscription(demo, entityId)
}

function shot(name: string, target: Page = page): Promise<void> {
  return screenshot(target, name)
}

/** Opens the app in the current tab signed in as `key`, on `path`. */
async function signIn(key: string): Promise<void> {
  await page.goto(`${server.url}/`)
  await page.getByLabel("API key").fill(key)
  await page.getByRole("button", { name: "Sign in" }).click()
}

async function pick(entityId: string): Promise<void> {
  await page.getByRole("button", { name: entityId, exact: true }).click()
  await page.getByRole("heading", { name: "Overview" }).waitFor()
}

async function text(selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18640, 18660] })
  ;({ server, demo, browser, page, errors } = dashboard)
})

afterAll(async () => {
  await dashboard?.close()
})

afterEach(() => {
  const unexpected = takeUnexpectedErrors(errors, expectedRefusals, /status of 4\d\d/)
  expectedRefusals = []
  expect(unexpected).toEqual([])
})

describe("the built dashboard", () => {
  it("carries no server code: no Fastify, Kysely, PGlite, Redis or SQL in the bundle", () => {
    const assets = readdirSync(join(dashboard.dashboardDir, "assets")).filter((f) => f.endsWith(".js"))
    expect(assets.length).toBeGreaterThan(1)
    for (const file of assets) {
      const code = readFileSync(join(dashboard.dashboardDir, "assets", file), "utf8")
      for (const marker of [
        "fastify",
        "kysely",
        "electric-sql",
        "ioredis",
        "omnimeter_consume",
        "insert into",
      ]) {
        expect(code.toLowerCase().includes(marker), `${file} contains ${marker}`).toBe(false)
      }
    }
  })
})

describe("the dashboard in Chromium", () => {
  it("refuses an unknown key with a message next to the field", async () => {
    expectedRefusals = ["/api/me"]
    await page.goto(`${server.url}/`)
    await shot("01-sign-in")
    await page.getByLabel("API key").fill("om_sk_this_key_was_never_issued")
    await page.getByRole("button", { name: "Sign in" }).click()
    await expect.poll(() => text("#api-key-error")).toBe("This key is unknown or revoked.")
  })

  it("signs the admin in, lists every subscription, and opens one", async () => {
    await signIn(ADMIN_KEY)
    await page.getByRole("heading", { name: "Subscriptions" }).waitFor()
    for (const s of demo) await page.getByRole("button", { name: s.entityId, exact: true }).waitFor()
    await shot("02-subscriptions")
    await pick("acme-retail")
    expect(new URL(page.url()).searchParams.get("subscription")).toBe(byEntity("acme-retail").id)
  })

  it("shows the overview with exactly the numbers the API returns", async () => {
    const acme = byEntity("acme-retail")
    await page.locator('[data-testid="comparison"]').waitFor()
    await shot("03-overview")
    const base = `/api/onboarding/analytics/${acme.id}`
    // The page's own period: the last 30 complete days (the partial-day rule), as the API names them.
    const period = `from=${await page.locator("#period-from").inputValue()}&to=${await page.locator("#period-to").inputValue()}`
    const analytics = await api<ComprehensiveAnalyticsBody>(`${base}?${period}`)
    const comparison = await api<ComparisonBody>(`${base}/channels/comparison?${period}`)
    expect(analytics.period.days).toBe(30)
    expect(analytics.period.complete_to).toBe(analytics.period.to)
    const subscription = await api<SubscriptionBody>(`/api/subscriptions/${acme.id}`)
    const t = analytics.totals
    expect(t.message_count).toBeGreaterThan(1000)

    expect(await text('[data-testid="total-tokens_used"] [data-value]')).toBe(int(t.tokens_used))
    expect(await text('[data-testid="total-message_count"] [data-value]')).toBe(int(t.message_count))
    expect(await text('[data-testid="total-unique_users"] [data-value]')).toBe(int(t.unique_users))
    // Next to it, the people (identifiers linked to one person count once).
    expect(await text('[data-testid="total-unique_people"] [data-value]')).toBe(int(t.unique_people))
    expect(await text('[data-testid="total-avg_tokens_per_message"] [data-value]')).toBe(
      dec(t.avg_tokens_per_message),
    )
    expect(await text('[data-testid="total-denied_count"] [data-value]')).toBe(int(t.denied_count))
    expect(await page.locator('[data-testid="total-tokens_used"] .growth').getAttribute("data-growth")).toBe(
      String(t.growth.tokens_used),
    )
    expect(await text("p.timezone")).toContain(analytics.timezone)
    expect(await page.locator("#period-from").inputValue()).toBe(analytics.period.from)
    expect(await page.locator("#period-to").inputValue()).toBe(analytics.period.to)

    const quota = subscription.quota
    if (!quota) throw new Error("no quota in the subscription")
    expect(await text('[data-testid="quota-used"]')).toBe(int(quota.used_tokens))
    expect(await text('[data-testid="quota-remaining"]')).toBe(int(quota.remaining_tokens))
    expect(await text('[data-testid="quota-limit"]')).toBe(int(quota.token_limit))

    for (const c of analytics.channels) {
      const item = page.locator(`[data-testid="usage-share"] li[data-channel="${c.channel}"]`)
      expect(await item.locator(".share-value").textContent()).toBe(pct(c.usage_share))
      const cells = page.locator(`[data-testid="heatmap"] tr[data-channel="${c.channel}"] td`)
      expect(await cells.count()).toBe(24)
      const values = await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute("data-value"))))
      expect(values).toEqual(c.hourly_distribution.map((b) => b.tokens_used))
      if (c.peak_usage_hour !== null) {
        expect(await cells.nth(c.peak_usage_hour).getAttribute("class")).toBe("peak")
      }
    }

    const chart = page.locator('[data-testid="daily-trends"]')
    expect(await chart.locator("polyline").count()).toBe(analytics.channels.length)
    const columns = await chart
      .locator("thead th[data-column]")
      .evaluateAll((ths) => ths.map((th) => th.getAttribute("data-column")))
    expect(columns).toEqual(analytics.channels.map((c) => c.channel))
    const rows = await chart
      .locator("tbody tr")
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)))
    expect(rows).toHaveLength(analytics.period.days)
    expect(rows).toEqual(
      analytics.totals.daily_trends.map((_, day) =>
        analytics.channels.map((c) => int(c.daily_trends[day]?.tokens_used ?? Number.NaN)),
      ),
    )

    const table = page.locator('[data-testid="comparison"] tbody tr')
    expect(await table.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-channel")))).toEqual(
      comparison.channels.map((c) => c.channel),
    )
    for (const row of comparison.channels) {
      const cell = (metric: string) =>
        text(`[data-testid="comparison"] tr[data-channel="${row.channel}"] [data-metric="${metric}"]`)
      expect(await cell("tokens_used")).toBe(int(row.tokens_used))
      expect(await cell("usage_share")).toBe(pct(row.usage_share))
      expect(await cell("message_count")).toBe(int(row.message_count))
      expect(await cell("unique_users")).toBe(int(row.unique_users))
      expect(await cell("avg_tokens_per_message")).toMatch(
        new RegExp(`^${dec(row.avg_tokens_per_message)}( best| worst)?$`),
      )
      expect(await cell("peak_usage_hour")).toBe(
        row.peak_usage_hour === null ? "–" : hour(row.peak_usage_hour),
      )
      expect(await cell("efficiency_score")).toMatch(
        new RegExp(`^${row.efficiency_score === null ? "–" : dec(row.efficiency_score)}( best| worst)?$`),
      )
      expect(await cell("performance_rating")).toBe(row.performance_rating ?? "–")
      expect(await cell("trend_direction")).toMatch(new RegExp(`${row.trend_direction}$`))
      expect(
        await page
          .locator(`[data-testid="comparison"] tr[data-channel="${row.channel}"] [data-trend]`)
          .getAttribute("data-trend"),
      ).toBe(row.trend_direction)
      const growth = page.locator(`[data-testid="comparison"] tr[data-channel="${row.channel}"] .growth`)
      expect(await growth.getAttribute("data-growth")).toBe(String(row.growth.tokens_used))
    }
    const best = comparison.best_and_worst.efficiency_score
    if (best) {
      expect(
        await text(
          `[data-testid="comparison"] tr[data-channel="${best.best}"] [data-metric="efficiency_score"]`,
        ),
      ).toMatch(/ best$/)
    }
  })

  it("changes the period with a preset and with the date fields, and the numbers follow", async () => {
    const acme = byEntity("acme-retail")
    await page.getByRole("button", { name: "7 days" }).click()
    await page.waitForURL(/from=/)
    const url = new URL(page.url())
    const from = url.searchParams.get("from") ?? ""
    const to = url.searchParams.get("to") ?? ""
    const week = await api<ComprehensiveAnalyticsBody>(
      `/api/onboarding/analytics/${acme.id}?from=${from}&to=${to}`,
    )
    expect(week.period.days).toBe(7)
    await expect
      .poll(() => text('[data-testid="total-tokens_used"] [data-value]'))
      .toBe(int(week.totals.tokens_used))
    expect(await page.locator('[data-testid="daily-trends"] tbody tr').count()).toBe(7)

    const start = new Date(Date.parse(`${to}T00:00:00Z`) - 13 * 86_400_000).toISOString().slice(0, 10)
    await page.locator("#period-from").fill(start)
    await page.getByRole("button", { name: "Apply" }).click()
    await page.waitForURL(new RegExp(`from=${start}`))
    const fortnight = await api<ComprehensiveAnalyticsBody>(
      `/api/onboarding/analytics/${acme.id}?from=${start}&to=${to}`,
    )
    await expect
      .poll(() => text('[data-testid="total-message_count"] [data-value]'))
      .toBe(int(fortnight.totals.message_count))
    expect(await page.locator('[data-testid="daily-trends"] tbody tr').count()).toBe(14)
    await shot("04-overview-14-days")
  })

  it("opens a channel: its trend by day and by hour, hourly distribution and denials by reason", async () => {
    const acme = byEntity("acme-retail")
    const url = new URL(page.url())
    const query = `from=${url.searchParams.get("from")}&to=${url.searchParams.get("to")}`
    await page.getByRole("link", { name: "WhatsApp details" }).click()
    await page.waitForURL(/\/channels\/whatsapp/)
    const base = `/api/onboarding/analytics/${acme.id}`
    const trends = await api<TrendsBody>(`${base}/channels/whatsapp/trends?${query}`)
    const single = await api<ComprehensiveAnalyticsBody>(`${base}?${query}&channels=whatsapp`)
    await expect
      .poll(() => text('[data-testid="channel-tokens_used"] [data-value]'))
      .toBe(int(trends.summary.tokens_used))
    expect(await text('[data-testid="channel-message_count"] [data-value]')).toBe(
      int(trends.summary.message_count),
    )
    const points = await page
      .locator('[data-testid="channel-trend"] tbody td')
      .evaluateAll((tds) => tds.map((td) => td.textContent))
    expect(points).toEqual(trends.points.map((p) => int(p.tokens_used)))
    const turns = await page
      .locator('[data-testid="channel-turns"] tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)))
    expect(turns).toEqual(trends.points.map((p) => [int(p.message_count), int(p.denied_count)]))
    const hourly = await page
      .locator('[data-testid="hourly-distribution"] tbody td')
      .evaluateAll((tds) => tds.map((td) => td.textContent))
    expect(hourly).toEqual(single.channels[0]?.hourly_distribution.map((b) => int(b.tokens_used)))
    for (const [reason, count] of Object.entries(trends.summary.denied_by_reason)) {
      if (reason === "subscription_not_found") continue
      expect(await text(`[data-testid="denials"] li[data-reason="${reason}"] .hbar-value`)).toBe(int(count))
    }
    expect(trends.summary.denied_by_reason.rate_limited).toBeGreaterThan(0)
    await shot("05-channel-daily")

    await page.getByRole("radio", { name: "By hour" }).check()
    await page.waitForURL(/granularity=hourly/)
    const hourlyTrends = await api<TrendsBody>(`${base}/channels/whatsapp/trends?${query}&granularity=hourly`)
    await expect
      .poll(() => page.locator('[data-testid="channel-trend"] tbody tr').count())
      .toBe(hourlyTrends.points.length)
    expect(hourlyTrends.points.length).toBe(14 * 24)
    const hourPoints = await page
      .locator('[data-testid="channel-trend"] tbody td')
      .evaluateAll((tds) => tds.map((td) => td.textContent))
    expect(hourPoints).toEqual(hourlyTrends.points.map((p) => int(p.tokens_used)))
    await shot("06-channel-hourly")
  })

  it("edits a channel's configuration, which sticks after a reload", async () => {
    const acme = byEntity("acme-retail")
    await page.getByRole("link", { name: "Configuration" }).click()
    const form = page.locator('form[data-channel="whatsapp"]')
    await form.getByLabel("Requests per minute").fill("77")
    await form.getByRole("button", { name: "Save" }).click()
    await expect.poll(() => form.getByRole("status").textContent()).toBe("Saved")
    await page.reload()
    await expect
      .poll(() =>
        page.locator('form[data-channel="whatsapp"]').getByLabel("Requests per minute").inputValue(),
      )
      .toBe("77")
    const configs = await api<{
      channels: { channel: string; requests_per_minute: number; overridden: string[] }[]
    }>(`/api/onboarding/subscription/${acme.id}/channels/config`)
    const whatsapp = configs.channels.find((c) => c.channel === "whatsapp")
    expect(whatsapp).toMatchObject({ requests_per_minute: 77 })
    expect(whatsapp?.overridden).toContain("requests_per_minute")
  })

  it("shows the field's rule in plain words next to it", async () => {
    expectedRefusals = ["/channels/whatsapp/config"]
    const form = page.locator('form[data-channel="whatsapp"]')
    await form.getByLabel("Token multiplier").fill("1.234")
    await form.getByRole("button", { name: "Save" }).click()
    await expect
      .poll(() => text("#whatsapp-token_multiplier-error"))
      .toBe(
        "Token multiplier must be a number from 0.01 to 10 with at most two decimals, like 1.25; 1.234 has 3 decimals (round it to 1.23).",
      )
    await expect.poll(() => form.getByLabel("Token multiplier").getAttribute("aria-invalid")).toBe("true")
    await form.getByLabel("Token multiplier").fill("1.2")
    await form.getByLabel("Priority").fill("11")
    await form.getByRole("button", { name: "Save" }).click()
    await expect.poll(() => text("#whatsapp-priority-error")).toMatch(/10/)
    await shot("07-configuration-validation")
    await form.getByRole("button", { name: "Reset" }).click()
    expect(await form.getByLabel("Priority").inputValue()).toBe("8")
  })

  it("switches a channel off from the configuration page", async () => {
    const form = page.locator('form[data-channel="telegram"]')
    await form.getByLabel("Enabled").uncheck()
    await form.getByRole("button", { name: "Save" }).click()
    await expect.poll(() => form.getByRole("status").textContent()).toBe("Saved")
    await expect.poll(() => form.locator(".badge-off").textContent()).toBe("disabled")
    await shot("08-configuration")
  })

  it("sends playground turns: allowed with billing and headroom, and denied for length, disabled channel and rate limit", async () => {
    expectedRefusals = ["/api/tokens/consume"]
    const acme = byEntity("acme-retail")
    await page.getByRole("link", { name: "Playground" }).click()
    await expect.poll(() => text('[data-testid="token-count"]')).toMatch(/tokens ·/)
    const message =
      "Hello! Can you tell me when my order #5521 ships, and whether express delivery is possible?"
    await page.getByLabel("Channel").selectOption("whatsapp")
    // The subscription's own settings, with the override saved on the configuration page.
    await expect.poll(() => text('[data-testid="channel-settings"]')).toContain("77 requests")
    expect(await page.getByLabel("Channel").locator('option[value="telegram"]').textContent()).toBe(
      "Telegram (disabled)",
    )
    await page.getByLabel("Message").fill(message)
    await page.getByLabel("Expected reply tokens").fill("200")
    const tokens = countTokens(message)
    await expect.poll(() => text('[data-testid="token-count"]')).toContain(`${int(tokens)} tokens`)
    await page.getByRole("button", { name: "Send on WhatsApp" }).click()
    const allowed = page.locator('[data-testid="turn"]').first()
    await expect.poll(() => allowed.getAttribute("data-allowed")).toBe("true")
    const estimated = tokens + 200
    const billed = Math.ceil((estimated * 120) / 100)
    expect(await allowed.locator('[data-figure="estimated"]').textContent()).toBe(int(estimated))
    expect(await allowed.locator('[data-figure="billed"]').textContent()).toBe(int(billed))
    expect(await allowed.locator('[data-figure="multiplier"]').textContent()).toBe("1.2×")
    const after = await api<SubscriptionBody>(`/api/subscriptions/${acme.id}`)
    expect(await allowed.locator('[data-figure="remaining"]').textContent()).toBe(
      `${int(after.quota?.remaining_tokens ?? -1)} of ${int(after.quota?.token_limit ?? -1)}`,
    )
    expect(await allowed.locator('[data-figure="rate-limit"]').textContent()).toMatch(/^76 of 77 left/)

    await page.getByLabel("Channel").selectOption("instagram")
    await page.getByLabel("Message").fill("x".repeat(1001))
    await page.getByRole("button", { name: "Send on Instagram Direct" }).click()
    await expect
      .poll(() => page.locator('[data-testid="turn"]').first().getAttribute("data-reason"))
      .toBe("message_too_long")
    expect(
      await page.locator('[data-testid="turn"]').first().locator('[data-figure="length"]').textContent(),
    ).toBe("1,001 of 1,000 characters")

    await page.getByLabel("Channel").selectOption("telegram")
    await page.getByLabel("Message").fill("Is anyone there?")
    await page.getByRole("button", { name: "Send on Telegram" }).click()
    await expect
      .poll(() => page.locator('[data-testid="turn"]').first().getAttribute("data-reason"))
      .toBe("channel_disabled")

    await api(`/api/onboarding/subscription/${acme.id}/channels/api/config`, {
      method: "PUT",
      body: { requests_per_minute: 1 },
    })
    await page.getByLabel("Channel").selectOption("api")
    await page.getByRole("button", { name: "Send on Raw API" }).click()
    await expect
      .poll(() => page.locator('[data-testid="turn"]').first().getAttribute("data-allowed"))
      .toBe("true")
    await page.getByRole("button", { name: "Send on Raw API" }).click()
    const limited = page.locator('[data-testid="turn"]').first()
    await expect.poll(() => limited.getAttribute("data-reason")).toBe("rate_limited")
    expect(await limited.locator('[data-figure="rate-limit"]').textContent()).toMatch(/^0 of 1 left/)
    expect(await limited.locator('[data-figure="retry-after"]').textContent()).toMatch(/^\d+ s$/)
    expect(await page.locator('[data-testid="turn"]').count()).toBe(5)
    await shot("09-playground")
  })

  it("is refused for a channel the plan lacks: locked in configuration, denied in the playground", async () => {
    expectedRefusals = ["/channels/instagram/config", "/api/tokens/consume"]
    await page.getByRole("link", { name: "Switch subscription" }).click()
    await pick("globex-support")
    await page.getByRole("link", { name: "Configuration" }).click()
    const form = page.locator('form[data-channel="instagram"]')
    await expect.poll(() => form.getByTestId("locked").textContent()).toContain("enterprise")
    await expect.poll(() => form.locator(".lock-note").textContent()).toContain("enterprise")
    // Nothing to edit on a locked channel: every field is disabled and there is no Save to be refused.
    expect(await form.getByLabel("Enabled").isDisabled()).toBe(true)
    expect(await form.getByLabel("Token multiplier").isDisabled()).toBe(true)
    expect(await form.getByRole("button", { name: "Save" }).count()).toBe(0)
    await shot("10-configuration-locked")

    await page.getByRole("link", { name: "Playground" }).click()
    await page.getByLabel("Channel").selectOption("instagram")
    await page.getByRole("button", { name: "Send on Instagram Direct" }).click()
    const turn = page.locator('[data-testid="turn"]').first()
    await expect.poll(() => turn.getAttribute("data-reason")).toBe("channel_not_in_plan")
    expect(await turn.locator('[data-figure="required-plan"]').textContent()).toBe("enterprise plan")
  })

  it("denies a turn over quota, then every turn once the subscription is suspended", async () => {
    expectedRefusals = ["/api/tokens/consume"]
    const small = await api<SubscriptionBody>("/api/subscriptions", {
      method: "POST",
      body: { entity_id: "tiny-shop", entity_type: "organization", plan: "basic", token_limit: 1000 },
    })
    await page.getByRole("link", { name: "Switch subscription" }).click()
    await pick("tiny-shop")
    await expect.poll(() => page.locator(".state-empty").textContent()).toContain("No turns in this period")
    await shot("11-overview-empty")
    await page.getByRole("link", { name: "Playground" }).click()
    await page.getByLabel("Expected reply tokens").fill("5000")
    await page.getByRole("button", { name: "Send on Website widget" }).click()
    const over = page.locator('[data-testid="turn"]').first()
    await expect.poll(() => over.getAttribute("data-reason")).toBe("quota_exceeded")
    expect(await over.locator('[data-figure="remaining"]').textContent()).toBe("1,000")

    await api(`/api/subscriptions/${small.id}`, { method: "PATCH", body: { status: "suspended" } })
    await page.getByLabel("Expected reply tokens").fill("10")
    await page.getByRole("button", { name: "Send on Website widget" }).click()
    await expect
      .poll(() => page.locator('[data-testid="turn"]').first().getAttribute("data-reason"))
      .toBe("subscription_inactive")
    await expect.poll(() => page.locator(".topbar .badge-warn").textContent()).toBe("suspended")
    await shot("12-playground-denials")
  })

  it("shows the API's error, with its request id and a retry, for a subscription that does not exist", async () => {
    const missing = "00000000-0000-4000-8000-000000000000"
    expectedRefusals = [`/api/subscriptions/${missing}`]
    await page.goto(`${server.url}/?subscription=${missing}`)
    const alert = page.getByRole("alert")
    await expect.poll(() => alert.textContent()).toContain("The API answered 404 subscription_not_found")
    expect(await alert.textContent()).toContain("Request id:")
    await alert.getByRole("button", { name: "Try again" }).waitFor()
    await shot("13-error-state")
    await page.getByRole("link", { name: "Switch subscription" }).click()
    await page.getByRole("heading", { name: "Subscriptions" }).waitFor()
  })

  it("lets a subscription key see its own subscription only, straight away", async () => {
    const initech = byEntity("initech")
    const issued = await api<{ key: string }>(`/api/subscriptions/${initech.id}/keys`, {
      method: "POST",
      body: {},
    })
    await page.getByRole("button", { name: "Sign out" }).click()
    // By keyboard this time: the key field submits the form with Enter.
    await page.getByLabel("API key").fill(issued.key)
    await page.getByLabel("API key").press("Enter")
    await page.getByRole("heading", { name: "Overview" }).waitFor()
    await page.locator('[data-testid="comparison"]').waitFor()
    expect(await page.getByRole("link", { name: "Switch subscription" }).count()).toBe(0)
    expect(await text(".subscription-name")).toContain("initech")
    const rows = await page
      .locator('[data-testid="comparison"] tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-channel")))
    const period = `from=${await page.locator("#period-from").inputValue()}&to=${await page.locator("#period-to").inputValue()}`
    const analytics = await api<ComprehensiveAnalyticsBody>(
      `/api/onboarding/analytics/${initech.id}?${period}`,
      { key: issued.key },
    )
    // The plan's channels, and those its end users tried anyway (denied channel_not_in_plan).
    expect(rows.sort()).toEqual(
      analytics.channels
        .filter((c) => ["website", "whatsapp"].includes(c.channel) || c.denied_count > 0)
        .map((c) => c.channel)
        .sort(),
    )
    expect(rows).toContain("website")
    expect(await text('[data-testid="total-tokens_used"] [data-value]')).toBe(
      int(analytics.totals.tokens_used),
    )
    await page.reload()
    await page.locator('[data-testid="comparison"]').waitFor()
    expect(await text(".subscription-name")).toContain("initech")
  })

  it("fits a phone's width on every page", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      await phone.page.goto(`${server.url}/`)
      await phone.page.getByLabel("API key").fill(ADMIN_KEY)
      await phone.page.getByRole("button", { name: "Sign in" }).click()
      await phone.page.getByRole("button", { name: "acme-retail", exact: true }).click()
      for (const [name, link, ready] of [
        ["14-phone-overview", "Overview", '[data-testid="comparison"]'],
        ["15-phone-configuration", "Configuration", 'form[data-channel="api"]'],
        ["16-phone-playground", "Playground", "textarea"],
      ] as const) {
        await phone.page.getByRole("link", { name: link }).click()
        await phone.page.locator(ready).first().waitFor()
        const overflow = await phone.page.evaluate<number>(
          "document.documentElement.scrollWidth - window.innerWidth",
        )
        expect(overflow, name).toBeLessThanOrEqual(0)
        await shot(name, phone.page)
      }
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })
})
