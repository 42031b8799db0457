import { describe, expect, it } from "vitest"
import { PeriodicJob } from "./background.js"

class CountingJob extends PeriodicJob {
  passes = 0
  inFlight = 0
  overlapped = false
  constructor(
    private readonly failOn: ReadonlySet<number>,
    firstDelayMs?: number,
  ) {
    super(5, firstDelayMs)
  }
  async runOnce(): Promise<number> {
    this.inFlight += 1
    if (this.inFlight > 1) this.overlapped = true
    this.passes += 1
    const pass = this.passes
    await new Promise((resolve) => setTimeout(resolve, 3))
    this.inFlight -= 1
    if (this.failOn.has(pass)) throw new Error(`pass ${pass} failed`)
    return 1
  }
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2))
}

describe("a periodic background job", () => {
  it("runs pass after pass, one at a time, until stopped", async () => {
    const job = new CountingJob(new Set())
    job.start()
    await until(() => job.passes >= 3)
    await job.stop()
    const after = job.passes
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(job.passes).toBe(after)
    expect(job.overlapped).toBe(false)
  })

  it("reports a failing pass and goes on with the next", async () => {
    const job = new CountingJob(new Set([1]))
    const errors: unknown[] = []
    job.start((error) => errors.push(error))
    await until(() => job.passes >= 2)
    await job.stop()
    expect(errors).toHaveLength(1)
    expect(String(errors[0])).toContain("pass 1 failed")
  })

  it("ignores a second start and waits for the pass in progress on stop", async () => {
    const job = new CountingJob(new Set(), 0)
    job.start()
    job.start()
    await until(() => job.inFlight === 1)
    await job.stop()
    expect(job.inFlight).toBe(0)
    expect(job.overlapped).toBe(false)
  })
})
