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

describe("the metered turn example", () => {
  it("settles an OpenAI-shaped and an AI SDK-shaped model call with their usage, and refunds a failed one", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/metered-turn.ts"], {
      env: { ...process.env, OMNIMETER_DATA_DIR: ":memory:" },
    })
    expect(stdout).toMatch(/openai: "It ships today\." used 200 tokens, billed 240 \(estimate was \d+\)/)
    expect(stdout).toContain("ai sdk: used 42 tokens")
    expect(stdout).toContain("failed: upstream 503; refunded: true")
  })
})

describe("the webhook verification examples", () => {
  it("accept a genuine delivery and reject a forged and a replayed one (TypeScript receiver)", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/verify-webhook.ts"], {
      env: { ...process.env, OMNIMETER_WEBHOOK_SECRET: "" },
    })
    expect(stdout).toContain("accepted webhook.test evt_1")
    expect(stdout).toContain("genuine: 204")
    expect(stdout).toContain("forged: 400 signature does not match")
    expect(stdout).toContain("replayed: 400 timestamp outside the tolerance")
  })

  it("agree with omnimeter's signatures (Python)", async () => {
    const { stdout } = await run("python3", ["examples/verify_webhook.py"])
    expect(stdout).toBe("genuine: True\ntampered: False\nreplayed: False\n")
    const { signatureHeader } = await import("../src/alerts/signature.js")
    const header = signatureHeader("whsec_x", 1764000000, '{"a":1}')
    const check = await run("python3", [
      "-c",
      `import sys; sys.path.insert(0, "examples"); from verify_webhook import verify; print(verify("whsec_x", "${header}", b'{"a":1}', 1764000000))`,
    ])
    expect(check.stdout).toBe("True\n")
  })
})
