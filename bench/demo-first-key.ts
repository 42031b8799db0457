/**
 * `node dist/cli.js demo` in each given tree in turn (A/B on one machine in one run): seconds until the first
 * subscription key is printed, the server's CPU time by then, and its RSS then and after 10 s idle. Each tree
 * needs a build (`npm run build`); the demo keeps its database in memory. Port 18571.
 *
 * Usage: npx tsx bench/demo-first-key.ts <tree> [<tree> ...], e.g. `. /tmp/before . /tmp/before`
 */
import { spawn } from "node:child_process"
import { cpuMs, loadAverage, rssMiB } from "./support/server.js"

for (const tree of process.argv.slice(2)) {
  const env: Record<string, string | undefined> = { ...process.env, PORT: "18571", LOG_LEVEL: "warn" }
  delete env.OMNIMETER_DATA_DIR
  const started = performance.now()
  const child = spawn(process.execPath, ["dist/cli.js", "demo"], {
    cwd: tree,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  })
  let output = ""
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (/om_sk_\S+/.test(output)) resolve()
    })
    child.once("exit", (code) => reject(new Error(`the demo in ${tree} exited with ${code}`)))
  })
  const seconds = (performance.now() - started) / 1000
  const rssAfterSeed = rssMiB(child.pid)
  const cpu = cpuMs(child.pid) / 1000
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  console.log(
    `${tree}: first key after ${seconds.toFixed(1)} s (server CPU ${cpu.toFixed(1)} s); RSS ${rssAfterSeed} MiB after the seed, ${rssMiB(child.pid)} MiB after 10 s idle (load ${loadAverage()})`,
  )
  const exited = new Promise((resolve) => child.once("exit", resolve))
  child.kill("SIGTERM")
  await exited
}
