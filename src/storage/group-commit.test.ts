import { describe, expect, it } from "vitest"
import { GroupCommitter } from "./group-commit.js"

/** An executor that records each batch it is given and doubles every number (a pure stand-in batch). */
function recorder(fail: (items: number[]) => unknown = () => undefined) {
  const batches: number[][] = []
  let running = 0
  let mostRunning = 0
  const execute = async (items: number[]) => {
    batches.push(items)
    running += 1
    mostRunning = Math.max(mostRunning, running)
    await new Promise((resolve) => setTimeout(resolve, 5))
    running -= 1
    const error = fail(items)
    if (error) throw error
    return items.map((n) => n * 2)
  }
  return { batches, execute, mostRunning: () => mostRunning }
}

describe("group commit", () => {
  it("sends submissions that arrive together as one batch and answers each with its own output", async () => {
    const { batches, execute } = recorder()
    const committer = new GroupCommitter(execute, { maxInFlight: 1 })
    const outputs = await Promise.all([1, 2, 3, 4].map((n) => committer.submit(n)))
    expect(outputs).toEqual([2, 4, 6, 8])
    expect(batches).toEqual([[1, 2, 3, 4]])
  })

  it("queues what arrives while batches run and sends it as the next batch, never above maxInFlight", async () => {
    const { batches, execute, mostRunning } = recorder()
    const committer = new GroupCommitter(execute, { maxInFlight: 2, maxBatch: 3 })
    const submissions = Array.from({ length: 10 }, (_, n) => committer.submit(n))
    expect(await Promise.all(submissions)).toEqual(Array.from({ length: 10 }, (_, n) => n * 2))
    // Round robin over two lanes, at most three per batch, one batch per lane at a time.
    expect(batches).toEqual([
      [0, 2, 4],
      [1, 3, 5],
      [6, 8],
      [7, 9],
    ])
    expect(mostRunning()).toBe(2)
  })

  it("keeps the items of one lane key in one lane, in submission order", async () => {
    const { batches, execute } = recorder()
    const committer = new GroupCommitter(execute, {
      maxInFlight: 3,
      maxBatch: 2,
      laneOf: (n: number) => n % 2,
    })
    await Promise.all([1, 2, 3, 4, 5, 6, 7].map((n) => committer.submit(n)))
    const odd = batches.filter((b) => b.every((n) => n % 2 === 1)).flat()
    const even = batches.filter((b) => b.every((n) => n % 2 === 0)).flat()
    expect(odd).toEqual([1, 3, 5, 7])
    expect(even).toEqual([2, 4, 6])
    expect(batches.every((b) => b.every((n) => n % 2 === 1) || b.every((n) => n % 2 === 0))).toBe(true)
  })

  it("rejects only the item that fails on its own, and answers its batch-mates", async () => {
    const { batches, execute } = recorder((items) =>
      items.includes(3) ? new Error("bad item 3") : undefined,
    )
    const committer = new GroupCommitter(execute, { maxInFlight: 1 })
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => committer.submit(n)))
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"])
    expect(results[2]).toMatchObject({ reason: new Error("bad item 3") })
    expect(batches).toEqual([[1, 2, 3, 4], [1], [2], [3], [4]])
  })

  it("retries a whole batch after a deadlock instead of splitting it", async () => {
    let calls = 0
    const committer = new GroupCommitter(
      async (items: number[]) => {
        calls += 1
        if (calls === 1) throw Object.assign(new Error("deadlock detected"), { code: "40P01" })
        return items
      },
      { maxInFlight: 1 },
    )
    expect(await Promise.all([committer.submit(1), committer.submit(2)])).toEqual([1, 2])
    expect(calls).toBe(2)
  })

  it("gives up on a transient conflict after the configured retries", async () => {
    const committer = new GroupCommitter(
      async () => {
        throw Object.assign(new Error("could not serialize access"), { code: "40001" })
      },
      { conflictRetries: 2 },
    )
    await expect(committer.submit(1)).rejects.toThrow("could not serialize access")
  })

  it("treats a batch that answers the wrong number of outputs as failed", async () => {
    const committer = new GroupCommitter(async (items: number[]) => items.slice(1))
    await expect(committer.submit(1)).rejects.toThrow("a batch of 1 answered 0 outputs")
  })

  it("drains: resolves once nothing is queued or running", async () => {
    const { execute } = recorder()
    const committer = new GroupCommitter(execute)
    const pending = [committer.submit(1), committer.submit(2)]
    await committer.drain()
    expect(committer.pending).toEqual({ queued: 0, inFlight: 0 })
    expect(await Promise.all(pending)).toEqual([2, 4])
  })

  it("refuses nonsensical options", () => {
    const execute = async (items: number[]) => items
    expect(() => new GroupCommitter(execute, { maxBatch: 0 })).toThrow(RangeError)
    expect(() => new GroupCommitter(execute, { maxInFlight: 1.5 })).toThrow(RangeError)
    expect(() => new GroupCommitter(execute, { conflictRetries: -1 })).toThrow(RangeError)
  })

  describe("a batch whose outcome is unknown (the connection died)", () => {
    class Lost extends Error {
      override readonly name = "Lost"
    }

    /**
     * A stand-in store with a commit: a run writes its items (each doubled) then, when told to, loses the
     * reply after committing, or dies before committing. `lookup` reads the store, as the ledger would.
     */
    function store() {
      const written = new Map<number, number>()
      const runs: number[][] = []
      let fate: Array<"commit-then-lose" | "die-before-commit"> = []
      const execute = async (items: number[]) => {
        runs.push(items)
        const next = fate.shift()
        if (next === "die-before-commit") throw new Lost("connection terminated before commit")
        for (const n of items.filter((n) => n % 5 !== 0)) written.set(n, n * 2) // multiples of 5 write nothing
        if (next === "commit-then-lose") throw new Lost("connection terminated after commit")
        return items.map((n) => (n % 5 === 0 ? -n : n * 2))
      }
      return {
        written,
        runs,
        execute,
        next: (...next: typeof fate) => {
          fate = next
        },
        lookup: async (items: number[]) => items.map((n) => written.get(n)),
      }
    }

    const policy = (lookup: (items: number[]) => Promise<Array<number | undefined>>, deadlineMs = 3000) => ({
      isUnknown: (error: unknown) => error instanceof Lost,
      lookup,
      unresolved: (error: unknown, written: "unknown" | "no") =>
        new Error(`unresolved (${written}): ${(error as Error).message}`),
      deadlineMs,
    })

    it("answers a committed batch from what it wrote, and runs again only what wrote nothing", async () => {
      const s = store()
      s.next("commit-then-lose")
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1, unknownOutcome: policy(s.lookup) })
      const outputs = await Promise.all([1, 2, 5, 3].map((n) => committer.submit(n)))
      expect(outputs).toEqual([2, 4, -5, 6])
      // 1, 2 and 3 were committed and answered from the store, never run again; 5 wrote nothing: re-run.
      expect(s.runs).toEqual([[1, 2, 5, 3], [5]])
    })

    it("runs a batch that died before its commit again, whole, once", async () => {
      const s = store()
      s.next("die-before-commit")
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1, unknownOutcome: policy(s.lookup) })
      expect(await Promise.all([1, 2, 3].map((n) => committer.submit(n)))).toEqual([2, 4, 6])
      expect(s.runs).toEqual([
        [1, 2, 3],
        [1, 2, 3],
      ])
    })

    it("keeps looking while the store cannot be read, and resolves once it can", async () => {
      const s = store()
      s.next("commit-then-lose")
      let unreadable = 3
      const lookup = async (items: number[]) => {
        if (unreadable-- > 0) throw new Lost("still down")
        return s.lookup(items)
      }
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1, unknownOutcome: policy(lookup) })
      expect(await Promise.all([1, 2].map((n) => committer.submit(n)))).toEqual([2, 4])
      expect(s.runs).toHaveLength(1)
    })

    it("fails the callers with the unresolved error at the deadline, never guessing or running again", async () => {
      const s = store()
      s.next("commit-then-lose")
      const lookup = async () => {
        throw new Lost("still down")
      }
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1, unknownOutcome: policy(lookup, 120) })
      const results = await Promise.allSettled([1, 2].map((n) => committer.submit(n)))
      expect(results.map((r) => (r.status === "rejected" ? String(r.reason) : r.value))).toEqual([
        "Error: unresolved (unknown): connection terminated after commit",
        "Error: unresolved (unknown): connection terminated after commit",
      ])
      expect(s.runs).toHaveLength(1)
    })

    it("looks again when the re-run also loses its connection", async () => {
      const s = store()
      s.next("die-before-commit", "commit-then-lose")
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1, unknownOutcome: policy(s.lookup) })
      expect(await Promise.all([1, 2].map((n) => committer.submit(n)))).toEqual([2, 4])
      expect(s.runs).toEqual([
        [1, 2],
        [1, 2],
      ])
    })

    it("without a policy, a lost connection is split like any other error", async () => {
      const s = store()
      s.next("die-before-commit")
      const committer = new GroupCommitter(s.execute, { maxInFlight: 1 })
      expect(await Promise.all([1, 2].map((n) => committer.submit(n)))).toEqual([2, 4])
      expect(s.runs).toEqual([[1, 2], [1], [2]])
    })
  })
})
