/**
 * The Journeys and Experiments pages (issue 15) in Chromium: what they show is what the API answered, the
 * experiment lifecycle works from the page, and both pages fit a 390 px phone without sideways scrolling.
 */
import type { Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../../src/server.js"
import type { ConsoleError, TestBrowser } from "../support/browser.js"
import {
  callApi,
  type DashboardFixture,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_journeys_key_0123456789abcdef"
const ENTITY = "journeys-e2e"

let dashboard: DashboardFixture
let server: RunningServer
let browser: TestBrowser
let page: Page
let errors: ConsoleError[]
let subscriptionId: string

function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  return callApi<T>(server.url, ADMIN_KEY, path, init)
}

async function open(target: Page, link: string): Promise<void> {
  await target.goto(`${server.url}/`)
  const signOut = target.getByRole("button", { name: "Sign out" })
  const keyField = target.getByLabel("API key")
  await signOut.or(keyField).waitFor()
  if (await signOut.isVisible()) await signOut.click()
  await keyField.fill(ADMIN_KEY)
  await target.getByRole("button", { name: "Sign in" }).click()
  await target.getByRole("button", { name: ENTITY, exact: true }).click()
  await target.getByRole("heading", { name: "Overview" }).waitFor()
  const nav = target.getByRole("link", { name: link, exact: true })
  if (await nav.isVisible()) await nav.click()
  else await target.goto(`${server.url}/${link.toLowerCase()}?subscription=${subscriptionId}`)
  await target.getByRole("heading", { name: link, level: 1 }).waitFor()
}

async function consume(channel: string, user: string) {
  await api("/api/tokens/consume", {
    method: "POST",
    body: {
      entity_id: ENTITY,
      entity_type: "organization",
      estimated_tokens: 50,
      channel,
      user_identifier: user,
    },
  })
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18860, 18880] })
  ;({ server, browser, page, errors } = dashboard)
  const sub = await api<{ id: string }>("/api/subscriptions", {
    method: "POST",
    body: { entity_id: ENTITY, entity_type: "organization", plan: "enterprise" },
  })
  subscriptionId = sub.id
  for (const person of ["p1", "p2", "p3"]) {
    await api(`/api/subscriptions/${subscriptionId}/people/${person}`, {
      method: "PUT",
      body: {
        identifiers: [
          { channel: "instagram", user_identifier: `${person}-ig` },
          { channel: "whatsapp", user_identifier: `${person}-wa` },
        ],
      },
    })
  }
  for (const person of ["p1", "p2", "p3"]) {
    await consume("instagram", `${person}-ig`)
    await consume("whatsapp", `${person}-wa`)
  }
  await consume("website", "solo")
  // The fixture seeds 60 days of demo traffic first: over 100 s on a loaded machine.
}, 300_000)

afterAll(async () => dashboard?.close())

afterEach(() => {
  expect(takeUnexpectedErrors(errors, [], /status of [45]\d\d/)).toEqual([])
})

describe("the Journeys page", () => {
  it("shows the cross-channel share, the transitions and the top paths the API answered", async () => {
    const answer = await api<{
      cross_channel_share: number
      transitions: { from: string; to: string; count: number }[]
      top_paths: { people: number }[]
    }>(`/api/onboarding/analytics/${subscriptionId}/journeys`)
    expect(answer.cross_channel_share).toBeCloseTo(3 / 4, 12)
    await open(page, "Journeys")
    await page.locator('[data-testid="cross-channel-share"]').waitFor()
    expect(await page.locator('[data-testid="cross-channel-share"]').textContent()).toContain("75")
    expect(await page.locator('[data-testid="transitions"] tbody tr').count()).toBe(answer.transitions.length)
    expect(await page.locator('[data-testid="top-paths"] tbody tr').count()).toBe(answer.top_paths.length)
    expect(await page.locator("svg.flow path.flow-link").count()).toBe(answer.transitions.length)
    await screenshot(page, "journeys")
  })
})

