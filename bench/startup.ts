/**
 * Start-up and memory as a new user meets them: `npm start` on a built tree until GET /healthz answers (on an
 * existing data directory: a first start creates it), and `npm run demo` until the first subscription key
 * is printed; the server's RSS at those moments and after `--idle` seconds. The server is the `node`
 * process under npm; it is found through /proc and stopped with its process group.
 *
 * Usage: npx tsx bench/startup.ts [--runs 3] [--idle 10] [--skip-demo] [--skip-start]
 * Needs a built tree (`npm run build`) to measure the start without a build. Port 18570.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readdirSync, readFileSync, rmSync } from "node:fs"
import { parseArgs } from "node:util"
import { loadAverage, rssMiB } from "./support/server.js"

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    idle: { type: "string", default: "10" },
    "skip-demo": { type: "boolean", default: false },
    "skip-start": { type: "boolean", default: false },
  },
})
const PORT = 18570
const dataDir = `/tmp/omnimeter-bench-startup-${process.pid}`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The process in `root`'s tree running dist/cli.js (npm -> sh -> node). */
function serverPid(root: number): number | undefined {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.split(") ")[1]?.split(" ")[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // gone meanwhile
    }
  }
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
      if (args[0]?.endsWith("node") && args.includes("dist/cli.js")) return pid
    } catch {
      // gone meanwhile
    }
    queue.push(...(children.get(pid) ?? []))
  }
  return undefined
}

function start(script: "start" | "demo"): ChildProcess {
  // The demo keeps its database in memory unless OMNIMETER_DATA_DIR is set: it is not, as a new user runs it.
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(PORT), LOG_LEVEL: "warn" }
  if (script === "start") env.OMNIMETER_DATA_DIR = dataDir
  else delete env.OMNIMETER_DATA_DIR
  return spawn("npm", ["run", script, "--silent"], {
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once("exit", resolve))
  process.kill(-child.pid, "SIGTERM")
  await exited
}

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${PORT}/healthz`)).ok
  } catch {
    return false
  }
}

async function measureStart(label: string): Promise<void> {
  const started = performance.now()
  const child = start("start")
  while (!(await healthy())) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`)
    await sleep(25)
  }
  const seconds = (performance.now() - started) / 1000
  const pid = child.pid === undefined ? undefined : serverPid(child.pid)
  const rssAtStart = rssMiB(pid)
  await sleep(Number(values.idle) * 1000)
  console.log(
    `npm start, ${label}: /healthz after ${seconds.toFixed(2)} s; server RSS ${rssAtStart} MiB then, ${rssMiB(pid)} MiB after ${values.idle} s idle (load ${loadAverage()})`,
  )
  await stop(child)
}

console.log(`node ${process.version}, load average at start ${loadAverage()}`)
if (!values["skip-start"]) {
  rmSync(dataDir, { recursive: true, force: true })
  await measureStart("new data directory")
  for (let i = 0; i < Number(values.runs); i += 1) await measureStart("existing data directory")
  rmSync(dataDir, { recursive: true, force: true })
}

if (!values["skip-demo"]) {
  const started = performance.now()
  const child = start("demo")
  let output = ""
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (/om_sk_\S+/.test(output)) resolve()
    })
    child.once("exit", (code) => reject(new Error(`npm run demo exited with ${code}`)))
  })
  const seconds = (performance.now() - started) / 1000
  const pid = child.pid === undefined ? undefined : serverPid(child.pid)
  const rssAfterSeed = rssMiB(pid)
  await sleep(Number(values.idle) * 1000)
  console.log(
    `npm run demo: first subscription key printed after ${seconds.toFixed(1)} s; server RSS ${rssAfterSeed} MiB after the seed, ${rssMiB(pid)} MiB after ${values.idle} s idle (load ${loadAverage()})`,
  )
  await stop(child)
}
