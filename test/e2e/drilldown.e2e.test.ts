/**
 * Drill-down, the turn log, CSV downloads and the live view in Chromium (issue 16), against a server on
 * demo data, at desktop width and at 390 px: each table equals the API's JSON for the same question, a
 * downloaded CSV equals the API's CSV, a turn written while the turn log is open appears on its own; every
 * other table's download holds the rows the page shows.
 * Screenshots go to test-results/screenshots/ (drilldown-*). A console error fails the test.
 */
import { readFileSync } from "node:fs"
import type { Locator, Page } from "playwright-core"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { Subscription } from "../../src/core/subscription.js"
import type { BreakdownBody } from "../../src/http/routes/breakdown.js"
import type { TurnBody } from "../../src/http/routes/turns.js"
import type { ConsoleError } from "../support/browser.js"
import { parseCsv } from "../support/csv.js"
import {
  callApi,
  type DashboardFixture,
  dayIn,
  demoSubscription,
  screenshot,
  startDashboard,
  takeUnexpectedErrors,
} from "../support/dashboard.js"

const ADMIN_KEY = "om_admin_e2e_drilldown_0123456789abcdef"
const int = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 })

let dashboard: DashboardFixture
let page: Page
let errors: ConsoleError[]
let acme: Subscription

function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  return callApi<T>(dashboard.server.url, ADMIN_KEY, path, init)
}

