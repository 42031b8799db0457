/**
 * Starting and stopping the service: build the container, make sure an admin key exists, listen, and on
 * SIGINT/SIGTERM stop accepting, drain in-flight requests, then close the database and limiter.
 */
import type { Config } from "./config.js"
import { buildContainer, type Container, type ContainerOverrides } from "./container.js"
import { type AppOptions, buildApp } from "./http/app.js"
import { DEFAULT_DASHBOARD_DIR, dashboardBuilt } from "./http/dashboard.js"
import type { App } from "./http/types.js"

export interface RunningServer {
  app: App
  container: Container
  url: string
  /** Whether the built dashboard is served at `/`. */
  dashboard: boolean
  /** The admin key generated at this start, if one was: shown once. */
  generatedAdminKey: string | undefined
  stop(): Promise<void>
}

/** Builds everything and listens on the configured host and port. */
export async function startServer(
  config: Readonly<Config>,
  overrides: ContainerOverrides = {},
  appOptions: AppOptions = {},
): Promise<RunningServer> {
  const container = await buildContainer(config, overrides)
  try {
    const { generated } = await container.keys.ensureAdminKey(config.adminKey)
    const app = await buildApp(container, appOptions)
    container.databaseListeners.push((availability) => {
      if (availability.available) app.log.warn("database available again")
      else
        app.log.error({ error: availability.error }, "database unavailable: answering 503 until it is back")
    })
    await app.listen({ host: config.host, port: config.port })
    for (const job of container.backgroundJobs) {
      job.start((error) => app.log.error({ err: error }, "background job pass failed"))
    }
    const address = app.server.address()
    const port = typeof address === "object" && address ? address.port : config.port
    const host = config.host.includes(":") ? `[${config.host}]` : config.host
    let stopping: Promise<void> | undefined
    return {
      app,
      container,
      url: `http://${host}:${port}`,
      dashboard: dashboardBuilt(appOptions.dashboardDir ?? DEFAULT_DASHBOARD_DIR),
      generatedAdminKey: generated,
      stop: () => {
        stopping ??= (async () => {
          await app.close()
          await container.close()
        })()
        return stopping
      },
    }
  } catch (error) {
    await container.close()
    throw error
  }
}

/** Stops the server on SIGINT or SIGTERM, once. */
export function stopOnSignals(
  server: RunningServer,
  log: (line: string) => void,
  /** Called as the shutdown begins, before the database closes (work still running will fail). */
  onStopping?: () => void,
): void {
  const stop = (signal: string) => {
    log(`${signal}: draining in-flight requests and shutting down`)
    onStopping?.()
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exit(1)
      },
    )
  }
  process.once("SIGINT", () => stop("SIGINT"))
  process.once("SIGTERM", () => stop("SIGTERM"))
}
