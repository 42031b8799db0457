/**
 * Loaded into a server under test with `node --import tsx --import ./bench/support/phase-probe.ts dist/cli.js
 * start` (bench/consume-phases.ts does this): times where each POST /api/tokens/consume spends its wall
 * time, from outside the service's code. Nothing in src/ knows about it.
 *
 * - Node's `http.server.request.start` / `http.server.response.finish` diagnostics channels: the server's
 *   whole time for a request, from its parsed headers to the answer handed to the socket.
 * - Fastify's `tracing:fastify.request.handler` channel: when the handler starts (after the onRequest hooks
 *   with the key check, the body read and parsed, and the schema validated), when its promise resolves, and
 *   when the reply is sent (serialisation and onSend hooks). An AsyncLocalStorage bound to its start channel
 *   ties every database and Redis call the handler makes (directly or through promises it starts) to it.
 * - `pg.Client#query`, `pg.Pool#connect`, `PGlite#query`/`exec` and ioredis' `sendCommand`: each call's
 *   start and end, classified by its SQL or command.
 *
 * At exit the per-request records are summarised (medians and means over the consume requests after the
 * first `PHASE_PROBE_SKIP`) into the JSON file `PHASE_PROBE_OUT`.
 */
import { AsyncLocalStorage } from "node:async_hooks"
import diagnostics from "node:diagnostics_channel"
import { writeFileSync } from "node:fs"
import type { IncomingMessage } from "node:http"
import { createRequire } from "node:module"

interface Io {
  kind: string
  start: number
  end: number
}

interface RequestRecord {
  url: string
  start: number
  handlerStart?: number
  handlerResolved?: number
  sent?: number
  finished?: number
  io: Io[]
}

const storage = new AsyncLocalStorage<RequestRecord>()
const byRequest = new WeakMap<IncomingMessage, RequestRecord>()
const records: RequestRecord[] = []
const now = () => performance.now()

diagnostics.subscribe("http.server.request.start", (message) => {
  const { request } = message as { request: IncomingMessage }
  const record: RequestRecord = { url: request.url ?? "", start: now(), io: [] }
  byRequest.set(request, record)
  records.push(record)
})
diagnostics.subscribe("http.server.response.finish", (message) => {
  const { request } = message as { request: IncomingMessage }
  const record = byRequest.get(request)
  if (record) record.finished = now()
})

interface HandlerStore {
  request: { raw: IncomingMessage }
}
const handler = diagnostics.tracingChannel("fastify.request.handler")
handler.start.bindStore(storage, (store) => {
  const record = byRequest.get((store as HandlerStore).request.raw) ?? { url: "?", start: now(), io: [] }
  record.handlerStart = now()
  return record
})
handler.asyncStart.subscribe((store) => {
  const record = byRequest.get((store as HandlerStore).request.raw)
  if (record) record.handlerResolved = now()
})
handler.asyncEnd.subscribe((store) => {
  const record = byRequest.get((store as HandlerStore).request.raw)
  if (record) record.sent = now()
})

function sqlKind(text: string): string {
  const t = text.toLowerCase()
  if (t.includes("omnimeter_consume_batch")) return "sql: the consume batch"
  if (t.includes("omnimeter_turn_contexts")) return "sql: turn contexts"
  if (t.includes("experiment")) return "sql: experiments"
  if (t.includes("person_identifiers")) return "sql: people"
  if (t.includes("api_keys")) return "sql: api key"
  if (/^\s*(begin|commit|rollback)/.test(t)) return `sql: ${t.trim().split(/[\s;]/)[0]}`
  return `sql: ${t.replace(/\s+/g, " ").trim().slice(0, 40)}`
}

function track<T>(kind: string, run: () => T): T {
  const record = storage.getStore()
  if (!record) return run()
  const io: Io = { kind, start: now(), end: Number.NaN }
  record.io.push(io)
  const result = run()
  if (result && typeof (result as { then?: unknown }).then === "function") {
    ;(result as unknown as Promise<unknown>).then(
      () => {
        io.end = now()
      },
      () => {
        io.end = now()
      },
    )
  }
  return result
}

const require = createRequire(`${process.cwd()}/`)

function tryRequire(name: string): Record<string, unknown> | undefined {
  try {
    return require(name) as Record<string, unknown>
  } catch {
    return undefined
  }
}

type AnyFn = (this: unknown, ...args: unknown[]) => unknown

const pg = tryRequire("pg") as
  | { Client: { prototype: Record<string, AnyFn> }; Pool: { prototype: Record<string, AnyFn> } }
  | undefined
if (pg) {
  const query = pg.Client.prototype.query as AnyFn
  pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
    const config = args[0] as { text?: string; callback?: (...a: unknown[]) => void } | string
    const text = typeof config === "string" ? config : (config?.text ?? "")
    const record = storage.getStore()
    if (!record) return query.apply(this, args)
    const kind = sqlKind(text)
    if (typeof config === "object" && typeof config.callback === "function") {
      // A submittable (the service's prelude query): its callback marks the end.
      const io: Io = { kind, start: now(), end: Number.NaN }
      record.io.push(io)
      const callback = config.callback
      config.callback = (...a: unknown[]) => {
        io.end = now()
        callback(...a)
      }
      return query.apply(this, args)
    }
    return track(kind, () => query.apply(this, args))
  }
  const connect = pg.Pool.prototype.connect as AnyFn
  pg.Pool.prototype.connect = function (this: unknown, ...args: unknown[]) {
    return track("pool: acquire", () => connect.apply(this, args))
  }
}

