/**
 * Runs database suites on PostgreSQL through a private PgBouncer in `pool_mode=transaction` (4 server
 * connections per database), in front of the test PostgreSQL (OMNIMETER_TEST_POSTGRES_URL or the local
 * default). Every scratch database a suite creates is reached through the pooler.
 * Usage: npm run test:pgbouncer [-- <test files>]; without files, the storage, meter and security suites.
 */
import { spawn } from "node:child_process"
import { startPgBouncer } from "./pgbouncer.js"

const upstream = new URL(process.env.OMNIMETER_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test")
if (upstream.hostname !== "127.0.0.1" && upstream.hostname !== "localhost")
  throw new Error(`the pooler runs on loopback; ${upstream.hostname} is not`)
const files = process.argv.slice(2)
const suites = files.length
  ? files
  : [
      "src/storage/",
      "src/meter/meter.db.test.ts",
      "test/http/security.db.test.ts",
      "test/http/tokens.db.test.ts",
    ]

const user = decodeURIComponent(upstream.username || "postgres")
const bouncer = await startPgBouncer({
  upstreamPort: Number(upstream.port || 5432),
  databases: ["*"],
  users: [user],
  poolSize: 4,
})
const through = new URL(upstream)
through.port = String(bouncer.port)
console.log(`PgBouncer (transaction mode) on ${bouncer.port} in front of ${upstream.host}`)
const code = await new Promise<number>((resolve) => {
  const child = spawn("npx", ["vitest", "run", "--project", "postgres", ...suites], {
    stdio: "inherit",
    env: { ...process.env, OMNIMETER_TEST_POSTGRES_URL: through.toString() },
  })
  child.once("exit", (exitCode) => resolve(exitCode ?? 1))
})
const stats = await bouncer.admin<{ database: string; total_xact_count: string }>("SHOW STATS")
const transactions = stats
  .filter((row) => row.database.startsWith("omnimeter_test_"))
  .reduce((sum, row) => sum + Number(row.total_xact_count), 0)
console.log(`${transactions} transactions of the suites went through PgBouncer`)
await bouncer.stop()
if (transactions === 0) throw new Error("no suite transaction went through PgBouncer")
process.exit(code)
