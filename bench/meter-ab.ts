/**
 * Two builds of the library in one process, alternating: each round opens a meter on a new in-memory
 * embedded database with each build's `createMeter` (so each runs its own background jobs, as a library
 * host's meter does), creates `--subscriptions` subscriptions, and measures the lone turn (one caller, for
 * `--seconds`) and the maximum (`--concurrency` callers, for `--seconds`). Without an HTTP server or a load
 * generator beside it, it shows what a change of the consume path costs where the HTTP benchmark's noise
 * would hide it. Build both first (`npm run build`; another tree: `git archive <rev> | tar -x -C <dir>`).
 *
 * Usage: npx tsx bench/meter-ab.ts --a <dir>/dist/index.js --b dist/index.js [--rounds 3] [--seconds 5]
 *          [--concurrency 64] [--subscriptions 100]
 */
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { parseArgs } from "node:util"
import { driveMeter, prepareSubscriptions } from "./support/meter-load.js"
import { loadAverage } from "./support/server.js"

const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string", default: "dist/index.js" },
    rounds: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "64" },
    subscriptions: { type: "string", default: "100" },
  },
})
if (!values.a) throw new Error("--a <build>/dist/index.js is required")
type Library = typeof import("../src/index.js")
const builds: Array<[string, Library]> = []
for (const [label, path] of [
  ["A", values.a],
  ["B", values.b],
] as const) {
  builds.push([`${label} (${path})`, (await import(pathToFileURL(resolve(path)).href)) as Library])
}
const seconds = Number(values.seconds)
const f = (x: number) => x.toFixed(2)

console.log(`node ${process.version}, load average at start ${loadAverage()}`)
for (let round = 1; round <= Number(values.rounds); round += 1) {
  for (const [name, library] of round % 2 === 1 ? builds : [...builds].reverse()) {
    const meter = await library.createMeter({ dataDir: ":memory:" })
    try {
      const entities = await prepareSubscriptions(meter, Number(values.subscriptions))
      await driveMeter(meter, entities, { seconds: 1, concurrency: 1 }) // warm-up
      const lone = await driveMeter(meter, entities, { seconds, concurrency: 1 })
      const most = await driveMeter(meter, entities, { seconds, concurrency: Number(values.concurrency) })
      console.log(
        `round ${round} ${name}: lone turn p50 ${f(lone.p50)} / p90 ${f(lone.p90)} / p99 ${f(lone.p99)} ms (${lone.allowed} turns); ${Math.round(most.perSecond)} allowed/s at ${values.concurrency} callers, p99 ${f(most.p99)} ms; load ${loadAverage()}`,
      )
    } finally {
      await meter.close()
    }
  }
}
