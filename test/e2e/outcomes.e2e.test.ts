/**
 * The Outcomes page, the Overview's cost and the Playground's priced settle (issue 14), in Chromium on the
 * demo data: every number on screen is compared with the answer the page received.
 */
import type { Page, Request } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { OutcomesAnswerBody } from "../../src/http/routes/outcomes.js"
import type { RunningServer } from "../../src/server.js"
import type { ConsoleError, TestBrowser } from "../support/browser.js"
import {
  type DashboardFixture,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_outcomes_key_0123456789abcdef"

let dashboard: DashboardFixture
let server: RunningServer
let browser: TestBrowser
let page: Page
let errors: ConsoleError[]

/** As the page formats money: the browser's locale (en-US here), up to 6 decimals under one cent. */
const money = (amount: string, currency: string) => {
  const value = Number(amount)
  const small = value !== 0 && Math.abs(value) < 0.01
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency,
    minimumFractionDigits: small ? 2 : undefined,
    maximumFractionDigits: small ? 6 : 2,
  }).format(value)
}
const dec = (n: number | null) => (n === null ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: 2 }))
const int = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 })

async function text(selector: string, target: Page = page): Promise<string> {
  return ((await target.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

async function open(target: Page, entityId: string, link: string): Promise<void> {
  await target.goto(`${server.url}/`)
  const signOut = target.getByRole("button", { name: "Sign out" })
  const keyField = target.getByLabel("API key")
  await signOut.or(keyField).waitFor()
  if (await signOut.isVisible()) await signOut.click()
  await keyField.fill(ADMIN_KEY)
  await target.getByRole("button", { name: "Sign in" }).click()
  await target.getByRole("button", { name: entityId, exact: true }).click()
  await target.getByRole("heading", { name: "Overview" }).waitFor()
  if (link !== "Overview") {
    await target.getByRole("link", { name: link, exact: true }).click()
    await target.getByRole("heading", { name: link, level: 1 }).waitFor()
  }
}

/** Runs `action` and answers the JSON of the last outcomes request the page made meanwhile. */
async function outcomesAnswer(action: () => Promise<void>): Promise<OutcomesAnswerBody> {
  const requests: Request[] = []
  const onRequest = (request: Request) => {
    if (request.url().includes("/outcomes")) requests.push(request)
  }
  page.on("request", onRequest)
  try {
    await action()
    await page.waitForLoadState("networkidle")
  } finally {
    page.off("request", onRequest)
  }
  const response = await requests.at(-1)?.response()
  if (!response) throw new Error("the page did not ask for the outcomes")
  return (await response.json()) as OutcomesAnswerBody
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18860, 18880] })
  ;({ server, browser, page, errors } = dashboard)
  // Seeding 60 days of demo traffic takes minutes on a busy machine.
}, 600_000)
afterAll(async () => dashboard?.close())
afterEach(() => {
  expect(takeUnexpectedErrors(errors, [], /status of [45]\d\d/)).toEqual([])
})