async function text(target: Page, selector: string): Promise<string> {
  return ((await target.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim()
}

/** Signs `target` in as the admin and opens `path` of acme-retail. */
async function open(target: Page, path: string): Promise<void> {
  await target.goto(`${dashboard.server.url}/`)
  await target.getByLabel("API key").fill(ADMIN_KEY)
  await target.getByRole("button", { name: "Sign in" }).click()
  await target.getByRole("heading", { name: "Subscriptions" }).waitFor()
  const separator = path.includes("?") ? "&" : "?"
  await target.goto(`${dashboard.server.url}${path}${separator}subscription=${acme.id}`)
}

async function rowIds(target: Page): Promise<string[]> {
  return target
    .locator('[data-testid="turn-log"] tbody tr')
    .evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-usage-id") ?? ""))
}

beforeAll(async () => {
  dashboard = await startDashboard({ adminKey: ADMIN_KEY, ports: [18700, 18720] })
  ;({ page, errors } = dashboard)
  acme = demoSubscription(dashboard.demo, "acme-retail")
})
afterAll(async () => dashboard?.close())
afterEach(() => {
  expect(takeUnexpectedErrors(errors, [], /status of 4\d\d/)).toEqual([])
})

describe("drill-down in Chromium", () => {
  it("the breakdown by chatbot shows the API's items, sorts on a header click, and switches to end users", async () => {
    // The page's default period (the last 30 complete local days), asked of the API alike.
    const period = `from=${dayIn(acme.timezone, -30)}&to=${dayIn(acme.timezone, -1)}`
    await open(page, `/breakdown?${period}`)
    await page.getByRole("heading", { name: "Breakdown" }).waitFor()
    await page.locator('[data-testid="breakdown"]').waitFor()
    const answer = await api<BreakdownBody>(
      `/api/onboarding/analytics/${acme.id}/breakdown?by=chatbot&limit=25&${period}`,
    )
    // The demo's three bots, most tokens first.
    expect([...answer.items.map((i) => i.key)].sort()).toEqual(["faq-bot", "sales-bot", "support-bot"])
    const tokens = answer.items.map((i) => i.tokens_used)
    expect(tokens).toEqual([...tokens].sort((a, b) => b - a))
    const rows = page.locator('[data-testid="breakdown"] tbody tr')
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-key")))).toEqual(
      answer.items.map((i) => i.key ?? ""),
    )
    for (const item of answer.items) {
      const cells = await page
        .locator(`[data-testid="breakdown"] tr[data-key="${item.key}"] td`)
        .evaluateAll((tds) => tds.map((td) => td.textContent))
      expect(cells.slice(0, 6)).toEqual(
        [
          item.tokens_used,
          item.message_count,
          item.denied_count,
          item.turns,
          item.unique_users,
          item.sessions,
        ].map(int),
      )
    }
    await screenshot(page, "drilldown-01-breakdown-chatbots")

    await page.getByRole("button", { name: /^Tokens/ }).click()
    await expect.poll(() => new URL(page.url()).searchParams.get("order")).toBe("asc")
    const ascending = await api<BreakdownBody>(
      `/api/onboarding/analytics/${acme.id}/breakdown?by=chatbot&sort=tokens_used&order=asc&${period}`,
    )
    await expect
      .poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-key"))))
      .toEqual(ascending.items.map((i) => i.key ?? ""))

    await page.getByRole("link", { name: "End users" }).click()
    // The tab keeps the order chosen.
    const users = await api<BreakdownBody>(
      `/api/onboarding/analytics/${acme.id}/breakdown?by=user&sort=tokens_used&order=asc&limit=25&${period}`,
    )
    await expect.poll(() => text(page, "#breakdown-title")).toBe(`End users (${int(users.total_items)})`)
    await expect
      .poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-key"))))
      .toEqual(users.items.map((i) => i.key ?? ""))
    await page.getByRole("button", { name: "Next" }).click()
    await expect.poll(() => new URL(page.url()).searchParams.get("offset")).toBe("25")
    await screenshot(page, "drilldown-02-breakdown-users-page-2")
  })

  it("a chatbot opens the turn log filtered to it, and the denied filter narrows it", async () => {
    await page.getByRole("link", { name: "Chatbots" }).click()
    await page.locator('[data-testid="breakdown"] tbody tr').first().waitFor()
    const top = await page.locator('[data-testid="breakdown"] tbody tr').first().getAttribute("data-key")
    await page.getByRole("link", { name: top ?? "", exact: true }).click()
    await page.getByRole("heading", { name: "Turns" }).waitFor()
    await page.locator('[data-testid="turn-log"]').waitFor()
    const url = new URL(page.url())
    expect(url.searchParams.get("chatbot_id")).toBe(top)
    const since = url.searchParams.get("since") ?? ""
    const until = url.searchParams.get("until") ?? ""
    const list = await api<{ turns: TurnBody[] }>(
      `/api/subscriptions/${acme.id}/turns?chatbot_id=${top}&from=${since}&to=${until}&limit=50`,
    )
    expect(list.turns.length).toBe(50)
    expect(await rowIds(page)).toEqual(list.turns.map((t) => t.usage_id))

    await page.getByLabel("Decision").selectOption("denied")
    await page.getByRole("button", { name: "Apply filters" }).click()
    await expect.poll(() => new URL(page.url()).searchParams.get("decision")).toBe("denied")
    const denied = await api<{ turns: TurnBody[] }>(
      `/api/subscriptions/${acme.id}/turns?chatbot_id=${top}&from=${since}&to=${until}&decision=denied&limit=50`,
    )
    expect(denied.turns.length).toBeGreaterThan(0)
    await expect.poll(() => rowIds(page)).toEqual(denied.turns.map((t) => t.usage_id))
    expect(await page.locator('[data-testid="turn-log"] .decision-allowed').count()).toBe(0)
    await screenshot(page, "drilldown-03-turn-log-denied")
  })

  it("downloads the turn log as CSV: the API's CSV for the same filters", async () => {
    const url = new URL(page.url())
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ])
    expect(download.suggestedFilename()).toBe("turns.csv")
    const path = await download.path()
    const [header, ...rows] = parseCsv(readFileSync(path, "utf8"))
    const query = new URLSearchParams({
      chatbot_id: url.searchParams.get("chatbot_id") ?? "",
      from: url.searchParams.get("since") ?? "",
      to: url.searchParams.get("until") ?? "",
      decision: "denied",
      limit: "500",
    })
    // Every page of the JSON list, cursor by cursor: the CSV holds them all.
    const all: TurnBody[] = []
    for (let cursor: string | null = ""; cursor !== null; ) {
      const page: { turns: TurnBody[]; next_cursor: string | null } = await api(
        `/api/subscriptions/${acme.id}/turns?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
      )
      all.push(...page.turns)
      cursor = page.next_cursor
    }
    expect(header?.[0]).toBe("usage_id")
    expect(rows.map((r) => r[0])).toEqual(all.map((t) => t.usage_id))
  })

  it("opens one turn: its decision, its settlement and its session's other turns", async () => {
    const allowed = await api<{ turns: TurnBody[] }>(
      `/api/subscriptions/${acme.id}/turns?decision=allowed&channel=whatsapp&limit=1`,
    )
    const turn = allowed.turns[0]
    if (!turn?.session_id) throw new Error("no allowed whatsapp turn with a session")
    await page.goto(`${dashboard.server.url}/turns/${turn.usage_id}?subscription=${acme.id}`)
    await page.locator('[data-testid="turn-decision"]').waitFor()
    expect(await text(page, '[data-testid="turn-decision"] h2')).toBe("Decision allowed")
    expect(await text(page, '[data-testid="turn-decision"]')).toContain(turn.usage_id)
    expect(await text(page, '[data-testid="turn-settlement"]')).toContain(int(turn.billed_tokens))
    expect(await text(page, '[data-testid="turn-settlement"]')).toContain(turn.status)
    const session = await api<{ turns: TurnBody[] }>(
      `/api/subscriptions/${acme.id}/turns?session_id=${encodeURIComponent(turn.session_id)}&limit=100`,
    )
    await expect.poll(() => rowIds(page)).toEqual(session.turns.map((t) => t.usage_id))
    expect(
      await page
        .locator(`[data-testid="turn-log"] tr[data-usage-id="${turn.usage_id}"]`)
        .getAttribute("aria-current"),
    ).toBe("true")
    await screenshot(page, "drilldown-04-one-turn")
  })

  it("the turn log updates on its own while live, and shows when it last did", async () => {
    await page.goto(`${dashboard.server.url}/turns?subscription=${acme.id}`)
    await page.locator('[data-testid="turn-log"]').waitFor()
    const live = page.getByRole("switch", { name: "Live" })
    expect(await live.isChecked()).toBe(true)
    const before = await text(page, '[data-testid="live"]')
    expect(before).toMatch(/^Live ?Updated \d\d:\d\d:\d\d$/)
    const decision = await api<{ usage_id: string }>("/api/tokens/consume", {
      method: "POST",
      body: {
        entity_id: "acme-retail",
        entity_type: "organization",
        estimated_tokens: 42,
        channel: "website",
        chatbot_id: "live-bot",
        session_id: "live-session",
      },
    })
    await expect
      .poll(async () => (await rowIds(page))[0], { timeout: 25_000, interval: 500 })
      .toBe(decision.usage_id)
    expect(await text(page, '[data-testid="live"]')).not.toBe(before)
    await screenshot(page, "drilldown-05-turn-log-live")
    await live.click()
    expect(await live.isChecked()).toBe(false)
    await page.reload()
    await page.locator('[data-testid="turn-log"]').waitFor()
    expect(await page.getByRole("switch", { name: "Live" }).isChecked()).toBe(false)
    await page.getByRole("switch", { name: "Live" }).click()
  })

  it("the overview has the live switch and downloads its comparison as CSV", async () => {
    await page.goto(`${dashboard.server.url}/?subscription=${acme.id}`)
    await page.locator('[data-testid="comparison"]').waitFor()
    expect(await text(page, '[data-testid="live"]')).toMatch(/^Live ?Updated \d\d:\d\d:\d\d$/)
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.locator("#comparison-title").locator("..").getByRole("button", { name: "Download CSV" }).click(),
    ])
    expect(download.suggestedFilename()).toMatch(/^channel-comparison-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv$/)
    const [header, ...rows] = parseCsv(readFileSync(await download.path(), "utf8"))
    expect(header?.slice(0, 2)).toEqual(["rank", "channel"])
    expect(rows).toHaveLength(6)
  })
})

/** Opens `path` of acme-retail on the signed-in page. */
async function visit(path: string): Promise<void> {
  await page.goto(`${dashboard.server.url}${path}?subscription=${acme.id}`)
}

/** Clicks the download button named `name` inside `scope` and reads the file back. */
async function downloadFrom(scope: Locator, name: string | RegExp = "Download CSV") {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    scope.getByRole("button", { name }).click(),
  ])
  const rows = parseCsv(readFileSync(await download.path(), "utf8"))
  return { filename: download.suggestedFilename(), header: rows[0] ?? [], rows: rows.slice(1) }
}

/** One column of a downloaded file, by its header. */
function column(file: { header: string[]; rows: string[][] }, name: string): string[] {
  const index = file.header.indexOf(name)
  expect(index, `${name} in ${file.header.join(",")}`).toBeGreaterThanOrEqual(0)
  return file.rows.map((row) => row[index] ?? "")
}

/** `selector`'s elements: the value of `attribute`, or their text. */
function read(selector: string, attribute?: string): Promise<string[]> {
  return page
    .locator(selector)
    .evaluateAll(
      (elements, name) =>
        elements.map((e) => (name ? e.getAttribute(name) : e.textContent)?.replace(/\s+/g, " ").trim() ?? ""),
      attribute,
    )
}

describe("a download on every other table, holding the rows the page shows", () => {
  it("the forecast per channel and the insights", async () => {
    await visit("/forecast")
    await page.locator('[data-testid="forecast-channels"]').waitFor()
    const file = await downloadFrom(page.locator('[data-testid="forecast"] .panel-head'))
    expect(file.filename).toMatch(/^forecast-\d{4}-\d\d-\d\d\.csv$/)
    const used = Object.fromEntries(
      column(file, "channel").map((channel, i) => [channel, int(Number(column(file, "used_tokens")[i]))]),
    )
    const channels = await read('[data-testid="forecast-channels"] tr[data-channel]', "data-channel")
    expect(channels).toContain("total")
    const shown = await read('[data-testid="forecast-channels"] tr[data-channel] [data-column="used_tokens"]')
    expect(Object.fromEntries(channels.map((c, i) => [c, shown[i]]))).toEqual(
      Object.fromEntries(channels.map((c) => [c, used[c]])),
    )
    const insights = await downloadFrom(page.locator("#insights-title").locator(".."))
    expect(column(insights, "kind")).toEqual(await read('[data-testid="insights"] > li', "data-kind"))
    expect(column(insights, "title")).toEqual(await read('[data-testid="insights"] > li h3'))
  })

  it("outcomes per channel", async () => {
    await visit("/outcomes")
    await page.locator('[data-testid="outcomes-table"]').waitFor()
    const file = await downloadFrom(page.locator("#outcomes-table-title").locator(".."))
    expect(file.filename).toMatch(/^outcomes-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv$/)
    const cost = Object.fromEntries(column(file, "channel").map((c, i) => [c, column(file, "cost")[i]]))
    const channels = await read('[data-testid="outcomes-table"] tbody tr', "data-channel")
    expect(channels.length).toBeGreaterThan(0)
    const shown = await read('[data-testid="outcomes-table"] tbody [data-metric="cost"]', "title")
    expect(shown).toEqual(channels.map((c) => cost[c]))
  })

  it("the journeys' top paths", async () => {
    await visit("/journeys")
    await page.locator('[data-testid="top-paths"]').waitFor()
    const file = await downloadFrom(
      page.locator('[data-testid="top-paths"]').locator("xpath=ancestor::section[1]"),
    )
    expect(file.filename).toMatch(/^journeys-top_paths-/)
    const people = await read('[data-testid="top-paths"] tbody td:nth-child(2)')
    expect(people.length).toBeGreaterThan(0)
    expect(column(file, "people").map((n) => int(Number(n)))).toEqual(people)
  })

  it("the saved dashboards", async () => {
    await visit("/dashboards")
    await page.locator('[data-testid="dashboard-list"]').waitFor()
    const file = await downloadFrom(page.locator(".page-head"), "Download list CSV")
    expect(file.filename).toBe("dashboards.csv")
    expect(column(file, "name")).toEqual(await read('[data-testid="dashboard-list"] .dashboard-name'))
  })

  it("the admin console's ranking, and a subscription's keys and webhook endpoints", async () => {
    await page.goto(`${dashboard.server.url}/`)
    await page.getByRole("heading", { name: "Admin console" }).waitFor()
    await page.locator('[data-testid="ranking"]').waitFor()
    const ranking = await downloadFrom(page.locator("#ranking-title").locator(".."))
    expect(column(ranking, "subscription_id")).toEqual(
      await read('[data-testid="ranking"] tbody tr', "data-subscription"),
    )
    expect(column(ranking, "tokens_used").map((n) => int(Number(n)))).toEqual(
      await read('[data-testid="ranking"] tbody [data-metric="tokens_used"]'),
    )
    await page.goto(`${dashboard.server.url}/admin/subscriptions/${acme.id}`)
    await page.getByRole("heading", { name: "API keys" }).waitFor()
    const issued = await api<{ key_id: string }>(`/api/subscriptions/${acme.id}/keys`, {
      method: "POST",
      body: { label: 'csv, "quoted"' },
    })
    await page.reload()
    await page.locator(`[data-testid="keys"] tr[data-key="${issued.key_id}"]`).waitFor()
    const keys = await downloadFrom(page.getByRole("heading", { name: "API keys" }).locator(".."))
    expect(column(keys, "key_id")).toEqual(await read('[data-testid="keys"] tbody tr', "data-key"))
    expect(column(keys, "label")).toContain('csv, "quoted"')
    const webhooks = await downloadFrom(
      page.getByRole("heading", { name: "Webhook endpoints" }).locator(".."),
    )
    const listed = await api<{ webhooks: { id: string }[] }>(`/api/subscriptions/${acme.id}/webhooks`)
    expect(column(webhooks, "id")).toEqual(listed.webhooks.map((w) => w.id))
    expect(webhooks.rows).toHaveLength(await page.locator('[data-testid="admin-webhooks"] > li').count())
  })
})

/** The elements that stick out past the right edge (outside a scrolling table), to name the culprit. */
const OVERFLOW = `[...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest(".table-scroll"))
  .slice(0, 5)
  .map((e) => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`

async function expectFits(target: Page): Promise<void> {
  const sideways = await target.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")
  expect(sideways, String(await target.evaluate<string[]>(OVERFLOW))).toBeLessThanOrEqual(0)
}

describe("drill-down at phone width (390 px)", () => {
  it.each([
    ["/breakdown", '[data-testid="breakdown"]', "drilldown-phone-01-breakdown"],
    ["/turns", '[data-testid="turn-log"]', "drilldown-phone-02-turns"],
  ])("%s fits the screen: the page does not scroll sideways, its table does", async (path, table, name) => {
    const phone = await dashboard.browser.page({ width: 390, height: 844 })
    try {
      await open(phone.page, path)
      await phone.page.locator(table).waitFor()
      await expectFits(phone.page)
      await screenshot(phone.page, name)
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })

  it("one turn fits the screen", async () => {
    const phone = await dashboard.browser.page({ width: 390, height: 844 })
    try {
      const list = await api<{ turns: TurnBody[] }>(`/api/subscriptions/${acme.id}/turns?limit=1`)
      await open(phone.page, `/turns/${list.turns[0]?.usage_id}`)
      await phone.page.locator('[data-testid="turn-settlement"]').waitFor()
      await expectFits(phone.page)
      await screenshot(phone.page, "drilldown-phone-03-one-turn")
      expect(phone.errors).toEqual([])
    } finally {
      await phone.page.close()
    }
  })
})
