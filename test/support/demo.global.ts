/**
 * Vitest global setup of the browser project: seeds the demo once per run (through the production path:
 * a migrated embedded database, the container's services, seedDemo) and hands every browser suite the
 * seeded data directory as a tarball in a temporary directory, removed when the run ends. Each suite's
 * server loads its own copy, so what one suite changes no other sees (test/support/dashboard.ts).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TestProject } from "vitest/node"
import { loadConfig } from "../../src/config.js"
import { buildContainer } from "../../src/container.js"
import type { Subscription } from "../../src/core/subscription.js"
import { dumpMigratedEmbeddedDatabase } from "../../src/storage/database.js"
import { type DemoSnapshot, seedDemoSnapshot } from "./demo.js"

declare module "vitest" {
  export interface ProvidedContext {
    /** The demo seeded once for the run (browser project). */
    demoSnapshot: DemoSnapshot
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const directory = await mkdtemp(join(tmpdir(), "omnimeter-demo-snapshot-"))
  try {
    const seededAt = new Date()
    let demo: Subscription[] = []
    const archive = await dumpMigratedEmbeddedDatabase(async (database) => {
      const container = await buildContainer(loadConfig({ LOG_LEVEL: "silent" }), { database })
      try {
        demo = await seedDemoSnapshot(container, seededAt)
      } finally {
        await container.close()
      }
    })
    const path = join(directory, "demo.tar")
    await writeFile(path, new Uint8Array(await archive.arrayBuffer()))
    project.provide("demoSnapshot", {
      path,
      seededAt: seededAt.toISOString(),
      subscriptions: JSON.stringify(demo),
    })
  } catch (error) {
    await rm(directory, { recursive: true, force: true })
    throw error
  }
  return () => rm(directory, { recursive: true, force: true })
}
