#!/usr/bin/env node
/**
 * omnimeter's command line: `start` (the service), `demo` (the service on demo data), `migrate` (apply
 * migrations and exit). Configuration comes from the environment (README, "Configuration").
 */
import { loadConfig } from "./config.js"
import { OmnimeterError } from "./core/errors.js"
import { startServer, stopOnSignals } from "./server.js"
import { openDatabase } from "./storage/database.js"

const log = (line: string) => process.stderr.write(`${line}\n`)

function banner(url: string, dashboard: boolean, adminKey: string | undefined, extra: string[] = []): void {
  const lines = [
    "",
    `omnimeter is listening on ${url}`,
    `  Dashboard:  ${url}/${dashboard ? "" : "   (not built: run npm run build:web)"}`,
    `  API docs:   ${url}/docs   (OpenAPI: ${url}/openapi.json)`,
    `  health:     ${url}/healthz, ${url}/readyz, ${url}/metrics`,
    ...extra,
  ]
  if (adminKey) {
    lines.push(
      "",
      "  Admin key (shown once; store it now, or set OMNIMETER_ADMIN_KEY); sign in to the dashboard with it:",
      `    ${adminKey}`,
      `  Try: curl -H "Authorization: Bearer ${adminKey}" ${url}/api/subscriptions`,
    )
  }
  process.stdout.write(`${lines.join("\n")}\n\n`)
}

async function main(command: string | undefined): Promise<void> {
  const config = loadConfig()
  switch (command) {
    case "start": {
      const server = await startServer(config)
      const where = config.databaseUrl ? "PostgreSQL" : `embedded PGlite in ${config.dataDir}`
      banner(server.url, server.dashboard, server.generatedAdminKey, [
        `  storage:    ${where}; rate limits ${config.redisUrl ? "shared in Redis" : "in this process"}`,
      ])
      stopOnSignals(server, log)
      return
    }
    case "demo": {
      const demoConfig = Object.freeze({
        ...config,
        dataDir: process.env.OMNIMETER_DATA_DIR ? config.dataDir : ":memory:",
        adminKey: config.adminKey ?? "om_admin_demo_key_do_not_use_in_production",
      })
      const [server, { startDemoSeed }, { seedDemoDashboards }] = await Promise.all([
        startServer(demoConfig),
        import("./demo/seed.js"),
        import("./demo/dashboards.js"),
      ])
      // 60 days, so that the default 30-day period has a full previous period to show growth against. The
      // keys are printed once the current billing periods are written; the older days follow.
      log("seeding 60 days of demo traffic: the current billing periods first ...")
      const started = performance.now()
      const { demoHistory } = server.container
      const seed = await startDemoSeed(
        server.container.meter,
        server.container.database,
        new Date(),
        60,
        demoHistory,
      )
      const subscriptions = seed.subscriptions
      let stopping = false
      void seed.history.then(
        () => {
          const { loadedTurns } = demoHistory.status()
          const seconds = ((performance.now() - started) / 1000).toFixed(1)
          log(
            `demo history loaded: ${loadedTurns.toLocaleString("en")} turns, ${seconds} s after the seed began`,
          )
        },
        (error: unknown) => {
          // Stopped while the older days were loading: the database closed under the writes (said below).
          if (!stopping)
            log(
              `demo history failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
            )
        },
      )
      await seedDemoDashboards(server.container.dashboards, subscriptions)
      const keys = await Promise.all(
        subscriptions.map((s) => server.container.keys.issueSubscriptionKey(s.id, "demo")),
      )
      const loading = demoHistory.status()
      banner(server.url, server.dashboard, undefined, [
        `  storage:    ${demoConfig.databaseUrl ? "PostgreSQL" : demoConfig.dataDir === ":memory:" ? "embedded PGlite in memory (fresh each run)" : demoConfig.dataDir}`,
        "",
        "  Open the dashboard and sign in with the demo admin key (sees every subscription):",
        `    ${demoConfig.adminKey}`,
        "  or with one subscription's own key:",
        ...subscriptions.map(
          (s, i) =>
            `    ${s.entityId.padEnd(16)} ${s.plan.padEnd(13)} ${s.timezone.padEnd(18)} ${keys[i]?.key ?? ""}`,
        ),
        "  Subscription ids:",
        ...subscriptions.map((s) => `    ${s.entityId.padEnd(16)} ${s.id}`),
        "",
        ...(loading.state === "loading"
          ? [
              "  History:    the current billing periods are loaded: quota and new turns are exact now.",
              `              The older days, the broadcast's alerts and the outcomes are loading in the background (${loading.loadedTurns.toLocaleString("en")} of ${loading.totalTurns.toLocaleString("en")} turns);`,
              `              the dashboard says when they are done, as do ${server.url}/api/demo/history and a line here.`,
            ]
          : [`  History:    ${loading.state}`]),
      ])
      stopOnSignals(server, log, () => {
        stopping = true
        const { state, loadedTurns, totalTurns } = demoHistory.status()
        if (state === "loading")
          log(
            `demo history stopped with the server: ${loadedTurns.toLocaleString("en")} of ${totalTurns.toLocaleString("en")} turns written`,
          )
      })
      return
    }
    case "migrate": {
      const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
      await database.close()
      log("migrations applied")
      return
    }
    default:
      log("usage: omnimeter <start|demo|migrate>")
      process.exitCode = 2
  }
}

main(process.argv[2]).catch((error: unknown) => {
  if (error instanceof OmnimeterError) log(`omnimeter: ${error.message}`)
  else log(`omnimeter: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
