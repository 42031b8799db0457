/**
 * The Python client (clients/python, standard library only) tested with `unittest` against a real server
 * this test starts on a socket. Its example, examples/client.py, runs in test/http/server.db.test.ts.
 */
import { execFile } from "node:child_process"
import type { AddressInfo } from "node:net"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ADMIN_KEY, startTestApp, type TestApp } from "../support/http.js"

const run = promisify(execFile)
let t: TestApp
let env: NodeJS.ProcessEnv

beforeAll(async () => {
  t = await startTestApp()
  await t.app.listen({ port: 0, host: "127.0.0.1" })
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
  env = { ...process.env, OMNIMETER_URL: url, OMNIMETER_ADMIN_KEY: ADMIN_KEY, PYTHONDONTWRITEBYTECODE: "1" }
})
afterAll(async () => {
  await t.close()
})

describe("the Python client", () => {
  it("passes its unittest suite against a real server, skipping nothing", async () => {
    const { stderr } = await run("python3", ["-m", "unittest", "-v", "test_omnimeter"], {
      cwd: "clients/python",
      env,
    })
    expect(stderr).toMatch(/\nOK\n/)
    expect(stderr).not.toMatch(/skipped/)
  })
})
