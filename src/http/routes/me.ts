/** GET /api/me: who the caller's key acts for, so a client (the dashboard) knows where to start. */
import { authenticate } from "../auth.js"
import { errorResponses } from "../errors.js"
import { MeSchema } from "../schemas.js"
import { bearerSecurity, type RouteModule } from "../types.js"

export const meRoutes: RouteModule = (app, { keys }) => {
  app.get(
    "/api/me",
    {
      onRequest: authenticate(keys),
      schema: {
        operationId: "getMe",
        tags: ["keys"],
        summary: "Who this API key acts for",
        description:
          "The admin key answers kind admin and no subscription; a subscription key answers its own subscription's id.",
        security: bearerSecurity,
        response: { 200: MeSchema, ...errorResponses(401, 500) },
      },
    },
    async (request) => {
      const principal = request.principal
      if (!principal) throw new Error("authenticate ran without setting a principal")
      return principal.kind === "admin"
        ? { kind: "admin" as const, subscription_id: null }
        : { kind: "subscription" as const, subscription_id: principal.subscriptionId }
    },
  )
}
