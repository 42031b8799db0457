/**
 * The partial-day rule across the API (issue 16, fix 1), on both databases: every analytics endpoint left
 * without `from` and `to` answers the same default period, the 30 local days to today in the
 * subscription's timezone, and marks today partial (`complete_to` is yesterday), so trend and growth leave
 * it out; the question the dashboard's presets ask (N days to yesterday) is a period that is over, whose
 * trend and growth read every day. One rule, checked where today differs from the UTC day.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { startTestApp, type TestApp } from "../support/http.js"

// 12:00 UTC on March 10 is 02:00 on March 11 in Kiritimati (UTC+14): its today is the 11th.
const NOW = Date.parse("2026-03-10T12:00:00Z")
const clock = new ManualClock(NOW)
let t: TestApp
let sub: Awaited<ReturnType<TestApp["subscription"]>>

const TODAY = "2026-03-11"
const YESTERDAY = "2026-03-10"
const FROM = "2026-02-10" // 29 days before today

const get = async (path: string) => {
  const res = await t.request({ url: `/api/onboarding/analytics/${sub.id}${path}`, key: sub.key })
  expect(res.statusCode, res.body).toBe(200)
  return res.json()
}

beforeAll(async () => {
  t = await startTestApp({ clock })
  sub = await t.subscription({ timezone: "Pacific/Kiritimati", token_limit: 10_000_000 })
  // Ten turns a day on the website for the four days before today, and one so far today.
  for (let day = 4; day >= 0; day--) {
    for (let n = 0; n < (day === 0 ? 1 : 10); n++) {
      clock.set(NOW - day * 86_400_000 - n * 60_000)
      const res = await t.request({
        method: "POST",
        url: "/api/tokens/consume",
        key: sub.key,
        payload: {
          entity_id: sub.entityId,
          entity_type: "organization",
          channel: "website",
          estimated_tokens: 100,
        },
      })
      expect(res.json().allowed).toBe(true)
    }
  }
  clock.set(NOW)
})
afterAll(async () => t.close())

describe("the default period and the partial day", () => {
  it("every analytics endpoint defaults to the 30 local days to today, today partial", async () => {
    const answers = {
      comprehensive: await get(""),
      comparison: await get("/channels/comparison"),
      trends: await get("/channels/website/trends"),
      breakdown: await get("/breakdown?by=chatbot"),
      outcomes: await get("/outcomes"),
    }
    for (const [name, answer] of Object.entries(answers)) {
      expect(answer.period, name).toMatchObject({ from: FROM, to: TODAY, days: 30, complete_to: YESTERDAY })
    }
    const journeys = await get("/journeys")
    expect(journeys.period).toMatchObject({ from: FROM, to: TODAY, time_zone: "Pacific/Kiritimati" })
    const forecast = await get("/forecast")
    expect(forecast.activity_period).toEqual({ from: FROM, to: TODAY, timezone: "Pacific/Kiritimati" })
  })

  it("today's turn counts in the totals, not in trend or growth", async () => {
    // `to` left out: today. Four complete days of ten turns, a flat line, then today's one turn so far.
    const answer = await get("?from=2026-03-07")
    expect(answer.period).toMatchObject({ from: "2026-03-07", to: TODAY, days: 5, complete_to: YESTERDAY })
    expect(answer.previous_period).toMatchObject({ from: "2026-03-03", to: "2026-03-06", days: 4 })
    expect(answer.totals.message_count).toBe(41)
    expect(answer.totals.complete.message_count).toBe(40)
    // Stable, though today's single turn as a fifth point would read as a fall.
    expect(answer.totals.trend_direction).toBe("stable")
    expect(answer.totals.trend_slope).toBe(0)
  })

  it("the dashboard's presets ask a period that is over: N days to yesterday, every day complete", async () => {
    const answer = await get(`?from=2026-03-04&to=${YESTERDAY}`)
    expect(answer.period).toMatchObject({
      from: "2026-03-04",
      to: YESTERDAY,
      days: 7,
      complete_to: YESTERDAY,
    })
    expect(answer.previous_period).toMatchObject({ from: "2026-02-25", to: "2026-03-03", days: 7 })
    expect(answer.totals.message_count).toBe(40)
    expect(answer.totals.complete.message_count).toBe(40)
  })
})
