/**
 * `node dist/cli.js demo` in each given tree in turn (A/B on one machine in one run): seconds until the first
 * subscription key is printed, the server's CPU time by then, and its RSS then; then, for a build that loads
 * the older history after printing its keys (it says so on its banner and logs "demo history loaded"),
 * seconds and CPU until that line, and the RSS then; then the RSS after 10 s idle. A build without that
 * banner line wrote its whole history before the keys. Each tree needs a build (`npm run build`); the demo
 * keeps its database in memory. Port 18571.
 *
 * Usage: npx tsx bench/demo-first-key.ts <tree> [<tree> ...], e.g. `. /tmp/before . /tmp/before`
 */
import { spawn } from "node:child_process"
import { cpuMs, loadAverage, rssMiB } from "./support/server.js"

for (const tree of process.argv.slice(2)) {
  const env: Record<string, string | undefined> = { ...process.env, PORT: "18571", LOG_LEVEL: "warn" }
  delete env.OMNIMETER_DATA_DIR
  const loadAtStart = loadAverage()
  const started = performance.now()
  const child = spawn(process.execPath, ["dist/cli.js", "demo"], {
    cwd: tree,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  })
  let output = ""
  let errors = ""
  const exited = new Promise<void>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the demo in ${tree} exited with ${code}: ${errors}`))),
  )
  exited.catch(() => {})
  const firstKey = new Promise<void>((resolve) =>
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (/om_sk_\S+/.test(output) && /\n\n$/.test(output)) resolve()
    }),
  )
  const loaded = new Promise<void>((resolve) =>
    child.stderr.on("data", (chunk: Buffer) => {
      errors += chunk.toString()
      if (/demo history loaded/.test(errors)) resolve()
    }),
  )
  await Promise.race([firstKey, exited])
  const seconds = (performance.now() - started) / 1000
  const rssAtKey = rssMiB(child.pid)
  const cpu = cpuMs(child.pid) / 1000
  let history = "history written before the keys"
  if (/History: +the current billing periods are loaded/.test(output)) {
    await Promise.race([loaded, exited])
    const all = (performance.now() - started) / 1000
    history = `history loaded after ${all.toFixed(1)} s (server CPU ${(cpuMs(child.pid) / 1000).toFixed(1)} s, RSS ${rssMiB(child.pid)} MiB)`
  }
  await new Promise((resolve) => setTimeout(resolve, 10_000))
  console.log(
    `${tree}: first key after ${seconds.toFixed(1)} s (server CPU ${cpu.toFixed(1)} s, RSS ${rssAtKey} MiB); ${history}; RSS ${rssMiB(child.pid)} MiB after 10 s more idle (load ${loadAtStart} at start, ${loadAverage()} at end)`,
  )
  const stopped = new Promise((resolve) => child.once("exit", resolve))
  child.kill("SIGTERM")
  await stopped
}