describe("the channel recommendations beside the insights", () => {
  it("show the ranked channels the API answered, and a person's preferred channel on demand", async () => {
    const answer = await api<{ channels: { channel: string; action: string }[] }>(
      `/api/onboarding/analytics/${subscriptionId}/recommendations`,
    )
    const person = await api<{ person: { channel: string; sentence: string } }>(
      `/api/onboarding/analytics/${subscriptionId}/recommendations?user_identifier=p1-ig`,
    )
    expect(person.person.channel).not.toBeNull()
    await open(page, "Forecast")
    const rows = page.locator('[data-testid="recommendations"] tbody tr')
    await rows.first().waitFor()
    expect(await rows.count()).toBe(answer.channels.length)
    for (const [i, c] of answer.channels.entries()) {
      expect(await rows.nth(i).getAttribute("data-channel")).toBe(c.channel)
      expect(await rows.nth(i).getAttribute("data-action")).toBe(c.action)
    }
    await page.getByLabel("Identifier or person id").fill("p1-ig")
    await page.getByRole("button", { name: "Look up" }).click()
    const found = page.locator('[data-testid="person-recommendation"]')
    await found.waitFor()
    expect(await found.locator("p").textContent()).toBe(person.person.sentence)
    await screenshot(page, "recommendations")
  })
})

interface ExperimentAnswer {
  id: string
  name: string
  status: string
  stopped_at: string | null
  variants: { name: string; overrides: Record<string, number> }[]
}

interface ResultsAnswer {
  variants: {
    name: string
    people: number
    metric: { value: number | null; interval: { low: number; high: number } | null }
  }[]
  verdict: { text: string }
}

async function experimentNamed(name: string): Promise<ExperimentAnswer> {
  const list = await api<{ experiments: ExperimentAnswer[] }>(
    `/api/subscriptions/${subscriptionId}/experiments`,
  )
  const found = list.experiments.find((e) => e.name === name)
  if (!found) throw new Error(`no experiment ${name}`)
  return found
}

/** Real traffic on the channel: `people` visitors one turn each, every third of them converting. */
async function sendTraffic(channel: string, prefix: string, people: number): Promise<void> {
  for (let i = 0; i < people; i++) {
    const user = `${prefix}-${i}`
    await consume(channel, user)
    if (i % 3 === 0)
      await api("/api/outcomes", {
        method: "POST",
        body: {
          entity_id: ENTITY,
          entity_type: "organization",
          name: "purchase",
          user_identifier: user,
          channel,
          idempotency_key: `${user}-purchase`,
        },
      })
  }
}

/** The page has no sideways scrolling. */
async function overflow(target: Page): Promise<number> {
  return target.evaluate<number>(
    "document.documentElement.scrollWidth - document.documentElement.clientWidth",
  )
}

/** Creates, starts and stops `name` on `channel` from the page, with `people` visitors between start and stop. */
async function createStartAndStop(
  target: Page,
  name: string,
  channel: { label: string; id: string },
  options: { people: number; check?: (card: ReturnType<Page["locator"]>) => Promise<void> },
): Promise<ExperimentAnswer> {
  const form = target.locator("form.experiment-form")
  await form.getByLabel("Experiment name").fill(name)
  await form.getByLabel(channel.label, { exact: true }).check()
  await form.getByLabel("Primary metric").selectOption("conversion_rate")
  await form.getByText("Overrides of variant 2").click()
  await form.getByLabel("variant 2 multiplier").fill("1.5")
  await form.getByLabel("variant 2 max message length").fill("2000")
  await form.getByLabel("variant 2 label").fill("small-model")
  await form.getByRole("button", { name: "Create as draft" }).click()
  const card = target.locator(`[data-testid="experiment-${name}"]`)
  await card.getByRole("button", { name: "Start" }).click()
  await card.getByRole("button", { name: "Stop" }).waitFor()
  expect((await experimentNamed(name)).status).toBe("running")
  await sendTraffic(channel.id, name.replaceAll(" ", "-"), options.people)
  // The results are read when the card is drawn: open the page again to read them with the traffic.
  await open(target, "Experiments")
  await options.check?.(card)
  await card.getByRole("button", { name: "Stop" }).click()
  await card.getByRole("button", { name: "Stop" }).waitFor({ state: "detached" })
  expect(await card.locator(".panel-head .muted").textContent()).toBe("stopped")
  return experimentNamed(name)
}

