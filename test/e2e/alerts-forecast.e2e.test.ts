import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import type { Page, Request } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { Subscription } from "../../src/core/subscription.js"
import type { AlertBody } from "../../src/http/routes/alerts.js"
import type { ForecastBody, InsightBody } from "../../src/http/routes/forecast.js"
import type { DeliveryBody } from "../../src/http/routes/webhooks.js"
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

interface AlertPage {
  alerts: AlertBody[]
  next_before: number | null
}
interface InsightsAnswer {
  insights: InsightBody[]
  forecast: ForecastBody
}
interface DeliveryLog {
  deliveries: DeliveryBody[]
}

const ADMIN_KEY = "om_admin_e2e_alerts_key_0123456789abcdef"

const int = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 })
const dec = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 2 })
/** An instant in a subscription's timezone, naming it: the Forecast page writes every time this way. */
const zoned = (iso: string, timeZone: string) =>
  `${new Date(iso).toLocaleString("en-US", {
    timeZone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  })} (${timeZone})`
const local = (iso: string) =>
  new Date(iso).toLocaleString("en-US", {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
    timeZoneName: "short",
    timeZone: "UTC",
  })

let dashboard: DashboardFixture
let server: RunningServer
let browser: TestBrowser
let page: Page
let errors: ConsoleError[]
let demo: Subscription[]
let expectedRefusals: string[] = []
/** Loopback receivers: one answers 204, one always 500. */
let receiverOk: Server
let receiverDown: Server
const received: string[] = []

function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<T> {
  return callApi<T>(server.url, init.key ?? ADMIN_KEY, path, init)
}

function byEntity(entityId: string): Subscription {
  return demoSubscription(demo, entityId)
}

function shot(name: string, target: Page = page): Promise<void> {
  return screenshot(target, name)
}

async function text(selector: string, target: Page = page): Promise<string> {
  return ((await target.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

async function texts(selector: string): Promise<string[]> {
  return page
    .locator(selector)
    .evaluateAll((nodes) => nodes.map((n) => (n.textContent ?? "").replace(/\s+/g, " ").trim()))
}

function receiver(status: number): Promise<Server> {
  const http = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8")
    })
    request.on("end", () => {
      if (status < 300) received.push(body)
      response.statusCode = status
      response.end()
    })
  })
  return new Promise((done) => http.listen(0, "127.0.0.1", () => done(http)))
}

const receiverUrl = (http: Server) => `http://127.0.0.1:${(http.address() as AddressInfo).port}/hook`

/** Signs in as the admin, picks `entityId`, and opens the page behind the navigation link `link`. */
async function open(target: Page, entityId: string, link: string): Promise<void> {
  // A fresh sign-in each time: the tab keeps its key in sessionStorage, so sign out first if it restored one.
  await target.goto(`${server.url}/`)
  const signOut = target.getByRole("button", { name: "Sign out" })
  const keyField = target.getByLabel("API key")
  await signOut.or(keyField).waitFor()
  if (await signOut.isVisible()) await signOut.click()
  await keyField.fill(ADMIN_KEY)
  await target.getByRole("button", { name: "Sign in" }).click()
  await target.getByRole("button", { name: entityId, exact: true }).click()
  await target.getByRole("heading", { name: "Overview" }).waitFor()
  await target.getByRole("link", { name: link, exact: true }).click()
  await target.getByRole("heading", { name: link, level: 1 }).waitFor()
}

/**
 * Opens the Forecast page and returns the insights answer the page shows: the answer to its latest request
 * (an earlier one, e.g. from a re-render, is dropped by the page as stale).
 */
async function openForecast(entityId: string): Promise<InsightsAnswer> {
  const requests: Request[] = []
  const onRequest = (request: Request) => {
    if (request.url().includes("/insights")) requests.push(request)
  }
  page.on("request", onRequest)
  try {
    await open(page, entityId, "Forecast")
    await page.locator('[data-testid="forecast"]').waitFor()
    await page.waitForLoadState("networkidle")
  } finally {
    page.off("request", onRequest)
  }
  const response = await requests.at(-1)?.response()
  if (!response) throw new Error("the page did not ask for the insights")
  return (await response.json()) as InsightsAnswer
}

