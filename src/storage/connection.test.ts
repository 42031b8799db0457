import pg from "pg"
import { describe, expect, it } from "vitest"
import { freePort } from "../../test/support/processes.js"
import { DatabaseUnavailableError, OmnimeterError } from "../core/errors.js"
import { type DatabaseAvailability, GuardedPool, isConnectionLoss } from "./connection.js"

const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code })

describe("connection loss", () => {
  it("socket failures and the server's shutdown or start-up codes mean the database is unavailable", () => {
    for (const code of [
      "ECONNRESET",
      "ECONNREFUSED",
      "EPIPE",
      "ETIMEDOUT",
      "57P01",
      "57P02",
      "57P03",
      "53300",
    ])
      expect(isConnectionLoss(withCode(code)), code).toBe(true)
  })

  it("every SQLSTATE of class 08 (connection exception) counts", () => {
    for (const code of ["08000", "08003", "08006", "08001", "08004", "08P01"])
      expect(isConnectionLoss(withCode(code)), code).toBe(true)
  })

  it("pg's code-less messages for a dead client count", () => {
    expect(isConnectionLoss(new Error("Connection terminated unexpectedly"))).toBe(true)
    expect(isConnectionLoss(new Error("Connection terminated due to connection timeout"))).toBe(true)
    expect(
      isConnectionLoss(new Error("Client has encountered a connection error and is not queryable")),
    ).toBe(true)
    expect(isConnectionLoss(new Error("timeout exceeded when trying to connect"))).toBe(true)
  })

  it("errors in the statement itself are not an outage", () => {
    expect(isConnectionLoss(withCode("23505", "duplicate key value"))).toBe(false)
    expect(isConnectionLoss(withCode("40P01", "deadlock detected"))).toBe(false)
    expect(isConnectionLoss(withCode("42P01", 'relation "nope" does not exist'))).toBe(false)
    expect(isConnectionLoss(new OmnimeterError("validation_error", "bad"))).toBe(false)
    expect(isConnectionLoss(undefined)).toBe(false)
    expect(isConnectionLoss("Connection terminated")).toBe(false)
  })

  it("the typed error is retryable, answers service_unavailable and says when to come back", () => {
    const error = new DatabaseUnavailableError("down", 2, "unknown")
    expect(isConnectionLoss(error)).toBe(true)
    expect(error).toBeInstanceOf(OmnimeterError)
    expect(error).toMatchObject({
      code: "service_unavailable",
      retryable: true,
      retryAfterSeconds: 2,
      outcome: "unknown",
    })
    expect(error.details).toEqual({ retryAfterSeconds: 2, outcome: "unknown" })
  })

  it("a pool whose server is not there answers the typed error, reports it, then fails fast while it probes", async () => {
    const port = await freePort() // nothing listens there
    const changes: DatabaseAvailability[] = []
    const pool = new GuardedPool(
      new pg.Pool({ connectionString: `postgres://nobody@127.0.0.1:${port}/none` }),
      {
        onAvailabilityChange: (availability) => changes.push(availability),
        retryAfterSeconds: 2,
      },
    )
    try {
      const first = await pool.connect().catch((error: unknown) => error)
      expect(first).toBeInstanceOf(DatabaseUnavailableError)
      expect(first).toMatchObject({ code: "service_unavailable", retryAfterSeconds: 2 })
      expect(pool.availability()).toMatchObject({
        available: false,
        error: expect.stringMatching(/ECONNREFUSED|connect/),
      })
      expect(changes.map((c) => c.available)).toEqual([false])
      const started = performance.now()
      await expect(pool.connect()).rejects.toThrow(/unavailable since/)
      expect(performance.now() - started).toBeLessThan(50)
    } finally {
      await pool.end()
    }
  })

  it("a pool saturated past its connect timeout tells the caller to retry, but does not mark the database down", async () => {
    const port = await freePort()
    const pool = new GuardedPool(
      new pg.Pool({ connectionString: `postgres://nobody@127.0.0.1:${port}/none` }),
    )
    try {
      const timeout = pool.translate(new Error("timeout exceeded when trying to connect"))
      expect(timeout).toBeInstanceOf(DatabaseUnavailableError)
      expect(pool.availability()).toEqual({ available: true })
      const statement = withCode("42P01")
      expect(pool.translate(statement)).toBe(statement)
    } finally {
      await pool.end()
    }
  })
})
