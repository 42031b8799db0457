/**
 * Turn ids: UUIDv7 (RFC 9562), made by the service before a turn is written. The id is known before the
 * write, so after a lost reply the turn can be looked up instead of guessed; and its first 48 bits are
 * the turn's time in Unix milliseconds, which names the ledger partition that holds it.
 */
import { getRandomValues } from "node:crypto"

/**
 * A UUIDv7 whose timestamp is `atMs` (the turn's created_at), with 74 random bits.
 * @example
 * const id = uuidV7(Date.now()) // "0193c8a2-4b1e-7c3d-9f00-..."
 * uuidV7Time(id) === Math.trunc(Date.now()) // within the same millisecond
 */
export function uuidV7(atMs: number): string {
  if (!Number.isFinite(atMs) || atMs < 0 || atMs > 0xffff_ffff_ffff)
    throw new RangeError(`a UUIDv7 time must be 0 to 2^48-1 ms (got ${atMs})`)
  const bytes = getRandomValues(new Uint8Array(16))
  let ms = Math.trunc(atMs)
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = ms % 256
    ms = Math.floor(ms / 256)
  }
  bytes[6] = 0x70 | ((bytes[6] ?? 0) & 0x0f)
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f)
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The Unix-millisecond time of a UUIDv7, or undefined for any other UUID. */
export function uuidV7Time(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) return undefined
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * Whether `value` is a UUID in its canonical text form (any version): checked before an id reaches SQL.
 * @example isUuid("0190a5f2-8c1e-7000-8000-000000000000") // true
 */
export function isUuid(value: string): boolean {
  return UUID.test(value)
}
