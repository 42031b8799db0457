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

describe("the Experiments page", () => {
  it("creates an experiment, starts it, and shows its results and verdict in words", async () => {
    await open(page, "Experiments")
    await page.getByLabel("Experiment name").fill("WhatsApp model")
    await page.getByLabel("WhatsApp").check()
    await page.getByLabel("Primary metric").selectOption("tokens_per_turn")
    await page.getByLabel("variant 2 multiplier").fill("1.5")
    await page.getByLabel("variant 2 label").fill("small-model")
    await page.getByRole("button", { name: "Create as draft" }).click()
    const card = page.locator('[data-testid="experiment-WhatsApp model"]')
    await card.getByRole("button", { name: "Start" }).click()
    await card.getByRole("button", { name: "Stop" }).waitFor()
    const list = await api<{ experiments: { id: string; status: string }[] }>(
      `/api/subscriptions/${subscriptionId}/experiments`,
    )
    expect(list.experiments[0]?.status).toBe("running")
    const results = await api<{ verdict: { text: string } }>(
      `/api/subscriptions/${subscriptionId}/experiments/${list.experiments[0]?.id}/results`,
    )
    await card.locator('[data-testid="verdict"]').waitFor()
    expect(await card.locator('[data-testid="verdict"]').textContent()).toBe(results.verdict.text)
    await screenshot(page, "experiments")
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

  it("fits a 390 px phone on both pages, and the Forecast page with its recommendations", async () => {
    const phone = await browser.page({ width: 390, height: 844 })
    try {
      for (const link of ["Journeys", "Experiments", "Forecast"]) {
        await open(phone.page, link)
        await phone.page.waitForLoadState("networkidle")
        const overflow = await phone.page.evaluate<number>(
          "document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        expect(overflow, link).toBeLessThanOrEqual(0)
        await screenshot(phone.page, `${link.toLowerCase()}-phone`)
      }
    } finally {
      await phone.page.close()
    }
  })
})
