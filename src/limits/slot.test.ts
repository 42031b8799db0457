import { describe, expect, it } from "vitest"
import { crc16, keySlot } from "./slot.js"

describe("the Redis Cluster hash slot", () => {
  it("is the CRC16-XMODEM check value of the reference string", () => {
    expect(crc16(Buffer.from("123456789"))).toBe(0x31c3)
  })

  it("matches the slots Redis documents for plain keys", () => {
    // From the Redis Cluster specification and `CLUSTER KEYSLOT` on a real server.
    expect(keySlot("foo")).toBe(12182)
    expect(keySlot("bar")).toBe(5061)
    expect(keySlot("")).toBe(0)
  })

  it("hashes only the hash tag, so a limit's log and meta keys share one slot", () => {
    expect(keySlot("{user1000}.following")).toBe(keySlot("{user1000}.followers"))
    expect(keySlot("omnimeter:rl:{sub:web}")).toBe(keySlot("omnimeter:rl:{sub:web}:meta"))
    expect(keySlot("omnimeter:rl:{sub:web}")).toBe(keySlot("sub:web"))
  })

  it("hashes the whole key when the braces hold nothing or do not close", () => {
    expect(keySlot("foo{}{bar}")).toBe(crc16(Buffer.from("foo{}{bar}")) % 16384)
    expect(keySlot("foo{bar")).toBe(crc16(Buffer.from("foo{bar")) % 16384)
    expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"))
  })
})
