import { performance } from "node:perf_hooks"
import { sql } from "kysely"
import { rollupQueries } from "./src/analytics/queries.js"
import { CHANNELS } from "./src/core/channels.js"
import { localRangeToInstants, addDays, todayIn } from "./src/core/time-zones.js"
import { openDatabase } from "./src/storage/database.js"
const database = await openDatabase({ databaseUrl: "postgres://postgres@127.0.0.1:5432/an_bench_dev", poolSize: 2 })
const id = (await sql<{ id: string }>`select id from subscriptions where entity_id = 'bench-analytics-large'`.execute(database.db)).rows[0]?.id ?? ""
const tz = "America/New_York"
const to = todayIn(tz, new Date())
const cur = { subscriptionId: id, ...localRangeToInstants(addDays(to, -89), to, tz), channels: [...CHANNELS], timeZone: tz }
const prev = { subscriptionId: id, ...localRangeToInstants(addDays(to, -179), addDays(to, -90), tz), channels: [...CHANNELS], timeZone: tz }
const time = async (label: string, fn: () => Promise<unknown>) => {
  const xs: number[] = []
  for (let i = 0; i < 6; i++) { const t = performance.now(); await fn(); xs.push(performance.now() - t) }
  xs.sort((a, b) => a - b); console.log(label, xs.map((x) => x.toFixed(1)).join(" "))
}
await time("dayHour", () => rollupQueries.usageByLocalDayAndHour(database.db, cur))
await time("users cur", () => rollupQueries.uniqueUsers(database.db, cur))
await time("totals prev", () => rollupQueries.usageTotals(database.db, prev))
await time("users prev", () => rollupQueries.uniqueUsers(database.db, prev))
await time("hourStart", () => rollupQueries.usageByLocalHourStart(database.db, { ...cur, start: new Date(cur.end.getTime() - 14 * 86400000) }))
await database.close()
