/**
 * One call that meters an LLM turn end to end: consume, run the caller's function only when the turn is
 * allowed, settle with the tokens its result reports (core/llm-usage.ts) or the caller's mapping, and settle
 * as an error (refunding the estimate) when the function throws, then rethrow. The library's
 * `Meter.meteredTurn` and the HTTP client's `meteredTurn` both run this, over their own consume and settle.
 * No I/O of its own and no server imports, so the client can ship it.
 */
import { tokensUsedBy } from "../core/llm-usage.js"

/** How to read the tokens a turn really used from the function's result, when its shape is not known. */
export type UsageMapping<R> = (result: R) => number | undefined | Promise<number | undefined>

export interface MeteredTurnOptions<R> {
  /** Maps the result to tokens used; by default OpenAI, Anthropic and Vercel AI SDK usage are read. */
  usage?: UsageMapping<R>
}

/** A turn that ran and was settled, or one that was denied (the function never ran). */
export type MeteredTurn<Allowed, Denied, R, Settled> =
  | { allowed: true; decision: Allowed; result: R; actualTokens: number; settlement: Settled }
  | { allowed: false; decision: Denied }

/** What a metered turn needs: consume, and settle one allowed decision. */
export interface TurnSteps<Allowed, Denied, Settled> {
  consume(): Promise<Allowed | Denied>
  isAllowed(decision: Allowed | Denied): decision is Allowed
  settle(
    decision: Allowed,
    outcome: { actualTokens: number; outcome: "ok" | "error"; latencyMs: number },
  ): Promise<Settled>
}

/** Thrown when the result's usage could not be read and no mapping was given; the turn keeps its estimate. */
export class UnreadableUsageError extends Error {
  constructor() {
    super(
      "meteredTurn could not read token usage from the result (OpenAI, Anthropic and Vercel AI SDK shapes are read); pass { usage: (result) => tokens }. The turn stays charged at its estimate.",
    )
    this.name = "UnreadableUsageError"
  }
}

export async function runMeteredTurn<Allowed, Denied, R, Settled>(
  steps: TurnSteps<Allowed, Denied, Settled>,
  run: (decision: Allowed) => Promise<R>,
  options: MeteredTurnOptions<R> = {},
): Promise<MeteredTurn<Allowed, Denied, R, Settled>> {
  const decision = await steps.consume()
  if (!steps.isAllowed(decision)) return { allowed: false, decision }
  const started = performance.now()
  let result: R
  try {
    result = await run(decision)
  } catch (error) {
    const latencyMs = Math.round(performance.now() - started)
    // The model call failed: refund the estimate, then let the caller's error through unchanged. A failed
    // refund must not hide the error that caused it.
    await steps.settle(decision, { actualTokens: 0, outcome: "error", latencyMs }).catch(() => undefined)
    throw error
  }
  const latencyMs = Math.round(performance.now() - started)
  const mapped = options.usage ? await options.usage(result) : await tokensUsedBy(result)
  if (mapped === undefined || !Number.isFinite(mapped) || mapped < 0) throw new UnreadableUsageError()
  const actualTokens = Math.round(mapped)
  const settlement = await steps.settle(decision, { actualTokens, outcome: "ok", latencyMs })
  return { allowed: true, decision, result, actualTokens, settlement }
}
