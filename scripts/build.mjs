// Builds the service (tsc into dist/, then the SQL files tsc does not copy) and the dashboard (vite into
// web/dist/), each only when its inputs changed since its last build. `npm start` and `npm run demo` run
// this first, so a start on a built tree goes straight to the server; the first start still builds.
//
// Each part's inputs are hashed (path and content of every file, so a branch switch or an edit back to an
// older text is seen, whatever the files' times); the hash is written next to the part's output after a
// successful build, and a part is skipped when its stamp matches and its entry file exists.
//
// Usage: node scripts/build.mjs [--force] [--quiet] [--only=service|dashboard]
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const force = process.argv.includes("--force")
const quiet = process.argv.includes("--quiet")
const only = process.argv.find((arg) => arg.startsWith("--only="))?.slice("--only=".length)
const log = (line) => {
  if (!quiet) process.stderr.write(`${line}\n`)
}

/** Every file under `dir`, sorted, except directories named in `skip` and files `keep` rejects. */
function files(dir, skip, keep = () => true) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((entry) => {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) return skip.has(entry.name) ? [] : files(path, skip, keep)
      return keep(path) ? [path] : []
    })
}

function hashOf(paths) {
  const hash = createHash("sha256")
  for (const path of paths) {
    hash.update(path)
    hash.update("\0")
    hash.update(readFileSync(path))
    hash.update("\0")
  }
  return hash.digest("hex")
}

function run(command, args) {
  const result = spawnSync(command, args, { stdio: "inherit" })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

const tscBin = join("node_modules", "typescript", "bin", "tsc")
const viteBin = join("node_modules", "vite", "bin", "vite.js")
const shared = ["package-lock.json", "scripts/build.mjs"].filter(existsSync)

const parts = [
  {
    name: "service",
    // Tests are not compiled (tsconfig.json excludes them), so a test edit does not rebuild the service.
    inputs: () => [
      ...files("src", new Set(), (path) => !path.endsWith(".test.ts")),
      "tsconfig.json",
      ...shared,
    ],
    stamp: "dist/.build-stamp",
    entry: "dist/cli.js",
    build: () => {
      run(process.execPath, [tscBin, "-p", "tsconfig.json"])
      // The migrator reads the SQL migrations and the database functions they include next to its module.
      cpSync("src/storage/migrations", "dist/storage/migrations", { recursive: true })
      cpSync("src/storage/functions", "dist/storage/functions", { recursive: true })
      // A new embedded database (the demo's, a first start's) starts from this migrated data directory
      // instead of running initdb and every migration (src/storage/database.ts, MIGRATED_SNAPSHOT).
      run(process.execPath, [
        "--input-type=module",
        "--eval",
        'await (await import("./dist/storage/database.js")).writeMigratedSnapshot()',
      ])
    },
  },
  {
    name: "dashboard",
    // The dashboard imports only types from src/ (test/web/bundle-boundary.test.ts), erased at build.
    inputs: () => [...files("web", new Set(["dist", "node_modules"])), ...shared],
    stamp: "web/dist/.build-stamp",
    entry: "web/dist/index.html",
    build: () => run(process.execPath, [viteBin, "build", "web", "--logLevel", "warn"]),
  },
]

for (const part of parts) {
  if (only !== undefined && part.name !== only) continue
  const hash = hashOf(part.inputs())
  const fresh =
    !force &&
    existsSync(part.entry) &&
    existsSync(part.stamp) &&
    readFileSync(part.stamp, "utf8").trim() === hash
  if (fresh) {
    log(`${part.name}: up to date`)
    continue
  }
  log(`${part.name}: building`)
  part.build()
  writeFileSync(part.stamp, `${hash}\n`)
}