beforeAll(async () => {
  receiverOk = await receiver(204)
  receiverDown = await receiver(500)
  dashboard = await startDashboard({
    adminKey: ADMIN_KEY,
    ports: [18820, 18840],
    env: { OMNIMETER_WEBHOOK_ALLOW_PRIVATE: "true" },
  })
  ;({ server, demo, browser, page, errors } = dashboard)
})

afterAll(async () => {
  await dashboard?.close()
  receiverOk?.close()
  receiverDown?.close()
})

afterEach(() => {
  const unexpected = takeUnexpectedErrors(errors, expectedRefusals, /status of [45]\d\d/)
  expectedRefusals = []
  expect(unexpected).toEqual([])
})

describe("the Forecast page", () => {
  it("shows the period's projection, interval, quota, run-out date and method exactly as the API answered", async () => {
    const { forecast, insights } = await openForecast("acme-retail")
    await shot("alerts-01-forecast")
    const zone = byEntity("acme-retail").timezone
    const total = forecast.total
    expect(total.used_tokens).toBeGreaterThan(0)
    expect(await text('[data-testid="forecast-used"] [data-value]')).toBe(int(total.used_tokens))
    expect(await text('[data-testid="forecast-projected"] [data-value]')).toBe(int(total.projected_tokens))
    expect(await text('[data-testid="forecast-interval"]')).toBe(
      `95% interval ${int(total.lower)} – ${int(total.upper)}${total.denied_tokens > 0 ? `; billed stops at the quota, ${int(total.denied_tokens)} more denied` : ""}`,
    )
    expect(await text('[data-testid="forecast-quota"] [data-value]')).toBe(int(forecast.token_limit))
    expect(["lasts", "runs_out"]).toContain(total.quota_state)
    expect(await text('[data-testid="forecast-runout"] [data-value]')).toBe(
      total.quota_exhausted_at === null
        ? "not before the period ends"
        : zoned(total.quota_exhausted_at, zone),
    )
    expect(await text('[data-testid="forecast-period"]')).toBe(
      `${zoned(forecast.period_start, zone)} – ${zoned(forecast.period_end, zone)}`,
    )
    expect(total.method).toBe("holt_winters")
    expect(await text('[data-testid="forecast-method"]')).toContain(
      `Method: Holt-Winters (level, trend and a weekly season fitted on daily billed tokens), on ${int(forecast.history_days)} days of history.`,
    )

    // The table: one row per channel, largest projection first, then the total.
    const rows = await page
      .locator('[data-testid="forecast-channels"] tr[data-channel]')
      .evaluateAll((trs) =>
        trs.map((tr) => [
          tr.getAttribute("data-channel"),
          ...[...tr.querySelectorAll("td")].map((td) => (td.textContent ?? "").trim()),
        ]),
      )
    const expected = [...forecast.channels]
      .sort((a, b) => b.projected_tokens - a.projected_tokens)
      .map((c) => [
        c.channel,
        c.used_tokens,
        c.forecast_tokens,
        c.projected_tokens,
        c.lower,
        c.upper,
        c.method,
      ])
    expected.push([
      "total",
      total.used_tokens,
      total.forecast_tokens,
      total.projected_tokens,
      total.lower,
      total.upper,
      total.method,
    ])
    expect(rows).toEqual(
      expected.map(([channel, used, rest, projected, lower, upper, method]) => [
        channel,
        int(Number(used)),
        int(Number(rest)),
        int(Number(projected)),
        `${int(Number(lower))} – ${int(Number(upper))}`,
        method === "holt_winters" ? "Holt-Winters" : String(method),
      ]),
    )

    // The chart: the total and every channel, drawn and in its table, with the quota line.
    expect(await page.locator('[data-testid="forecast-chart"] svg g[data-row]').count()).toBe(
      forecast.channels.length + 1,
    )
    expect(await page.locator('[data-testid="forecast-chart"] .quota-line title').textContent()).toBe(
      `Quota: ${int(forecast.token_limit)} tokens`,
    )
    const chartTable = await page
      .locator('[data-testid="forecast-chart"] tbody tr')
      .first()
      .evaluate((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent))
    expect(chartTable).toEqual([total.used_tokens, total.projected_tokens, total.lower, total.upper].map(int))

    // Insights: as many as the API ranked, in its order, each with its explanation, action and evidence.
    expect(insights.length).toBeGreaterThan(0)
    expect(await page.locator('[data-testid="insights"] > li').count()).toBe(insights.length)
    expect(await texts('[data-testid="insights"] > li h3')).toEqual(insights.map((i) => i.title))
    expect(await texts('[data-testid="insights"] .insight-score')).toEqual(
      insights.map((i) => `score ${dec(i.score)}`),
    )
    const first = insights[0]
    if (!first) throw new Error("no insight")
    const card = page.locator('[data-testid="insights"] > li').first()
    expect(await card.getAttribute("data-kind")).toBe(first.kind)
    expect((await card.textContent()) ?? "").toContain(first.explanation)
    expect((await card.textContent()) ?? "").toContain(first.action)
    for (const [key, value] of Object.entries(first.evidence)) {
      const shown = (await card.locator(`[data-evidence="${key}"]`).textContent()) ?? ""
      const want =
        typeof value === "number"
          ? Number.isInteger(value)
            ? int(value)
            : dec(value)
          : typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)
            ? zoned(value, zone)
            : String(value ?? "–")
      expect(shown, key).toBe(want)
    }
  })

  it("shows a fresh subscription's empty forecast: no usage, no run-out, nothing to recommend", async () => {
    const fresh = await api<{ id: string; entity_id: string }>("/api/subscriptions", {
      method: "POST",
      body: { entity_id: "fresh-start", entity_type: "organization", plan: "basic" },
    })
    const { forecast, insights } = await openForecast(fresh.entity_id)
    expect(forecast.total.used_tokens).toBe(0)
    expect(insights).toEqual([])
    expect(await text('[data-testid="forecast-used"] [data-value]')).toBe("0")
    expect(await text('[data-testid="forecast-runout"] [data-value]')).toBe("not before the period ends")
    expect(await text('[data-testid="forecast-method"]')).toContain("Method: No usage yet")
    await page.getByText("No usage to project yet").waitFor()
    await page.getByText("Nothing to recommend").waitFor()
    expect(await page.locator('[data-testid="forecast-chart"]').count()).toBe(0)
    await shot("alerts-02-forecast-empty")
  })

  it("shows the API's error with its request id when the forecast fails, and recovers on retry", async () => {
    expectedRefusals = ["/insights"]
    await page.route("**/insights", (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/json",
        headers: { "x-request-id": "req-forecast-down" },
        body: JSON.stringify({
          error: {
            code: "service_unavailable",
            message: "The database is busy.",
            request_id: "req-forecast-down",
          },
        }),
      }),
    )
    await open(page, "initech", "Forecast")
    await page.getByRole("alert").waitFor()
    expect(await text('[role="alert"]')).toContain("The API answered 503 service_unavailable")
    expect(await text('[role="alert"]')).toContain("The database is busy.")
    expect(await text('[role="alert"]')).toContain("Request id: req-forecast-down")
    await shot("alerts-03-forecast-error")
    await page.unroute("**/insights")
    await page.getByRole("button", { name: "Try again" }).click()
    await page.locator('[data-testid="forecast"]').waitFor()
  })
})

