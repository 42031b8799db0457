/**
 * Webhook signatures: HMAC-SHA256 over `${timestamp}.${body}` with the endpoint's secret, sent as
 * `Omnimeter-Signature: t=<unix seconds>,v1=<hex digest>`. Signing the timestamp with the body lets a
 * receiver reject both forged calls (wrong digest) and replayed ones (timestamp too old).
 * `examples/verify-webhook.ts` shows a receiver; the README has the same check in Python.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

export const SIGNATURE_HEADER = "omnimeter-signature"

/** A new endpoint secret: 32 random bytes, recognisable by its prefix. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`
}

/**
 * The signature header value for `body` sent at `timestampSeconds`.
 * @example signatureHeader("whsec_x", 1764000000, '{"id":"1"}') // "t=1764000000,v1=5f3c..."
 */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  const digest = createHmac("sha256", secret).update(`${timestampSeconds}.${body}`).digest("hex")
  return `t=${timestampSeconds},v1=${digest}`
}

export type VerifyResult = { valid: true; timestamp: number } | { valid: false; reason: string }

/**
 * Checks a received webhook: the header's digest must match the raw body, and its timestamp must be within
 * `toleranceSeconds` of `nowSeconds` (default 300 s).
 * @example
 * const check = verifyWebhookSignature(secret, request.headers["omnimeter-signature"], rawBody, Date.now() / 1000)
 * if (!check.valid) return reply.status(400).send(check.reason)
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): VerifyResult {
  if (!header) return { valid: false, reason: "no signature header" }
  const parts = new Map<string, string[]>()
  for (const item of header.split(",")) {
    const at = item.indexOf("=")
    if (at <= 0) continue
    const key = item.slice(0, at).trim()
    parts.set(key, [...(parts.get(key) ?? []), item.slice(at + 1).trim()])
  }
  const timestamp = Number(parts.get("t")?.[0])
  if (!Number.isInteger(timestamp)) return { valid: false, reason: "no timestamp in the signature header" }
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds)
    return { valid: false, reason: "timestamp outside the tolerance (replayed or clock skew)" }
  const expected = Buffer.from(signatureHeader(secret, timestamp, body).split("v1=")[1] ?? "", "hex")
  for (const candidate of parts.get("v1") ?? []) {
    const given = Buffer.from(candidate, "hex")
    if (given.length === expected.length && timingSafeEqual(given, expected))
      return { valid: true, timestamp }
  }
  return { valid: false, reason: "signature does not match" }
}
