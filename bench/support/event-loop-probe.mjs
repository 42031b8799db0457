/**
 * A preload for a benchmarked server (`NODE_OPTIONS="--import ./bench/support/event-loop-probe.mjs"`): every
 * second it appends one JSON line to $OMNIMETER_BENCH_PROBE_FILE with the event loop's delay over that second
 * (perf_hooks.monitorEventLoopDelay, 10 ms resolution: max, p99, mean, in ms) and the process's memory
 * (process.memoryUsage, MiB: rss, heapUsed, external, arrayBuffers). External is mostly PGlite's WebAssembly
 * memory; arrayBuffers the in-memory file system and PGlite's result buffers. Bench use only.
 */
import { appendFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"

const file = process.env.OMNIMETER_BENCH_PROBE_FILE
// NODE_OPTIONS reaches every Node process of the run (npx, tsx, the load generator): probe the server only.
if (file && /cli\.js$/.test(process.argv[1] ?? "")) {
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  histogram.enable()
  const mib = (bytes) => Math.round(bytes / 1048576)
  const timer = setInterval(() => {
    const memory = process.memoryUsage()
    const line = {
      t: Date.now(),
      maxMs: histogram.max / 1e6,
      p99Ms: histogram.percentile(99) / 1e6,
      meanMs: Number((histogram.mean / 1e6).toFixed(2)),
      rss: mib(memory.rss),
      heapUsed: mib(memory.heapUsed),
      external: mib(memory.external),
      arrayBuffers: mib(memory.arrayBuffers),
    }
    histogram.reset()
    appendFileSync(file, `${JSON.stringify(line)}\n`)
  }, 1000)
  timer.unref()
}
