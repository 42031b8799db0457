/**
 * The import's exact semantics (issue 11, defect 1): committed in batches, and every answer, including one
 * for an import cut off part-way, says how many lines were kept (checked against the ledger counted with
 * SQL) and lists the rejected lines with their numbers. A bad line never aborts the good ones.
 */
import { sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { ImportInterruptedError, importTurns } from "../../src/meter/usage-import.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"

const clock = new ManualClock(Date.parse("2026-11-25T12:00:00Z"))
let t: TestApp
beforeAll(async () => {
  t = await startTestApp({ clock, env: { OMNIMETER_IMPORT_BODY_LIMIT_BYTES: "1048576" } })
})
afterAll(async () => t?.close())

const IMPORT = "/api/usage/import"

async function ledgerCount(subscriptionId: string): Promise<number> {
  const row = await sql<{ n: string }>`
    select count(*)::text as n from token_usage_logs where subscription_id = ${subscriptionId}
  `.execute(t.container.database.db)
  return Number(row.rows[0]?.n)
}

function goodLine(subscriptionId: string, i: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    subscription_id: subscriptionId,
    channel: "website",
    created_at: new Date(Date.parse("2026-03-01T00:00:00Z") + i * 1000).toISOString(),
    raw_tokens: 7,
    session_id: `s-${i}`,
    ...extra,
  })
}

const send = (body: string) =>
  t.request({
    method: "POST",
    url: IMPORT,
    headers: { "content-type": "application/x-ndjson" },
    payload: body,
  })

// Raw NDJSON text: JSON escapes reach the server exactly as a careless client would send them.
const BAD_LINES: Array<[string, (id: string) => string, string]> = [
  ["U+0000 in a text field", (id) => goodLine(id, 0).replace('"s-0"', '"s\\u0000"'), "session_id"],
  ["a lone surrogate", (id) => goodLine(id, 0).replace('"s-0"', '"s\\ud800"'), "session_id"],
  ["U+0000 in the channel", (id) => goodLine(id, 0).replace('"website"', '"web\\u0000"'), "channel"],
  ["year 0001", (id) => goodLine(id, 0, { created_at: "0001-01-01T00:00:00Z" }), "created_at"],
  ["year 0000", (id) => goodLine(id, 0, { created_at: "0000-01-01T00:00:00Z" }), "created_at"],
  ["year 0001 at +14:00", (id) => goodLine(id, 0, { created_at: "0001-01-01T00:00:00+14:00" }), "created_at"],
  ["bad JSON", () => '{"subscription_id": ', "JSON"],
]

describe("an import with a bad line in the middle", () => {
  it.each(BAD_LINES)(
    "1,500 good lines, %s, 1,500 more: the bad line is listed and every good line is kept",
    async (_name, bad, reason) => {
      const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
      const lines = [
        ...Array.from({ length: 1500 }, (_, i) => goodLine(sub.id, i)),
        bad(sub.id),
        ...Array.from({ length: 1500 }, (_, i) => goodLine(sub.id, 1500 + i)),
      ]
      const res = await send(lines.join("\n"))
      expect(res.statusCode).toBe(200)
      expectDocumented(t.app, "POST", IMPORT, res)
      const report = res.json()
      expect(report.imported).toBe(await ledgerCount(sub.id))
      expect(report.imported).toBe(3000)
      expect(report.rejected_count).toBe(1)
      expect(report.rejected).toHaveLength(1)
      expect(report.rejected[0].line).toBe(1501)
      expect(report.rejected[0].reason).toContain(reason)
    },
  )
})

describe("the text rule in every text field of an import line", () => {
  const FIELDS = [
    "entity_id",
    "entity_type",
    "chatbot_id",
    "session_id",
    "user_identifier",
    "operation_type",
    "idempotency_key",
  ]
  it.each([
    ["U+0000", "\\u0000"],
    ["a lone surrogate", "\\udfff"],
  ])(
    "%s in any of them rejects that line naming the field, and stores nothing of it",
    async (_name, jsonEscape) => {
      const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
      const base = {
        subscription_id: sub.id,
        channel: "api",
        created_at: "2026-03-01T00:00:00Z",
        raw_tokens: 1,
      }
      const lines = FIELDS.map((field) =>
        JSON.stringify({ ...base, [field]: "x-placeholder" }).replace("x-placeholder", `x${jsonEscape}`),
      )
      const res = await send([...lines, JSON.stringify(base)].join("\n"))
      expect(res.statusCode).toBe(200)
      const report = res.json()
      expect(report.imported).toBe(1)
      expect(await ledgerCount(sub.id)).toBe(1)
      expect(
        report.rejected.map((r: { line: number; reason: string }) => [r.line, r.reason.split(":")[0]]),
      ).toEqual(FIELDS.map((field, i) => [i + 1, field]))
    },
  )
})

