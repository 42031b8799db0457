import { createHmac } from "node:crypto"
import { describe, expect, it } from "vitest"
import { newWebhookSecret, signatureHeader, verifyWebhookSignature } from "./signature.js"
import { isPrivateAddress, webhookUrlProblem } from "./url-guard.js"

describe("webhook signatures", () => {
  const secret = "whsec_test"
  const body = '{"id":"evt_1","type":"quota.threshold_reached"}'

  it("sign HMAC-SHA256 over timestamp, a dot and the body", () => {
    const expected = createHmac("sha256", secret).update(`1764000000.${body}`).digest("hex")
    expect(signatureHeader(secret, 1764000000, body)).toBe(`t=1764000000,v1=${expected}`)
  })

  it("verify a genuine call and reject a changed body, a wrong secret, an old timestamp or no header", () => {
    const header = signatureHeader(secret, 1764000000, body)
    expect(verifyWebhookSignature(secret, header, body, 1764000100)).toEqual({
      valid: true,
      timestamp: 1764000000,
    })
    expect(verifyWebhookSignature(secret, header, `${body} `, 1764000100).valid).toBe(false)
    expect(verifyWebhookSignature("whsec_other", header, body, 1764000100).valid).toBe(false)
    expect(verifyWebhookSignature(secret, header, body, 1764000301)).toMatchObject({ valid: false })
    expect(verifyWebhookSignature(secret, undefined, body, 1764000000)).toEqual({
      valid: false,
      reason: "no signature header",
    })
    expect(verifyWebhookSignature(secret, "v1=abc", body, 1764000000).valid).toBe(false)
  })

  it("accept any of several v1 signatures (secret rotation)", () => {
    const good = signatureHeader(secret, 1764000000, body)
    const header = `t=1764000000,v1=${"0".repeat(64)},${good.split(",")[1]}`
    expect(verifyWebhookSignature(secret, header, body, 1764000000).valid).toBe(true)
  })

  it("make a fresh 256-bit secret each time", () => {
    const a = newWebhookSecret()
    expect(a).toMatch(/^whsec_[\w-]{43}$/)
    expect(newWebhookSecret()).not.toBe(a)
  })
})

describe("webhook URL guard", () => {
  it("knows private, loopback, link-local and mapped addresses from public ones", () => {
    for (const address of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fd00::1",
      "fe80::1",
      "::ffff:10.0.0.1",
      "[::1]",
    ]) {
      expect(isPrivateAddress(address), address).toBe(true)
    }
    for (const address of ["8.8.8.8", "172.32.0.1", "2606:4700::1111", "example.com"]) {
      expect(isPrivateAddress(address), address).toBe(false)
    }
  })

  it("allows private receivers only when configured, and never other schemes or credentials", () => {
    expect(webhookUrlProblem("http://127.0.0.1:8080/x", false)).toBe(
      "points at a private or loopback address",
    )
    expect(webhookUrlProblem("http://127.0.0.1:8080/x", true)).toBeNull()
    expect(webhookUrlProblem("http://app.localhost/x", false)).toBe("points at a private or loopback address")
    expect(webhookUrlProblem("https://hooks.example.com/x", false)).toBeNull()
    expect(webhookUrlProblem("file:///etc/passwd", true)).toBe("must start with https:// or http://")
    expect(webhookUrlProblem("https://a:b@example.com/", true)).toBe("must not carry credentials")
    expect(webhookUrlProblem("::", true)).toBe("is not a valid URL")
  })

  it("refuses port 0, which no receiver can listen on, even where private receivers are allowed", () => {
    expect(webhookUrlProblem("https://example.com:0/", false)).toBe("must not use port 0")
    expect(webhookUrlProblem("http://127.0.0.1:0/x", true)).toBe("must not use port 0")
    expect(webhookUrlProblem("https://example.com:443/", false)).toBeNull()
  })
})
