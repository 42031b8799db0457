import { describe, expect, it } from "vitest"
import { ManualClock } from "../core/clock.js"
import { type BreakerRoute, CircuitBreaker, type CircuitBreakerOptions } from "./breaker.js"

function breaker(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new ManualClock(0)
  return { clock, breaker: new CircuitBreaker({ clock, ...options }) }
}

/** Opens a fresh breaker with the default threshold of 3. */
function opened(options: Partial<CircuitBreakerOptions> = {}) {
  const setup = breaker(options)
  for (let i = 0; i < 3; i += 1) setup.breaker.failed(setup.breaker.route(), "connection_lost")
  return setup
}

describe("the circuit breaker", () => {
  it("starts closed and sends every call to the shared limiter", () => {
    const { breaker: b } = breaker()
    expect([b.state, b.mode, b.route(), b.route()]).toEqual(["closed", "shared", "primary", "primary"])
  })

  it("opens after the configured number of consecutive failures, reporting the switch once", () => {
    const { clock, breaker: b } = breaker({ failureThreshold: 3 })
    clock.set(500)
    expect(b.failed("primary", "deadline")).toBeUndefined()
    expect(b.failed("primary", "deadline")).toBeUndefined()
    expect(b.failed("primary", "connection_refused")).toEqual({
      from: "shared",
      to: "fallback",
      reason: "connection_refused",
      at: 500,
    })
    expect([b.state, b.mode, b.since, b.openedBy]).toEqual(["open", "fallback", 500, "connection_refused"])
    expect(b.failed("primary", "deadline")).toBeUndefined()
    expect(b.route()).toBe("fallback")
  })

  it("does not open on failures separated by a success: a slow or flaky call is not a lost Redis", () => {
    const { breaker: b } = breaker({ failureThreshold: 2 })
    for (let i = 0; i < 10; i += 1) {
      expect(b.failed("primary", "deadline")).toBeUndefined()
      b.succeeded("primary")
    }
    expect(b.state).toBe("closed")
    expect(b.failureCount).toBe(0)
  })

  it("leaves Redis alone while open, then lets exactly one call at a time probe it", () => {
    const { clock, breaker: b } = opened({ openMs: 1_000 })
    clock.advance(999)
    expect(b.route()).toBe("fallback")
    clock.advance(1)
    expect(b.route()).toBe("probe")
    expect(b.state).toBe("half-open")
    expect([b.route(), b.route()]).toEqual(["fallback", "fallback"])
    expect(b.succeeded("probe")).toBeUndefined()
    expect(b.route()).toBe("probe")
  })

  it("trusts Redis again only after the configured number of probes in a row succeed", () => {
    const { clock, breaker: b } = opened({ openMs: 1_000, probeSuccesses: 3 })
    clock.advance(1_000)
    const switches = [1, 2, 3].map(() => b.succeeded(b.route()))
    expect(switches.slice(0, 2)).toEqual([undefined, undefined])
    expect(switches[2]).toEqual({ from: "fallback", to: "shared", reason: "recovered", at: 1_000 })
    expect([b.state, b.mode, b.since, b.failureCount, b.openedBy]).toEqual([
      "closed",
      "shared",
      1_000,
      0,
      undefined,
    ])
  })

  it("opens again on one failed probe and waits a full interval before the next probe", () => {
    const { clock, breaker: b } = opened({ openMs: 1_000, probeSuccesses: 2 })
    clock.advance(1_000)
    b.succeeded(b.route())
    clock.advance(10)
    expect(b.failed(b.route(), "connection_lost")).toBeUndefined()
    expect(b.state).toBe("open")
    expect(b.mode).toBe("fallback")
    clock.advance(999)
    expect(b.route()).toBe("fallback")
    clock.advance(1)
    // The success before the failed probe does not count towards closing.
    expect(b.succeeded(b.route())).toBeUndefined()
    expect(b.succeeded(b.route())).toMatchObject({ to: "shared" })
  })

  it("ignores late answers to calls routed before the circuit opened", () => {
    const { clock, breaker: b } = opened({ openMs: 1_000 })
    b.succeeded("primary")
    b.succeeded("fallback")
    expect(b.state).toBe("open")
    clock.advance(1_000)
    const route: BreakerRoute = b.route()
    b.failed("primary", "deadline")
    expect(b.state).toBe("half-open")
    expect(route).toBe("probe")
  })

  it("counts the failures that opened it and every failed probe until it closes", () => {
    const { clock, breaker: b } = opened({ openMs: 0 })
    expect(b.failureCount).toBe(3)
    clock.advance(1)
    b.failed(b.route(), "connection_refused")
    expect(b.failureCount).toBe(4)
  })

  it("rejects settings it cannot honour", () => {
    const clock = new ManualClock(0)
    expect(() => new CircuitBreaker({ clock, failureThreshold: 0 })).toThrow(RangeError)
    expect(() => new CircuitBreaker({ clock, openMs: -1 })).toThrow(RangeError)
    expect(() => new CircuitBreaker({ clock, probeSuccesses: 1.5 })).toThrow(RangeError)
  })
})
