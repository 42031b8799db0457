import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const run = promisify(execFile)

describe("the README's library example", () => {
  it("runs and prints an allowed turn, its settlement and a plan denial", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/library.ts"], {
      env: { ...process.env, OMNIMETER_DATA_DIR: ":memory:" },
    })
    expect(stdout).toContain("allowed: billed 420 tokens at 1.2x, 999580 left")
    expect(stdout).toContain("settled: adjustment 72, 999508 left")
    expect(stdout).toContain(
      "denied: channel_not_in_plan: The Professional plan does not include Instagram Direct",
    )
  })
})