describe("the Alerts page", () => {
  it("lists a subscription's alerts as the API does: type, channel, local time and what happened", async () => {
    const globex = byEntity("globex-support")
    const listed = await api<AlertPage>(`/api/subscriptions/${globex.id}/alerts`)
    // The demo's consumption crossed real quota thresholds (the database trigger, not inserted rows).
    expect(listed.alerts.length).toBeGreaterThan(0)
    expect(listed.alerts.every((a) => a.type === "quota.threshold_reached")).toBe(true)
    await open(page, "globex-support", "Alerts")
    await page.locator('[data-testid="alerts"]').waitFor()
    expect(await page.locator('[data-testid="alerts"] > li').count()).toBe(listed.alerts.length)
    expect(
      await page
        .locator('[data-testid="alerts"] > li')
        .evaluateAll((lis) => lis.map((li) => li.getAttribute("data-alert"))),
    ).toEqual(listed.alerts.map((a) => a.id))
    expect(await texts('[data-testid="alerts"] time')).toEqual(listed.alerts.map((a) => local(a.occurred_at)))
    expect(await texts('[data-testid="alerts"] .alert-type')).toEqual(
      listed.alerts.map(() => "Quota threshold reached"),
    )
    expect(await texts('[data-testid="alerts"] .alert-summary')).toEqual(
      listed.alerts.map((a) => {
        const d = a.data as { threshold: number; token_limit: number; used_tokens: number }
        return `${dec(d.threshold * 100)}% of the ${int(d.token_limit)}-token quota reached: ${int(d.used_tokens)} tokens used this period.`
      }),
    )
    expect(await text('[data-testid="alert-count"]')).toContain(`${listed.alerts.length} alerts shown`)
    await shot("alerts-04-alerts")

    await page.getByLabel("Type").selectOption("rate_limit.exceeded")
    const none = await api<AlertPage>(`/api/subscriptions/${globex.id}/alerts?type=rate_limit.exceeded`)
    expect(none.alerts).toEqual([])
    await page.getByText("No “Rate limit exceeded” alerts").waitFor()
    expect(new URL(page.url()).searchParams.get("type")).toBe("rate_limit.exceeded")
    await page.getByLabel("Type").selectOption("")
    await page.locator('[data-testid="alerts"]').waitFor()
  })

  it("shows the empty state for a subscription without alerts or webhook endpoints", async () => {
    // initech's demo history crosses no quota threshold and has no incident.
    const initech = byEntity("initech")
    expect((await api<AlertPage>(`/api/subscriptions/${initech.id}/alerts`)).alerts).toEqual([])
    await open(page, "initech", "Alerts")
    await page.getByText("No alerts yet").waitFor()
    await page.getByText("No webhook endpoints").waitFor()
    await shot("alerts-05-alerts-empty")
  })

  it("lists webhook endpoints with their delivery logs, and sends a test event that is delivered", async () => {
    const initech = byEntity("initech")
    const base = `/api/subscriptions/${initech.id}/webhooks`
    const ok = await api<{ id: string }>(base, {
      method: "POST",
      body: {
        url: receiverUrl(receiverOk),
        description: "Ops pager",
        event_types: ["quota.threshold_reached"],
      },
    })
    const down = await api<{ id: string }>(base, {
      method: "POST",
      body: {
        url: receiverUrl(receiverDown),
        event_types: ["quota.threshold_reached", "usage.spike_detected"],
      },
    })
    await open(page, "initech", "Alerts")
    await page.locator('[data-testid="webhooks"]').waitFor()
    const endpoints = page.locator('[data-testid="webhooks"] > li')
    expect(await endpoints.count()).toBe(2)
    const okCard = page.locator(`[data-webhook="${ok.id}"]`)
    const downCard = page.locator(`[data-webhook="${down.id}"]`)
    expect(await okCard.locator(".endpoint-url").textContent()).toBe(receiverUrl(receiverOk))
    expect((await okCard.textContent()) ?? "").toContain("Ops pager")
    expect((await downCard.textContent()) ?? "").toContain("Receives: Quota threshold reached, Usage spike")
    await okCard.getByText("Nothing sent to this endpoint yet.").waitFor()

    for (const card of [okCard, downCard]) {
      await card.getByRole("button", { name: "Send test event" }).click()
      await card.getByText(/Test event queued/).waitFor()
    }
    // The worker delivers on its own; the log shows what the API's delivery log says.
    await expect
      .poll(
        async () => {
          await okCard.getByRole("button", { name: "Refresh log" }).click()
          return okCard
            .locator("[data-status]")
            .first()
            .getAttribute("data-status", { timeout: 2000 })
            .catch(() => null)
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe("delivered")
    await expect
      .poll(
        async () => {
          await downCard.getByRole("button", { name: "Refresh log" }).click()
          return (
            (await downCard
              .locator(".delivery-error")
              .first()
              .textContent({ timeout: 2000 })
              .catch(() => "")) ?? ""
          )
        },
        { timeout: 30_000, interval: 500 },
      )
      .toContain("HTTP 500")
    expect(received.some((body) => body.includes("webhook.test"))).toBe(true)

    for (const [card, id] of [
      [okCard, ok.id],
      [downCard, down.id],
    ] as const) {
      const log = await api<DeliveryLog>(`${base}/${id}/deliveries`)
      expect(log.deliveries.length).toBe(1)
      const d = log.deliveries[0]
      if (!d) throw new Error("no delivery")
      const row = card.locator(`tr[data-delivery="${d.id}"]`)
      expect(await row.locator("[data-status]").getAttribute("data-status")).toBe(d.status)
      expect(await row.locator("td").nth(0).textContent()).toBe("Test event")
      expect(await row.locator("td").nth(2).textContent()).toBe(int(d.attempts))
      expect(await row.locator(".delivery-error").textContent()).toBe(
        d.last_error ?? `HTTP ${d.last_status_code}`,
      )
    }
    await shot("alerts-06-webhooks")
  })

  it("adds an endpoint from the page: the API's refusal next to the URL, then the secret shown once", async () => {
    expectedRefusals = ["/webhooks"]
    const globex = byEntity("globex-support")
    await open(page, "globex-support", "Alerts")
    await page.getByText("No webhook endpoints").waitFor()
    await page.getByLabel("URL").fill("ftp://example.com/hook")
    await page.getByRole("button", { name: "Add endpoint" }).click()
    await expect
      .poll(() => text(".webhook-form .field-error"))
      .toBe("url: must start with https:// or http://")
    expect(await page.getByLabel("URL").getAttribute("aria-invalid")).toBe("true")
    expect(await api<{ webhooks: unknown[] }>(`/api/subscriptions/${globex.id}/webhooks`)).toEqual({
      webhooks: [],
    })

    await page.getByLabel("URL").fill(receiverUrl(receiverOk))
    await page.getByLabel("Description (optional)").fill("Added from the dashboard")
    await page.getByRole("checkbox", { name: "Channel health degraded" }).uncheck()
    await page.getByRole("checkbox", { name: "Channel health recovered" }).uncheck()
    await page.getByRole("button", { name: "Add endpoint" }).click()
    await page.locator('[data-testid="webhook-secret"]').waitFor()
    const listed = await api<{
      webhooks: { id: string; url: string; description: string; event_types: string[] }[]
    }>(`/api/subscriptions/${globex.id}/webhooks`)
    expect(listed.webhooks.length).toBe(1)
    const [created] = listed.webhooks
    if (!created) throw new Error("no endpoint")
    expect(created.url).toBe(receiverUrl(receiverOk))
    expect(created.description).toBe("Added from the dashboard")
    expect([...created.event_types].sort()).toEqual(
      [
        "capacity.shed",
        "quota.threshold_reached",
        "rate_limit.exceeded",
        "usage.spike_detected",
        "usage.spike_resolved",
      ].sort(),
    )
    expect(await text('[data-testid="webhook-secret"] code')).toMatch(/^whsec_/)
    await page.locator(`[data-webhook="${created.id}"]`).waitFor()
    await shot("alerts-07-webhook-added")
  })
})

describe("the Forecast and Alerts pages on a phone", () => {
  it("fit a phone's width", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      await open(phone.page, "initech", "Forecast")
      await phone.page.locator('[data-testid="insights"]').waitFor()
      for (const [name, link, ready] of [
        ["alerts-08-phone-forecast", "Forecast", '[data-testid="forecast-chart"]'],
        ["alerts-09-phone-alerts", "Alerts", '[data-testid="webhooks"]'],
      ] as const) {
        await phone.page.getByRole("link", { name: link, exact: true }).click()
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
