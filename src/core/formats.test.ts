import { describe, expect, it } from "vitest"
import { isInstantInRange, isText } from "./formats.js"

describe("the text rule", () => {
  it.each(["", "plain", "ünïcödé", "emoji \u{1F600} pair", "tab\tand newline\n"])("accepts %j", (value) => {
    expect(isText(value)).toBe(true)
  })
  it.each(["a\u0000b", "\ud800", "x\udbff", "\udc00y", "\udc00\ud800", "ok\u{1F600}\ud83d"])(
    "refuses %j (U+0000 or a lone surrogate)",
    (value) => {
      expect(isText(value)).toBe(false)
    },
  )
})

describe("the time rule", () => {
  it.each(["1970-01-01T00:00:00Z", "2026-03-01T10:00:00+05:45", "9999-12-31T23:59:59.999Z"])(
    "accepts %s",
    (value) => {
      expect(isInstantInRange(value)).toBe(true)
    },
  )
  it.each([
    "1969-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-00:01",
    "2026-02-30T00:00:00Z",
    "2026-01-01",
    "yesterday",
  ])("refuses %s", (value) => {
    expect(isInstantInRange(value)).toBe(false)
  })
})
