/** GET /api/demo/history: how far `omnimeter demo` has written its history (the dashboard's banner). */
import { authenticate } from "../auth.js"
import { errorResponses } from "../errors.js"
import { DemoHistorySchema } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

export const demoRoutes: RouteModule = (app, { keys, demoHistory }) => {
  app.get(
    "/api/demo/history",
    {
      onRequest: authenticate(keys),
      schema: {
        operationId: "getDemoHistory",
        tags: ["operations"],
        summary: "How far the demo's history is written",
        description:
          "`omnimeter demo` answers its keys once each subscription's current billing period is written, and writes the older history in the background. Any key may ask; a server that runs no demo answers state none.",
        security: bearerSecurity,
        response: { 200: DemoHistorySchema, ...errorResponses(401, 500) },
      },
    },
    async () => {
      const status = demoHistory.status()
      return {
        state: status.state,
        total_turns: status.totalTurns,
        loaded_turns: status.loadedTurns,
        starts_at: status.startsAt?.toISOString() ?? null,
        complete_since: status.completeSince?.toISOString() ?? null,
        finished_at: status.finishedAt?.toISOString() ?? null,
        error: status.error,
      }
    },
  )
}
