/**
 * The tokens an LLM call really used, read from the usage its SDK reports, so that a turn is settled with
 * the truth. Pure: no I/O. Shapes understood, on the result itself or on its `usage` (or, for the Vercel AI
 * SDK, its `totalUsage`, which sums a multi-step call's steps):
 *
 * - OpenAI Chat Completions: `usage.prompt_tokens` + `usage.completion_tokens`
 * - Anthropic Messages and OpenAI Responses: `usage.input_tokens` + `usage.output_tokens`, plus Anthropic's
 *   `cache_creation_input_tokens` and `cache_read_input_tokens` (input the model processed, which
 *   `input_tokens` leaves out)
 * - Vercel AI SDK 5+: `usage.inputTokens` + `usage.outputTokens` (or `totalTokens`); 4: `promptTokens` +
 *   `completionTokens`
 *
 * Anything else answers undefined: the caller maps its result to tokens itself.
 */

type Json = Record<string, unknown>

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined
}

function sum(usage: Json, input: string[], output: string): number | undefined {
  const inputs = input.map((name) => count(usage[name]))
  const out = count(usage[output])
  if (inputs[0] === undefined || out === undefined) return undefined
  return inputs.reduce<number>((total, value) => total + (value ?? 0), 0) + out
}

/** Reads one usage object in any of the shapes above. */
export function tokensOfUsage(usage: unknown): number | undefined {
  if (!usage || typeof usage !== "object") return undefined
  const u = usage as Json
  return (
    sum(u, ["prompt_tokens"], "completion_tokens") ??
    sum(u, ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"], "output_tokens") ??
    sum(u, ["inputTokens"], "outputTokens") ??
    sum(u, ["promptTokens"], "completionTokens") ??
    count(u.totalTokens) ??
    count(u.total_tokens)
  )
}

/**
 * The tokens an LLM call's result reports: its `totalUsage` or `usage` (awaited when the SDK gives a
 * promise, as the Vercel AI SDK's `streamText` does), or the result itself when it is a usage object.
 * @example
 * await tokensUsedBy({ usage: { prompt_tokens: 120, completion_tokens: 80 } }) // 200
 */
export async function tokensUsedBy(result: unknown): Promise<number | undefined> {
  if (!result || typeof result !== "object") return undefined
  const r = result as Json
  for (const candidate of [r.totalUsage, r.usage]) {
    const usage = isThenable(candidate) ? await candidate : candidate
    const tokens = tokensOfUsage(usage)
    if (tokens !== undefined) return tokens
  }
  return tokensOfUsage(r)
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    !!value &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as Json).then === "function"
  )
}