describe("a batch the database refuses", () => {
  // Real refusals by the database (not mocks): a trigger rejects one value as a constraint would (a data
  // error, SQLSTATE 22023), and another as a failure that is no line's fault (53100, disk full). (A lost
  // connection, SQLSTATE class 08, makes the pool mark the database down: that answer is 503, and the fault
  // suite covers it.) The app's role may not create
  // triggers; the schema owner (the session user) does, for these tests only.
  const asOwner = (statement: ReturnType<typeof sql>) =>
    t.container.database.db.transaction().execute(async (trx) => {
      await sql`set local role none`.execute(trx)
      await statement.execute(trx)
    })
  beforeAll(async () => {
    await asOwner(sql`
      create or replace function test_refuse() returns trigger language plpgsql as $$
      begin
        if new.session_id = 'poison' then raise exception 'poisoned session' using errcode = '22023'; end if;
        if new.session_id = 'outage' then raise exception 'disk full' using errcode = '53100'; end if;
        return new;
      end $$
    `)
    await asOwner(sql`
      create trigger test_refuse before insert on token_usage_logs
      for each row execute function test_refuse()
    `)
  })
  afterAll(async () => {
    await asOwner(sql`drop trigger test_refuse on token_usage_logs`)
  })

  it("is retried line by line: the refused line is listed with its reason, the rest of its batch is kept", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    const lines = Array.from({ length: 1200 }, (_, i) =>
      goodLine(sub.id, i, i === 700 ? { session_id: "poison" } : {}),
    )
    const res = await send(lines.join("\n"))
    expect(res.statusCode).toBe(200)
    const report = res.json()
    expect(report.imported).toBe(1199)
    expect(await ledgerCount(sub.id)).toBe(1199)
    expect(report.rejected).toEqual([{ line: 701, reason: expect.stringContaining("poisoned session") }])
    // The quota counter counts exactly the kept lines.
    const used = await sql<{ used: string }>`
      select coalesce(sum(used_tokens), 0)::text as used from quota_counters where subscription_id = ${sub.id}
    `.execute(t.container.database.db)
    expect(Number(used.rows[0]?.used)).toBe(1199 * 7)
  })

  it("a database failure part-way: 500 in the envelope, with exactly the committed batches and where to resume", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    const lines = Array.from({ length: 1500 }, (_, i) =>
      i === 1099 ? "{bad json" : goodLine(sub.id, i, i === 1300 ? { session_id: "outage" } : {}),
    )
    const res = await send(lines.join("\n"))
    expect(res.statusCode).toBe(500)
    const body = res.json()
    expect(body.error.request_id).toBe(res.headers["x-request-id"])
    // The first batch (lines 1-1,000) committed; the second failed as a whole, so the bad line 1,100 in it
    // is not reported either: everything from line 1,001 on is to be sent again.
    expect(body.import).toEqual({
      imported: 1000,
      duplicates: 0,
      rejected_count: 0,
      rejected: [],
      resume_from_line: 1001,
    })
    expect(await ledgerCount(sub.id)).toBe(1000)
  })

  it("a database failure while a refused batch is retried line by line resumes at the failing line", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    const lines = Array.from({ length: 1200 }, (_, i) =>
      goodLine(sub.id, i, i === 1050 ? { session_id: "poison" } : i === 1100 ? { session_id: "outage" } : {}),
    )
    const res = await send(lines.join("\n"))
    expect(res.statusCode).toBe(500)
    const report = res.json().import
    // Lines 1,001-1,100 were written alone, except the poisoned 1,051; line 1,101 lost its connection.
    expect(report).toMatchObject({ imported: 1099, rejected_count: 1, resume_from_line: 1101 })
    expect(report.rejected).toEqual([{ line: 1051, reason: expect.stringContaining("poisoned session") }])
    expect(await ledgerCount(sub.id)).toBe(1099)
  })
})

describe("an import cut off part-way", () => {
  it("over HTTP, past the import's byte limit: 413 in the envelope, with what was kept and where to resume", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    // About 170 bytes a line: 8,000 lines are well past the 1 MB limit this app runs with.
    const lines = Array.from({ length: 8000 }, (_, i) => goodLine(sub.id, i, { idempotency_key: `k-${i}` }))
    const res = await send(lines.join("\n"))
    expect(res.statusCode).toBe(413)
    const body = res.json()
    expect(body.error).toMatchObject({ code: "payload_too_large", request_id: res.headers["x-request-id"] })
    expect(body.import.imported).toBe(await ledgerCount(sub.id))
    expect(body.import.imported).toBeGreaterThan(0)
    expect(body.import.resume_from_line).toBe(body.import.imported + 1)
    // Sending the whole file again with its idempotency keys is safe: nothing is counted twice.
    const rest = lines.slice(body.import.resume_from_line - 1, body.import.resume_from_line - 1 + 500)
    const retry = await send([...lines.slice(0, 10), ...rest].join("\n"))
    expect(retry.statusCode).toBe(200)
    expect(retry.json()).toMatchObject({ imported: 500, duplicates: 10 })
    expect(await ledgerCount(sub.id)).toBe(body.import.imported + 500)
  })

  it("in the library, when the input fails: the lines read are kept, and the error's report equals the ledger", async () => {
    const sub = await t.subscription({ period_start: "2026-01-01T00:00:00Z" })
    async function* broken() {
      for (let i = 0; i < 1500; i += 1) yield goodLine(sub.id, i)
      yield "not json"
      throw new Error("connection reset by peer")
    }
    const error = await importTurns(t.container.database, clock, broken(), { batchSize: 1000 }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ImportInterruptedError)
    const interrupted = error as ImportInterruptedError
    expect(interrupted.report.imported).toBe(await ledgerCount(sub.id))
    expect(interrupted.report.imported).toBe(1500)
    expect(interrupted.report.rejected).toEqual([{ line: 1501, reason: "not valid JSON" }])
    expect(interrupted.resumeFromLine).toBe(1502)
  })
})
