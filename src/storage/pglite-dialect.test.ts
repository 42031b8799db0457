import { PGlite } from "@electric-sql/pglite"
import { Kysely, sql } from "kysely"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { EventLoopSlicer, PGliteDialect } from "./pglite-dialect.js"

/** Whether a setImmediate queued now has run by the time `work` settles (did `work` give the loop a turn?). */
async function yieldedDuring(work: () => Promise<void>): Promise<boolean> {
  let ran = false
  setImmediate(() => {
    ran = true
  })
  await work()
  return ran
}

describe("EventLoopSlicer", () => {
  it("lets a statement on a thread that just had a turn of the event loop start without waiting", async () => {
    const slicer = new EventLoopSlicer(10)
    await new Promise((resolve) => setImmediate(resolve))
    expect(await yieldedDuring(() => slicer.beforeStatement())).toBe(false)
  })

  it("yields before a statement once the thread has been busy for a slice without a turn", async () => {
    const slicer = new EventLoopSlicer(10)
    await slicer.beforeStatement()
    const busyUntil = performance.now() + 15
    while (performance.now() < busyUntil) {
      // the thread stays busy, as a synchronous statement keeps it
    }
    expect(await yieldedDuring(() => slicer.beforeStatement())).toBe(true)
    // The yield starts a new slice: the next statement right after it does not wait again.
    expect(await yieldedDuring(() => slicer.beforeStatement())).toBe(false)
  })
})

describe("PGliteDialect and the event loop", () => {
  let pglite: PGlite
  let db: Kysely<unknown>

  beforeAll(async () => {
    pglite = await PGlite.create()
    db = new Kysely<unknown>({ dialect: new PGliteDialect(pglite) })
  })
  afterAll(async () => {
    await db.destroy()
  })

  it("a chain of awaited statements lets timers run between them, so the process keeps answering", async () => {
    // PGlite alone settles every query as a microtask: the same chain on it directly starves timers.
    const ticks: number[] = []
    const timer = setInterval(() => ticks.push(performance.now()), 1)
    let directTicks = 0
    try {
      const before = ticks.length
      const directStart = performance.now()
      while (performance.now() - directStart < 150)
        await pglite.query("select sum(x) from generate_series(1, 20000) as x")
      directTicks = ticks.length - before
      const started = performance.now()
      const statementMs: number[] = []
      while (performance.now() - started < 300) {
        const s = performance.now()
        await sql`select sum(x) from generate_series(1, 20000) as x`.execute(db)
        statementMs.push(performance.now() - s)
      }
      const finished = performance.now()
      const during = ticks.filter((t) => t > started && t < finished)
      // The timer ran throughout the chain; the longest wait between two of its runs is about a slice plus
      // a statement, not the chain's 300 ms.
      expect(during.length).toBeGreaterThan(5)
      const points = [started, ...during, finished]
      const gaps = points.slice(1).map((t, i) => t - (points[i] ?? t))
      expect(Math.max(...gaps)).toBeLessThan(10 + 2 * Math.max(...statementMs) + 50)
    } finally {
      clearInterval(timer)
    }
    expect(directTicks).toBe(0)
  })

  it("keeps a transaction's statements together: another caller's statement waits for its commit", async () => {
    await sql`create table slices (n int)`.execute(db)
    const order: string[] = []
    const transaction = db.transaction().execute(async (trx) => {
      for (let i = 0; i < 40; i += 1) {
        await sql`insert into slices select ${i} from generate_series(1, 2000)`.execute(trx)
      }
      order.push("transaction")
    })
    const outside = (async () => {
      await new Promise((resolve) => setImmediate(resolve))
      const result = await sql<{ n: number }>`select count(*)::int as n from slices`.execute(db)
      order.push(`outside saw ${result.rows[0]?.n}`)
    })()
    await Promise.all([transaction, outside])
    expect(order).toEqual(["transaction", "outside saw 80000"])
  })
})
