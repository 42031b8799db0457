/**
 * Vitest global setup of the browser project: builds the dashboard once per run into a scratch folder that
 * every browser suite serves (`inject("dashboardDir")`), and removes it afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { build } from "vite"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    /** The built dashboard (web/dist of this run), served by the browser suites' servers. */
    dashboardDir: string
  }
}

let outDir: string | undefined

export async function setup(project: TestProject): Promise<void> {
  outDir = mkdtempSync(join(tmpdir(), "omnimeter-web-"))
  await build({
    configFile: resolve("web/vite.config.ts"),
    root: resolve("web"),
    logLevel: "warn",
    build: { outDir, emptyOutDir: true },
  })
  project.provide("dashboardDir", outDir)
}

export function teardown(): void {
  if (outDir) rmSync(outDir, { recursive: true, force: true })
}