const pglite = (await import("@electric-sql/pglite").catch(() => undefined)) as
  | { PGlite: { prototype: Record<string, AnyFn> } }
  | undefined
if (pglite) {
  for (const method of ["query", "exec"]) {
    const original = pglite.PGlite.prototype[method] as AnyFn
    pglite.PGlite.prototype[method] = function (this: unknown, ...args: unknown[]) {
      return track(sqlKind(String(args[0] ?? "")), () => original.apply(this, args))
    }
  }
}

const ioredis = tryRequire("ioredis") as { Redis?: { prototype: Record<string, AnyFn> } } | undefined
if (ioredis?.Redis) {
  const send = ioredis.Redis.prototype.sendCommand as AnyFn
  ioredis.Redis.prototype.sendCommand = function (this: unknown, ...args: unknown[]) {
    const name = (args[0] as { name?: string } | undefined)?.name ?? "?"
    return track(`redis: ${name}`, () => send.apply(this, args))
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : (sorted[Math.floor(sorted.length / 2)] ?? Number.NaN)
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)

/** Total length of the union of intervals, clipped to [from, to]. */
function covered(intervals: Array<[number, number]>, from: number, to: number): number {
  const clipped = intervals
    .map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as [number, number])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0])
  let total = 0
  let end = from
  for (const [a, b] of clipped) {
    if (b <= end) continue
    total += b - Math.max(a, end)
    end = b
  }
  return total
}

process.on("exit", () => {
  const out = process.env.PHASE_PROBE_OUT
  if (!out) return
  const skip = Number(process.env.PHASE_PROBE_SKIP ?? 200)
  const consumes = records
    .filter((r) => r.url.startsWith("/api/tokens/consume"))
    .filter(
      (r) => r.finished !== undefined && r.handlerStart !== undefined && r.handlerResolved !== undefined,
    )
    .slice(skip)
  const phases: Record<string, number[]> = {
    "server total (headers parsed -> answer handed to the socket)": [],
    "before the handler (hooks, key check, body read and parse, validation)": [],
    "the handler (meter.validateAndConsumeTokens and mapping)": [],
    "  of which waiting for no database or Redis call (JS, event-loop turns)": [],
    "  of which the last I/O's end to the handler's resolution": [],
    "after the handler (serialise, onSend, write)": [],
  }
  const perKind = new Map<string, { calls: number; awaited: number[]; background: number[] }>()
  for (const r of consumes) {
    const hs = r.handlerStart ?? 0
    const hr = r.handlerResolved ?? 0
    phases["server total (headers parsed -> answer handed to the socket)"]?.push((r.finished ?? 0) - r.start)
    phases["before the handler (hooks, key check, body read and parse, validation)"]?.push(hs - r.start)
    phases["the handler (meter.validateAndConsumeTokens and mapping)"]?.push(hr - hs)
    const intervals = r.io.map((io) => [io.start, Number.isNaN(io.end) ? hr : io.end] as [number, number])
    phases["  of which waiting for no database or Redis call (JS, event-loop turns)"]?.push(
      hr - hs - covered(intervals, hs, hr),
    )
    const lastEnd = Math.max(hs, ...r.io.filter((io) => io.end <= hr).map((io) => io.end))
    phases["  of which the last I/O's end to the handler's resolution"]?.push(hr - lastEnd)
    phases["after the handler (serialise, onSend, write)"]?.push((r.finished ?? 0) - hr)
    for (const io of r.io) {
      const entry = perKind.get(io.kind) ?? { calls: 0, awaited: [], background: [] }
      entry.calls += 1
      // Awaited on the path: ended before the handler resolved and no later call of the turn overlapped it.
      const overlapped = r.io.some((other) => other !== io && other.start > io.start && other.start < io.end)
      const duration = (Number.isNaN(io.end) ? hr : io.end) - io.start
      if (io.end <= hr && !overlapped) entry.awaited.push(duration)
      else entry.background.push(duration)
      perKind.set(io.kind, entry)
    }
  }
  const summary = {
    consumes: consumes.length,
    phases: Object.fromEntries(
      Object.entries(phases).map(([name, values]) => [name, { p50: median(values), mean: mean(values) }]),
    ),
    calls: Object.fromEntries(
      [...perKind.entries()].map(([kind, e]) => [
        kind,
        {
          perConsume: e.calls / Math.max(1, consumes.length),
          awaitedPerConsume: e.awaited.length / Math.max(1, consumes.length),
          awaitedP50: median(e.awaited),
          awaitedMeanPerConsume: e.awaited.reduce((a, b) => a + b, 0) / Math.max(1, consumes.length),
          backgroundPerConsume: e.background.length / Math.max(1, consumes.length),
          backgroundP50: median(e.background),
        },
      ]),
    ),
  }
  writeFileSync(out, JSON.stringify(summary, null, 2))
})
