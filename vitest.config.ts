/**
 * One test command, every engine. Pure tests (`*.test.ts`) run once; database suites (`*.db.test.ts`) run
 * on embedded PGlite and on PostgreSQL; Redis suites (`*.redis.test.ts`) against Redis; browser suites
 * (`*.e2e.test.ts`) in Debian's Chromium; fault suites (`*.chaos.test.ts`) against PostgreSQL, Redis and
 * PgBouncer processes of their own. When CI is set, an unreachable PostgreSQL or Redis, or a missing
 * Chromium, fails the run instead of skipping its suites.
 */
import { existsSync } from "node:fs"
import net from "node:net"
import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { SummaryReporter } from "./test/support/summary-reporter.js"

const postgresUrl = process.env.OMNIMETER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const redisUrl = process.env.OMNIMETER_TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

function reachable(rawUrl: string): Promise<boolean> {
  const url = new URL(rawUrl)
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })
}

async function service(name: string, rawUrl: string): Promise<boolean> {
  if (await reachable(rawUrl)) return true
  if (process.env.CI)
    throw new Error(`${name} at ${rawUrl} is unreachable and CI is set: its suites must run, not skip.`)
  console.warn(
    `omnimeter tests: ${name} at ${rawUrl} is unreachable; its suites are skipped (they never are in CI).`,
  )
  return false
}

const chromiumPath = process.env.OMNIMETER_TEST_CHROMIUM ?? "/usr/bin/chromium"

/** The browser suite needs Debian's Chromium (.ci/run installs it); in CI its absence fails the run. */
function chromium(): boolean {
  if (existsSync(chromiumPath)) return true
  if (process.env.CI)
    throw new Error(
      `Chromium is missing at ${chromiumPath} and CI is set: the browser suite must run, not skip.`,
    )
  console.warn(
    `omnimeter tests: Chromium is missing at ${chromiumPath}; the browser suite is skipped (never in CI). Install it with apt-get install chromium.`,
  )
  return false
}

export default defineConfig(async () => {
  const [postgres, redis] = await Promise.all([
    service("PostgreSQL", postgresUrl),
    service("Redis", redisUrl),
  ])
  const shared = { testTimeout: 60_000, hookTimeout: 60_000 }
  return {
    test: {
      reporters: ["default", new SummaryReporter()],
      // Two test files at once even on two cores (vitest's default there is one): most files spend much of
      // their time waiting on PostgreSQL, a server or a fork starting up, and every file has a database, a
      // Redis key prefix and a port of its own. The browser and fault suites stay one file at a time.
      maxWorkers: Math.max(2, availableParallelism() - 1),
      projects: [
        {
          test: {
            ...shared,
            name: "unit",
            include: ["src/**/*.test.ts", "test/**/*.test.ts"],
            exclude: [
              "**/*.db.test.ts",
              "**/*.redis.test.ts",
              "**/*.e2e.test.ts",
              "**/*.chaos.test.ts",
              "**/node_modules/**",
            ],
          },
        },
        {
          test: {
            ...shared,
            name: "pglite",
            include: ["**/*.db.test.ts"],
            // Migrates once per run; every test database starts as a copy (test/support/database.ts).
            globalSetup: ["test/support/database.global.ts"],
            exclude: ["**/node_modules/**"],
            env: { OMNIMETER_TEST_DATABASE: "pglite" },
          },
        },
        ...(postgres
          ? [
              {
                test: {
                  ...shared,
                  name: "postgres",
                  include: ["**/*.db.test.ts"],
                  globalSetup: ["test/support/database.global.ts"],
                  exclude: ["**/node_modules/**"],
                  env: { OMNIMETER_TEST_DATABASE: "postgres", OMNIMETER_TEST_POSTGRES_URL: postgresUrl },
                },
              },
            ]
          : []),
        ...(chromium()
          ? [
              {
                test: {
                  ...shared,
                  name: "browser",
                  include: ["**/*.e2e.test.ts"],
                  // The dashboard is built, and the demo seeded, once per run; every browser suite serves
                  // that build on a copy of that demo.
                  globalSetup: ["test/support/dashboard-build.global.ts", "test/support/demo.global.ts"],
                  // One file at a time, after the other projects' files: each holds a Chromium and a server
                  // whose slow answers (issue 14) hold its embedded database's one connection; two at once
                  // on two loaded cores ran past their 30 s locator timeouts (bench/RESULTS.md).
                  fileParallelism: false,
                  exclude: ["**/node_modules/**"],
                  testTimeout: 90_000,
                  hookTimeout: 180_000,
                  env: { OMNIMETER_TEST_CHROMIUM: chromiumPath },
                },
              },
            ]
          : []),
        {
          // The fault suite: its own PostgreSQL clusters, redis-server and pgbouncer processes, which it
          // stops, slows and kills; never the shared services. One file at a time: its load tests measure
          // behaviour under a bounded load, and two at once would only measure each other.
          test: {
            ...shared,
            name: "chaos",
            include: ["**/*.chaos.test.ts"],
            exclude: ["**/node_modules/**"],
            fileParallelism: false,
            testTimeout: 120_000,
            hookTimeout: 120_000,
          },
        },
        ...(redis
          ? [
              {
                test: {
                  ...shared,
                  name: "redis",
                  include: ["**/*.redis.test.ts"],
                  exclude: ["**/node_modules/**"],
                  env: { OMNIMETER_TEST_REDIS_URL: redisUrl },
                },
              },
            ]
          : []),
      ],
    },
  }
})
