/**
 * `npm run demo` stopped while its older days are still loading (the usual Ctrl-C of someone trying it):
 * the in-memory database closes under the background writes, and the demo says so in one line, not as a
 * failure with a stack trace, then exits cleanly.
 */
import { describe, expect, it } from "vitest"
import { freePort, startDemoProcess } from "../support/processes.js"

describe("the demo stopped while its history loads", () => {
  it("says how much of the history it wrote and exits 0, with no failure logged", async () => {
    const demo = await startDemoProcess({
      PORT: String(await freePort()),
      DATABASE_URL: "",
      REDIS_URL: "",
      OMNIMETER_DATA_DIR: "",
    })
    const exitCode = new Promise<number | null>((resolve) => demo.child.once("exit", resolve))
    // The keys are printed while the older days load in the background (the banner says which).
    expect(demo.output()).toMatch(/History: {4}the current billing periods are loaded/)
    await demo.stop(30_000)
    expect(await exitCode).toBe(0)
    const output = demo.output()
    expect(output).toMatch(/SIGTERM: draining in-flight requests and shutting down/)
    expect(output).toMatch(/demo history stopped with the server: [\d,]+ of [\d,]+ turns written/)
    expect(output).not.toMatch(/demo history failed/)
  }, 240_000)
})