describe("the Outcomes page", () => {
  it("shows cost, value, ROI, conversions, sentiment and CSAT per channel exactly as the API answered", async () => {
    const answer = await outcomesAnswer(async () => {
      await open(page, "acme-retail", "Outcomes")
      await page.locator('[data-testid="outcomes-table"]').waitFor()
    })
    await screenshot(page, "outcomes-01-page")
    const t = answer.totals
    expect(Number(t.cost)).toBeGreaterThan(0)
    expect(t.conversion_count).toBeGreaterThan(0)
    expect(await text('[data-testid="outcome-cost"] [data-value]')).toBe(money(t.cost, answer.currency))
    expect(await text('[data-testid="outcome-value"] [data-value]')).toBe(money(t.value, answer.currency))
    expect(await text('[data-testid="outcome-roi"] [data-value]')).toBe(dec(t.roi))
    expect(await text('[data-testid="outcome-csat"] [data-value]')).toBe(dec(t.csat_avg))
    expect(await text('[data-testid="outcome-sentiment"] [data-value]')).toBe(dec(t.sentiment_avg))
    const rows = await page.locator('[data-testid="outcomes-table"] tr[data-channel]').evaluateAll((trs) =>
      trs.map((tr) => ({
        channel: tr.getAttribute("data-channel"),
        cost: tr.querySelector('[data-metric="cost"]')?.textContent?.trim(),
        value: tr.querySelector('[data-metric="value"]')?.textContent?.trim(),
        roi: tr.querySelector('[data-metric="roi"]')?.textContent?.trim(),
        conversions: tr.querySelector('[data-metric="conversion_count"]')?.textContent?.trim(),
      })),
    )
    const shown = answer.channels.filter((c) => c.turns > 0 || c.conversion_count > 0)
    expect(rows).toEqual(
      shown.map((c) => ({
        channel: c.channel,
        cost: money(c.cost, answer.currency),
        value: money(c.value, answer.currency),
        roi: dec(c.roi),
        conversions: dec(c.conversion_count),
      })),
    )
    // Every chart carries its numbers.
    for (const chart of ["chart-cost", "chart-value", "chart-conversion", "chart-latency", "chart-csat"])
      await page.locator(`[data-testid="${chart}"]`).waitFor()
  })

  it("recomputes under another attribution model, kept in the URL across a reload", async () => {
    const linear = await outcomesAnswer(async () => {
      await page.getByLabel("Attribution").selectOption("linear")
      await page.locator('[data-testid="outcomes-table"]').waitFor()
    })
    expect(linear.attribution).toBe("linear")
    expect(page.url()).toContain("attribution=linear")
    await page.reload()
    await page.locator('[data-testid="outcomes-table"]').waitFor()
    expect(await page.getByLabel("Attribution").inputValue()).toBe("linear")
    expect(await text('[data-testid="outcome-value"] [data-value]')).toBe(
      money(linear.totals.value, linear.currency),
    )
  })
})

describe("cost in money elsewhere", () => {
  it("shows the period's cost next to its tokens on the Overview", async () => {
    const answer = await outcomesAnswer(async () => {
      await open(page, "globex-support", "Overview")
      await page.locator('[data-testid="total-cost"]').waitFor()
    })
    expect(await text('[data-testid="total-cost"] [data-value]')).toBe(
      money(answer.totals.cost, answer.currency),
    )
    expect(await text('[data-testid="total-cost"] .card-foot')).toContain(
      `for ${int(answer.totals.tokens_used)} tokens`,
    )
    await screenshot(page, "outcomes-02-overview-cost")
  })

  it("lets the Playground pick a model and shows the settled turn's cost", async () => {
    await open(page, "acme-retail", "Playground")
    await page.getByLabel("Model").selectOption("gpt-4o")
    await page.getByRole("button", { name: /^Send on/ }).click()
    await page.locator('[data-testid="settle"]').first().waitFor()
    const settled = page.waitForResponse((r) => r.url().endsWith("/api/tokens/settle"))
    await page.locator('[data-testid="settle"]').first().click()
    const body = (await (await settled).json()) as { cost: string; currency: string; model: string }
    expect(body.model).toBe("gpt-4o")
    expect(Number(body.cost)).toBeGreaterThan(0)
    expect(await text('[data-figure="cost"]')).toBe(money(body.cost, body.currency))
    await screenshot(page, "outcomes-03-playground-cost")
  })
})

describe("the Outcomes page on a phone", () => {
  it("fits a phone's width", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      await open(phone.page, "initech", "Outcomes")
      await phone.page.locator('[data-testid="outcomes-table"]').waitFor()
      const overflow = await phone.page.evaluate<number>(
        "document.documentElement.scrollWidth - window.innerWidth",
      )
      expect(overflow).toBeLessThanOrEqual(0)
      await screenshot(phone.page, "outcomes-04-phone")
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })
})
