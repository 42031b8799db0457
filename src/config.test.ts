import { describe, expect, it } from "vitest"
import { loadConfig } from "./config.js"

describe("the server's limits in the configuration", () => {
  it("default to a small JSON body, a larger consume body, a streamed import and finite timeouts", () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      bodyLimitBytes: 1_048_576,
      jsonBodyLimitBytes: 65_536,
      importBodyLimitBytes: 268_435_456,
      requestTimeoutMs: 300_000,
      headersTimeoutMs: 10_000,
      socketTimeoutMs: 60_000,
      keepAliveTimeoutMs: 72_000,
    })
  })

  it("are read from their variables", () => {
    const config = loadConfig({
      OMNIMETER_JSON_BODY_LIMIT_BYTES: "2048",
      OMNIMETER_IMPORT_BODY_LIMIT_BYTES: "4096",
      OMNIMETER_REQUEST_TIMEOUT_MS: "5000",
      OMNIMETER_HEADERS_TIMEOUT_MS: "2000",
    })
    expect(config).toMatchObject({
      jsonBodyLimitBytes: 2048,
      importBodyLimitBytes: 4096,
      requestTimeoutMs: 5000,
      headersTimeoutMs: 2000,
    })
  })

  it.each([
    ["OMNIMETER_REQUEST_TIMEOUT_MS", "0"],
    ["OMNIMETER_HEADERS_TIMEOUT_MS", "soon"],
    ["OMNIMETER_JSON_BODY_LIMIT_BYTES", "-1"],
    ["OMNIMETER_SOCKET_TIMEOUT_MS", "1.5"],
  ])("refuse %s=%s at start-up, naming the variable", (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(variable)
  })

  it("refuse a headers timeout longer than the request timeout", () => {
    expect(() =>
      loadConfig({ OMNIMETER_REQUEST_TIMEOUT_MS: "2000", OMNIMETER_HEADERS_TIMEOUT_MS: "3000" }),
    ).toThrow("OMNIMETER_HEADERS_TIMEOUT_MS")
  })
})
