/**
 * The package as a user gets it: `npm pack`, installed from the tarball into an empty project (its
 * dependencies from the npm cache, else the registry), where the README's library example and a client
 * import type-check against the shipped declarations and run. Slow (a build and an install): it runs once,
 * in the unit project.
 */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const run = promisify(execFile)
const repo = resolve(import.meta.dirname, "../..")
const tsc = join(repo, "node_modules/typescript/bin/tsc")
let project: string
let files: string[]

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "omnimeter-package-"))
  // The library's build (the dashboard's bundle is the browser suite's business, and optional here).
  await rm(join(repo, "dist"), { recursive: true, force: true })
  await run(process.execPath, ["scripts/build.mjs", "--force", "--quiet", "--only=service"], { cwd: repo })
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", project], { cwd: repo })
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
  if (!packed) throw new Error("npm pack reported nothing")
  files = packed.files.map((file) => file.path)
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "adopter", private: true, type: "module" }),
  )
  await run(
    "npm",
    [
      "install",
      join(project, packed.filename),
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
    ],
    { cwd: project, timeout: 240_000 },
  )
}, 300_000)

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

describe("the npm package", () => {
  it("ships the built library, its types, migrations and the docs, and no test, bench or source files", () => {
    expect(files).toEqual(
      expect.arrayContaining(["dist/index.js", "dist/index.d.ts", "dist/client/index.d.ts"]),
    )
    expect(files.some((file) => file.startsWith("dist/storage/migrations/"))).toBe(true)
    const shippedByMistake = files.filter(
      (file) =>
        /^(test|bench|examples|scripts|src|web\/src|clients)\//.test(file) ||
        /\.test\.(js|d\.ts)$/.test(file) ||
        (file.endsWith(".ts") && !file.endsWith(".d.ts")),
    )
    expect(shippedByMistake).toEqual([])
  })

  it("installs into an empty project, where the library example and the client type-check and run", async () => {
    const example = (await readFile(join(repo, "examples/library.ts"), "utf8")).replace(
      /from "\.\.\/src\/index\.js".*$/m,
      'from "omnimeter"',
    )
    await writeFile(join(project, "library.ts"), example)
    await writeFile(
      join(project, "client.ts"),
      `import { createOmnimeterClient, type Decision, type DenialReason } from "omnimeter/client"
import { estimateTokens } from "omnimeter"
const client = createOmnimeterClient({ baseUrl: "http://127.0.0.1:9", apiKey: "k" })
export function reason(decision: Decision): DenialReason | "allowed" {
  return decision.allowed ? "allowed" : decision.reason
}
console.log(typeof client.consume, typeof client.meteredTurn, estimateTokens("hello world"))
`,
    )
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2023",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: true,
          outDir: "out",
          types: ["node"],
          typeRoots: [join(repo, "node_modules/@types")],
        },
        files: ["library.ts", "client.ts"],
      }),
    )
    await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: project })
    const library = await run(process.execPath, ["out/library.js"], {
      cwd: project,
      env: { ...process.env, OMNIMETER_DATA_DIR: ":memory:" },
    })
    expect(library.stdout).toContain("allowed: billed 420 tokens at 1.2x, 999580 left")
    expect(library.stdout).toContain("denied: channel_not_in_plan")
    const client = await run(process.execPath, ["out/client.js"], { cwd: project })
    expect(client.stdout).toBe("function function 2\n")
  }, 240_000)
})
