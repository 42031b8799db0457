import { describe, expect, it } from "vitest"
import { loadConfig } from "./config.js"

describe("the Redis configuration", () => {
  it("uses the in-process limiter when REDIS_URL is unset", () => {
    const config = loadConfig({})
    expect(config).toMatchObject({ redisUrl: undefined, redisUrls: [], redisCluster: false })
    expect(config.redisDeadlineMs).toBe(3_000)
    expect(config.instances).toBeUndefined()
  })

  it("takes one URL as a single Redis, and several comma-separated URLs as a Redis Cluster", () => {
    expect(loadConfig({ REDIS_URL: "redis://10.0.0.1:6379" })).toMatchObject({
      redisUrls: ["redis://10.0.0.1:6379"],
      redisCluster: false,
    })
    expect(loadConfig({ REDIS_URL: "redis://10.0.0.1:7000, redis://10.0.0.2:7000" })).toMatchObject({
      redisUrls: ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"],
      redisCluster: true,
    })
    expect(
      loadConfig({ REDIS_URL: "rediss://cache.example:6380", OMNIMETER_REDIS_CLUSTER: "true" }),
    ).toMatchObject({ redisCluster: true })
  })

  it("reads the Redis deadline and the instance count", () => {
    expect(loadConfig({ OMNIMETER_REDIS_DEADLINE_MS: "5000", OMNIMETER_INSTANCES: "4" })).toMatchObject({
      redisDeadlineMs: 5_000,
      instances: 4,
    })
  })

  it("refuses bad values at start-up, naming the variable", () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ REDIS_URL: "http://10.0.0.1" }, /^REDIS_URL: must start with redis: or rediss:/],
      [{ REDIS_URL: "redis://a:1,,redis://b:1" }, /^REDIS_URL: node 2 of 3 is empty/],
      [{ REDIS_URL: "redis://a:1,rediss://b:1" }, /^REDIS_URL: mixes/],
      [{ REDIS_URL: "redis://a:1,not a url" }, /^REDIS_URL: is not a valid URL/],
      [{ OMNIMETER_REDIS_CLUSTER: "yes" }, /^OMNIMETER_REDIS_CLUSTER: must be true or false/],
      [{ OMNIMETER_REDIS_DEADLINE_MS: "250ms" }, /^OMNIMETER_REDIS_DEADLINE_MS: must be an integer/],
      [{ OMNIMETER_REDIS_DEADLINE_MS: "10" }, /^OMNIMETER_REDIS_DEADLINE_MS: must be an integer from 100/],
      [{ OMNIMETER_INSTANCES: "0" }, /^OMNIMETER_INSTANCES: must be an integer from 1 to 10000/],
    ]
    for (const [env, message] of cases) expect(() => loadConfig(env), JSON.stringify(env)).toThrow(message)
  })

  it("is frozen", () => {
    const config = loadConfig({ REDIS_URL: "redis://a:1,redis://b:1" })
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.redisUrls)).toBe(true)
  })
})

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

describe("the deployment-wide capacity", () => {
  it("is absent unless a capacity is set", () => {
    expect(loadConfig({}).operatorCapacity).toBeUndefined()
  })

  it("reads the capacity and an optional priority curve", () => {
    expect(
      loadConfig({
        OMNIMETER_CAPACITY_TOKENS_PER_MINUTE: "2000000",
        OMNIMETER_CAPACITY_PRIORITY_CURVE: "10, 20, 30, 40, 50, 60, 70, 80, 90, 100",
      }).operatorCapacity,
    ).toEqual({
      requestsPerMinute: null,
      tokensPerMinute: 2_000_000,
      priorityCurve: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    })
  })

  it.each([
    [{ OMNIMETER_CAPACITY_TOKENS_PER_MINUTE: "-5" }, "OMNIMETER_CAPACITY_TOKENS_PER_MINUTE"],
    [{ OMNIMETER_CAPACITY_REQUESTS_PER_MINUTE: "lots" }, "OMNIMETER_CAPACITY_REQUESTS_PER_MINUTE"],
    [
      {
        OMNIMETER_CAPACITY_TOKENS_PER_MINUTE: "1000",
        OMNIMETER_CAPACITY_PRIORITY_CURVE: "50,40,60,70,80,90,95,96,97,100",
      },
      "OMNIMETER_CAPACITY_PRIORITY_CURVE",
    ],
    [
      { OMNIMETER_CAPACITY_PRIORITY_CURVE: "50,56,61,67,72,78,83,89,94,100" },
      "OMNIMETER_CAPACITY_PRIORITY_CURVE",
    ],
  ])("refuses %o at start-up, naming %s", (env, variable) => {
    expect(() => loadConfig(env)).toThrow(variable)
  })
})
