/**
 * Driving several omnimeter server processes over HTTP in the fault suite: subscriptions, turns, a bounded
 * load of concurrent clients that records every answer with its time, the Prometheus figures, and the
 * ledger as SQL sees it (the independent recomputation the grants are checked against).
 */
import { randomBytes } from "node:crypto"
import type pg from "pg"
import { ADMIN_KEY } from "./http.js"
import type { ServerProcess } from "./processes.js"

export interface Answer {
  status: number
  text: string
  json(): Record<string, unknown>
}

export async function call(
  server: Pick<ServerProcess, "url">,
  method: string,
  path: string,
  body?: unknown,
  key = ADMIN_KEY,
): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  return { status: response.status, text, json: () => JSON.parse(text) as Record<string, unknown> }
}

export interface TestSubscription {
  id: string
  entityId: string
}

/** A subscription on the enterprise plan whose `website` channel allows `requestsPerMinute`. */
export async function createSubscription(
  server: ServerProcess,
  tokenLimit: number,
  requestsPerMinute: number,
): Promise<TestSubscription> {
  const entityId = `chaos-${randomBytes(6).toString("hex")}`
  const created = await call(server, "POST", "/api/subscriptions", {
    entity_id: entityId,
    entity_type: "organization",
    plan: "enterprise",
    token_limit: tokenLimit,
  })
  if (created.status !== 201) throw new Error(`subscription not created: ${created.status} ${created.text}`)
  const id = String(created.json().id)
  const configured = await call(server, "PUT", `/api/onboarding/subscription/${id}/channels/website/config`, {
    requests_per_minute: requestsPerMinute,
    tokens_per_minute: 100_000_000,
  })
  if (configured.status !== 200) throw new Error(`channel not configured: ${configured.text}`)
  return { id, entityId }
}

/** A subscription key for `subscription` (shown once). */
export async function issueKey(server: ServerProcess, subscription: TestSubscription): Promise<string> {
  const issued = await call(server, "POST", `/api/subscriptions/${subscription.id}/keys`, { label: "chaos" })
  if (issued.status !== 201) throw new Error(`key not issued: ${issued.status} ${issued.text}`)
  return String(issued.json().key)
}

export function consume(
  server: ServerProcess,
  entityId: string,
  estimatedTokens = 10,
  key = ADMIN_KEY,
): Promise<Answer> {
  return call(
    server,
    "POST",
    "/api/tokens/consume",
    {
      entity_id: entityId,
      entity_type: "organization",
      estimated_tokens: estimatedTokens,
      channel: "website",
    },
    key,
  )
}

/** The value of one Prometheus sample (`name` with exactly these labels), 0 when absent. */
export async function metric(
  server: ServerProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = (await call(server, "GET", "/metrics")).text
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const got = (match[2] ?? "")
      .split(",")
      .filter((part) => part !== "")
      .sort()
    if (got.join(",") === wanted.join(",")) return Number(match[3])
  }
  return 0
}

/** The sum of a counter over every label set whose labels include `labels`. */
export async function metricSum(
  server: ServerProcess,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = (await call(server, "GET", "/metrics")).text
  let sum = 0
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const got = match[2] ?? ""
    if (Object.entries(labels).every(([k, v]) => got.includes(`${k}="${v}"`))) sum += Number(match[3])
  }
  return sum
}

export interface Outcome {
  /** ms since the load started, when the answer arrived. */
  at: number
  status: number
  /** Which server answered (index into the servers given). */
  server: number
  /** The subscription asked for. */
  entityId: string
}

/**
 * `clients` concurrent loops, each sending one turn after another (client i starts on server i mod n and
 * moves on round robin), until `stop()` returns true. `pick` chooses the subscription of each turn.
 */
export async function runLoad(options: {
  servers: ServerProcess[]
  clients: number
  stop: () => boolean
  pick: () => string
  started?: number
}): Promise<Outcome[]> {
  const started = options.started ?? performance.now()
  const outcomes: Outcome[] = []
  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      for (let turn = 0; !options.stop(); turn += 1) {
        const index = (client + turn) % options.servers.length
        const server = options.servers[index]
        if (!server) throw new Error("no server")
        const entityId = options.pick()
        const answer = await consume(server, entityId).catch(() => undefined)
        outcomes.push({
          at: performance.now() - started,
          status: answer?.status ?? 0,
          server: index,
          entityId,
        })
      }
    }),
  )
  return outcomes
}

/** The most events in any window of `windowMs` (a sliding window over the event times). */
export function maxInWindow(times: number[], windowMs = 60_000): number {
  const sorted = [...times].sort((a, b) => a - b)
  let best = 0
  let start = 0
  for (let end = 0; end < sorted.length; end += 1) {
    while ((sorted[end] ?? 0) - (sorted[start] ?? 0) >= windowMs) start += 1
    best = Math.max(best, end - start + 1)
  }
  return best
}

/** What the ledger holds for a subscription: charged rows and tokens, denials by reason, the counter. */
export async function ledgerOf(sql: pg.Client, subscriptionId: string) {
  const rows = await sql.query<{ status: string; denial_reason: string | null; billed: string; n: string }>(
    `select status, denial_reason, coalesce(sum(billed_tokens), 0) as billed, count(*) as n
     from token_usage_logs where subscription_id = $1 group by 1, 2`,
    [subscriptionId],
  )
  const counter = await sql.query<{ used: string }>(
    "select coalesce(sum(used_tokens), 0) as used from quota_counters where subscription_id = $1",
    [subscriptionId],
  )
  const charged = rows.rows.filter((r) => r.status !== "denied")
  return {
    chargedRows: charged.reduce((sum, r) => sum + Number(r.n), 0),
    chargedTokens: charged.reduce((sum, r) => sum + Number(r.billed), 0),
    counter: Number(counter.rows[0]?.used ?? 0),
    denials: Object.fromEntries(
      rows.rows.filter((r) => r.status === "denied").map((r) => [r.denial_reason ?? "", Number(r.n)]),
    ) as Record<string, number>,
  }
}

/** Polls `check` every `everyMs` until it returns true; rejects after `timeoutMs`. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
  throw new Error(`not true within ${timeoutMs} ms`)
}
