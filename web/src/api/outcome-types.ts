/**
 * The shapes of the prices, outcomes and feedback answers (issue 14), inferred from the server's TypeBox
 * schemas with type-only imports, like types.ts.
 */
import type { OutcomesAnswerBody, PriceBody, PriceListBody } from "../../../src/http/routes/outcomes.js"

export type { OutcomesAnswerBody, PriceBody, PriceListBody }
export type OutcomeFiguresBody = OutcomesAnswerBody["totals"]
export type ChannelOutcomesBody = OutcomesAnswerBody["channels"][number]
export type AttributionModel = OutcomesAnswerBody["attribution"]
