import { describe, expect, it } from "vitest"
import { uuidV7, uuidV7Time } from "./ids.js"

describe("turn ids", () => {
  it("a UUIDv7 carries its millisecond, version 7 and the RFC variant", () => {
    const at = Date.UTC(2026, 10, 29, 19, 30, 15, 123)
    const id = uuidV7(at)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(uuidV7Time(id)).toBe(at)
    // The time, read back independently: the first 12 hex digits are the milliseconds.
    expect(Number.parseInt(id.replaceAll("-", "").slice(0, 12), 16)).toBe(at)
  })

  it("ids of the same millisecond differ, and later milliseconds sort after earlier ones", () => {
    const at = 1_764_444_615_123
    const ids = new Set(Array.from({ length: 1000 }, () => uuidV7(at)))
    expect(ids.size).toBe(1000)
    expect(uuidV7(at + 1) > uuidV7(at)).toBe(true)
    expect(uuidV7(0)).toMatch(/^00000000-0000-7/)
    expect(uuidV7Time(uuidV7(0xffff_ffff_ffff))).toBe(0xffff_ffff_ffff)
  })

  it("a time outside 48 bits, or not a number, is refused", () => {
    expect(() => uuidV7(-1)).toThrow(RangeError)
    expect(() => uuidV7(2 ** 48)).toThrow(RangeError)
    expect(() => uuidV7(Number.NaN)).toThrow(RangeError)
  })

  it("a random (v4) UUID has no time", () => {
    expect(uuidV7Time("0b9f2c4e-1d3a-4f5b-8c6d-7e8f9a0b1c2d")).toBeUndefined()
    expect(uuidV7Time("not a uuid")).toBeUndefined()
  })
})
