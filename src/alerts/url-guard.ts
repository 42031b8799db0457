/**
 * SSRF care for tenant-supplied webhook URLs. A receiver must be http(s) on a public address: loopback,
 * private (RFC 1918, unique-local), link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
 * multicast and reserved ranges are refused — at creation for literal addresses, and at every delivery for
 * the addresses the name resolves to (checked inside the connection's own DNS lookup, so a name cannot
 * resolve to a public address for the check and a private one for the connection). Operators who run
 * receivers on their own network (and the tests, on loopback) set OMNIMETER_WEBHOOK_ALLOW_PRIVATE=true.
 */
import { BlockList, isIP } from "node:net"

const blocked = new BlockList()
for (const [network, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const) {
  blocked.addSubnet(network, prefix, "ipv4")
}
for (const [network, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  blocked.addSubnet(network, prefix, "ipv6")
}

/** True when `address` (an IP literal) is not on the public internet. */
export function isPrivateAddress(address: string): boolean {
  const unbracketed = address.replace(/^\[|\]$/g, "")
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unbracketed)
  const candidate = mapped?.[1] ?? unbracketed
  const family = isIP(candidate)
  if (family === 0) return false
  return blocked.check(candidate, family === 4 ? "ipv4" : "ipv6")
}

/**
 * Why `raw` may not be a webhook receiver, or null when it may. Names are checked again at delivery.
 * @example webhookUrlProblem("http://127.0.0.1:9000/hook", false) // "points at a private or loopback address"
 */
export function webhookUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return "is not a valid URL"
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must start with https:// or http://"
  if (url.username || url.password) return "must not carry credentials"
  // Port 0 names no port: nothing can be delivered there.
  if (url.port === "0") return "must not use port 0"
  if (allowPrivate) return null
  const host = url.hostname.toLowerCase()
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".internal"))
    return "points at a private or loopback address"
  if (isPrivateAddress(host)) return "points at a private or loopback address"
  return null
}
