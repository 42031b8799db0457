/**
 * The Redis Cluster hash slot of a key, computed as Redis does (CRC16-XMODEM of the key, or of its hash tag,
 * modulo 16384), so that a burst of rate-limit decisions can be split into one script call per slot.
 * Pure: no I/O.
 */

const SLOTS = 16_384

const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let byte = 0; byte < 256; byte += 1) {
    let crc = byte << 8
    for (let bit = 0; bit < 8; bit += 1)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[byte] = crc
  }
  return table
})()

/** CRC16-XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster uses. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0)
  return crc
}

/**
 * The slot of `key`: only the part between the first "{" and the next "}" counts when that part is not
 * empty (the hash tag), so `rl:{sub:web}` and `rl:{sub:web}:meta` share a slot.
 * @example keySlot("foo") // 12182
 */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, "utf8")
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS
  }
  return crc16(bytes) % SLOTS
}