describe("the Experiments page", () => {
  it("creates an experiment with overrides, starts it, draws each variant's interval from real traffic, gives the verdict in words and stops it", async () => {
    await open(page, "Experiments")
    const stopped = await createStartAndStop(
      page,
      "WhatsApp model",
      { label: "WhatsApp", id: "whatsapp" },
      {
        people: 24,
        check: async (card) => {
          const experiment = await experimentNamed("WhatsApp model")
          expect(experiment.variants[1]?.overrides).toEqual({
            token_multiplier: 1.5,
            max_message_length: 2000,
          })
          expect(await card.locator('[data-variant="treatment"]').textContent()).toContain(
            "multiplier 1.5, max message length 2,000",
          )
          const results = await api<ResultsAnswer>(
            `/api/subscriptions/${subscriptionId}/experiments/${experiment.id}/results`,
          )
          expect(results.variants.map((v) => v.people).reduce((a, b) => a + b, 0)).toBe(24)
          const drawn = results.variants.filter((v) => v.metric.interval && v.metric.value !== null)
          expect(drawn).toHaveLength(2)
          const chart = card.locator("svg.interval-chart")
          await chart.waitFor()
          const rows = chart.locator("g.interval")
          expect(await rows.count()).toBe(drawn.length)
          // Every number's position: x1 at the low end, the dot at the value, x2 at the high end.
          const points: { n: number; x: number }[] = []
          for (const [i, v] of drawn.entries()) {
            const row = rows.nth(i)
            expect(await row.locator("text").textContent()).toBe(v.name)
            const line = row.locator("line")
            const low = Number(await line.getAttribute("x1"))
            const high = Number(await line.getAttribute("x2"))
            const dot = Number(await row.locator("circle").getAttribute("cx"))
            expect(low).toBeLessThanOrEqual(dot)
            expect(dot).toBeLessThanOrEqual(high)
            const interval = v.metric.interval ?? { low: Number.NaN, high: Number.NaN }
            points.push(
              { n: interval.low, x: low },
              { n: v.metric.value ?? Number.NaN, x: dot },
              {
                n: interval.high,
                x: high,
              },
            )
            const cells = card.locator('[data-testid="variants"] tbody tr').nth(i).locator("td")
            expect(await cells.nth(6).textContent()).toBe(
              `${format(v.metric.value)} (${format(interval.low)} to ${format(interval.high)})`,
            )
          }
          // One linear scale for all: the same pixels per unit between any two numbers drawn.
          const lowest = points.reduce((a, b) => (b.n < a.n ? b : a))
          const highest = points.reduce((a, b) => (b.n > a.n ? b : a))
          const perUnit = (highest.x - lowest.x) / (highest.n - lowest.n)
          expect(perUnit).toBeGreaterThan(0)
          for (const point of points)
            expect(point.x - lowest.x).toBeCloseTo((point.n - lowest.n) * perUnit, 6)
          const verdict = await card.locator('[data-testid="verdict"]').textContent()
          expect(verdict).toBe(results.verdict.text)
          expect(verdict).toMatch(/^[A-Z][a-z]+( [\w,.;:%()'-]+){3,}$/)
          await screenshot(page, "experiments")
        },
      },
    )
    expect(stopped.status).toBe("stopped")
    expect(stopped.stopped_at).not.toBeNull()
  })

  it("shows a bad weight's message from the API next to the form", async () => {
    await open(page, "Experiments")
    await page.getByLabel("Experiment name").fill("bad")
    await page.getByLabel("Website").check()
    await page.getByLabel("variant 1 weight").fill("0")
    await page.getByLabel("variant 2 weight").fill("0")
    await page.getByRole("button", { name: "Create as draft" }).click()
    await page.getByRole("alert").waitFor()
    expect(await page.getByRole("alert").textContent()).toContain("variants")
    // The refusal is the point of this test.
    takeUnexpectedErrors(errors, ["/experiments"], /status of 400/)
  })

  it("names an override out of bounds from the API, and marks that variant's field", async () => {
    await open(page, "Experiments")
    await page.getByLabel("Experiment name").fill("bad priority")
    await page.getByLabel("Website").check()
    await page.getByText("Overrides of variant 2").click()
    await page.getByLabel("variant 2 priority").fill("11")
    await page.getByRole("button", { name: "Create as draft" }).click()
    await page.getByRole("alert").waitFor()
    expect(await page.getByRole("alert").textContent()).toMatch(/^variants\.1\.overrides\.priority: /)
    expect(await page.getByLabel("variant 2 priority").getAttribute("aria-invalid")).toBe("true")
    expect(await page.getByLabel("variant 1 priority").getAttribute("aria-invalid")).toBeNull()
    takeUnexpectedErrors(errors, ["/experiments"], /status of 400/)
  })

  it("fits a 390 px phone on both pages and the Forecast page, with the journeys' chart and tables readable", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      for (const link of ["Journeys", "Experiments", "Forecast"]) {
        await open(phone.page, link)
        await phone.page.waitForLoadState("networkidle")
        expect(await overflow(phone.page), link).toBeLessThanOrEqual(0)
        await screenshot(phone.page, `${link.toLowerCase()}-phone`)
      }
      await open(phone.page, "Journeys")
      await phone.page.locator("svg.flow").waitFor()
      const chart = await phone.page.locator("svg.flow").boundingBox()
      if (!chart) throw new Error("the flow chart is not drawn")
      expect(chart.x).toBeGreaterThanOrEqual(0)
      expect(chart.x + chart.width).toBeLessThanOrEqual(390)
      const labels = phone.page.locator("svg.flow text")
      expect(await labels.count()).toBeGreaterThan(0)
      for (const label of await labels.all()) {
        const text = String(await label.textContent())
        const box = await label.boundingBox()
        // At least 10 px tall once the chart is scaled to the phone, and not cut off at its edges.
        expect(box?.height, text).toBeGreaterThanOrEqual(10)
        expect(box?.x, text).toBeGreaterThanOrEqual(chart.x)
        expect((box?.x ?? 0) + (box?.width ?? Number.POSITIVE_INFINITY), text).toBeLessThanOrEqual(
          chart.x + chart.width,
        )
      }
      for (const name of ["transitions", "top-paths"]) {
        const table = await phone.page.evaluate<TableLayout>(tableLayout(name))
        expect(table.fontSize, name).toBeGreaterThanOrEqual(12)
        // Inside the screen, or scrolling inside its own box; no cell's text spills out of its cell.
        expect(table.boxRight, name).toBeLessThanOrEqual(390)
        expect(table.fits || table.scrolls, name).toBe(true)
        // A table wider than the phone says it scrolls, and how many columns it has.
        if (!table.fits)
          expect(
            await phone.page.locator(`[data-testid="${name}-scroll-hint"]`).textContent(),
            name,
          ).toContain("Scroll sideways for all 4 columns")
        expect(table.spilledCells, name).toEqual([])
      }
      await screenshot(phone.page, "journeys-phone")
    } finally {
      await phone.page.close()
    }
  })

  it("creates, starts and stops an experiment at 390 px without sideways scrolling", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      await open(phone.page, "Experiments")
      const stopped = await createStartAndStop(
        phone.page,
        "Website tone",
        { label: "Website widget", id: "website" },
        {
          people: 6,
          check: async (card) => {
            await card.locator('[data-testid="verdict"]').waitFor()
            expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
            await screenshot(phone.page, "experiments-running-phone")
          },
        },
      )
      expect(stopped.status).toBe("stopped")
      expect(await overflow(phone.page)).toBeLessThanOrEqual(0)
    } finally {
      await phone.page.close()
    }
  })
})

/** The results table's way of writing a figure (web/src/pages/Experiments.tsx). */
function format(n: number | null): string {
  if (n === null) return "–"
  return Math.abs(n) < 1
    ? n.toFixed(4)
    : new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(n)
}

interface TableLayout {
  fontSize: number
  boxRight: number
  fits: boolean
  scrolls: boolean
  spilledCells: string[]
}

/** How one of the Journeys page's tables is laid out, as an expression for the browser to evaluate. */
function tableLayout(name: string): string {
  return `(() => {
    const table = document.querySelector('[data-testid="${name}"]')
    const box = table.parentElement
    return {
      fontSize: Number.parseFloat(getComputedStyle(table.querySelector("td")).fontSize),
      boxRight: box.getBoundingClientRect().right,
      fits: table.getBoundingClientRect().width <= box.clientWidth + 0.5,
      scrolls: ["auto", "scroll"].includes(getComputedStyle(box).overflowX),
      spilledCells: [...table.querySelectorAll("th, td")]
        .filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
        .map((cell) => cell.textContent),
    }
  })()`
}
