/**
 * The shapes of the turn log and the breakdown (issue 16), inferred from the server's TypeBox schemas.
 * Type-only imports, like types.ts.
 */
import type { BreakdownBody, BreakdownItemBody } from "../../../src/http/routes/breakdown.js"
import type { TurnBody } from "../../../src/http/routes/turns.js"

export type { BreakdownBody, BreakdownItemBody, TurnBody }
export type BreakdownDimension = BreakdownBody["by"]
export type BreakdownSort = BreakdownBody["sort"]

/** GET /api/subscriptions/{id}/turns */
export interface TurnPage {
  turns: TurnBody[]
  next_cursor: string | null
}
