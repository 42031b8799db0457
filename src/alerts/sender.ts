/**
 * Sending one webhook request: the WebhookSender interface, and the real implementation over node:http(s)
 * with a hard timeout and the SSRF guard applied to every address the receiver's name resolves to.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns"
import http from "node:http"
import https from "node:https"
import type { LookupFunction } from "node:net"
import { isPrivateAddress, webhookUrlProblem } from "./url-guard.js"

export interface WebhookRequest {
  url: string
  body: string
  headers: Readonly<Record<string, string>>
}

/** A 2xx answer is delivered; anything else (status, refusal, timeout) is a failed attempt. */
export type WebhookResponse =
  | { delivered: true; status: number }
  | { delivered: false; status: number | null; error: string }

export interface WebhookSender {
  send(request: WebhookRequest): Promise<WebhookResponse>
}

export interface HttpWebhookSenderOptions {
  /** The whole request, connection to last byte, must finish within this. */
  timeoutMs: number
  /** Allow loopback and private receivers (tests, receivers on the operator's own network). */
  allowPrivateNetworks: boolean
}

/** The first bytes of an error answer are kept for the delivery log. */
const ERROR_BODY_BYTES = 512

/** POSTs over the network. */
export class HttpWebhookSender implements WebhookSender {
  constructor(private readonly options: HttpWebhookSenderOptions) {}

  send(request: WebhookRequest): Promise<WebhookResponse> {
    const problem = webhookUrlProblem(request.url, this.options.allowPrivateNetworks)
    if (problem) return Promise.resolve({ delivered: false, status: null, error: `url ${problem}` })
    const url = new URL(request.url)
    const client = url.protocol === "https:" ? https : http
    return new Promise((resolve) => {
      let settled = false
      const finish = (result: WebhookResponse) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resolve(result)
      }
      const req = client.request(
        url,
        {
          method: "POST",
          headers: { ...request.headers, "content-length": Buffer.byteLength(request.body).toString() },
          lookup: this.options.allowPrivateNetworks ? undefined : publicOnlyLookup,
          agent: false,
        },
        (res) => {
          const status = res.statusCode ?? 0
          let kept = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => {
            if (kept.length < ERROR_BODY_BYTES) kept += chunk.slice(0, ERROR_BODY_BYTES - kept.length)
          })
          res.on("end", () =>
            finish(
              status >= 200 && status < 300
                ? { delivered: true, status }
                : { delivered: false, status, error: `HTTP ${status}${kept ? `: ${kept}` : ""}` },
            ),
          )
          res.on("error", (error) => finish({ delivered: false, status, error: error.message }))
        },
      )
      const timer = setTimeout(() => {
        req.destroy()
        finish({ delivered: false, status: null, error: `timed out after ${this.options.timeoutMs} ms` })
      }, this.options.timeoutMs)
      req.on("error", (error) => finish({ delivered: false, status: null, error: error.message }))
      req.end(request.body)
    })
  }
}

/** DNS lookup that refuses names resolving to any private address (checked for the connection itself). */
const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, "", 0)
    const bad = addresses.find((a) => isPrivateAddress(a.address))
    if (bad || addresses.length === 0) {
      const refused = Object.assign(new Error(`${hostname} resolves to a private address`), {
        code: "EPRIVATE",
      })
      return callback(refused, "", 0)
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses)
    const first = addresses[0] as LookupAddress
    return callback(null, first.address, first.family)
  })
}
