/**
 * Token estimates from a real BPE tokenizer (gpt-tokenizer, the one the dashboard's playground uses),
 * offline, so callers stop guessing `estimatedTokens`. Each encoding's ranks (a few MB) are loaded on its
 * first use, synchronously, and kept: importing the library costs nothing until an estimate is asked for.
 * Cost per kB of text: bench/RESULTS.md ("estimateTokens").
 */
import { createRequire } from "node:module"
import { ValidationError } from "../core/errors.js"

/** The encodings offered: o200k_base (GPT-4o, GPT-4.1, GPT-5, o-series) and the older OpenAI families. */
export const TOKEN_ENCODINGS = ["o200k_base", "cl100k_base", "p50k_base", "r50k_base"] as const
export type TokenEncoding = (typeof TOKEN_ENCODINGS)[number]

export interface EstimateTokensOptions {
  /** Default o200k_base. Other vendors' models tokenize differently: treat the count as an estimate. */
  encoding?: TokenEncoding
}

type CountTokens = (text: string, options: { disallowedSpecial: Set<string> }) => number

const require = createRequire(import.meta.url)
const counters = new Map<TokenEncoding, CountTokens>()
// User text may contain "<|endoftext|>" and the like: counted as plain text, never refused.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() }

function counter(encoding: TokenEncoding): CountTokens {
  let count = counters.get(encoding)
  if (!count) {
    if (!(TOKEN_ENCODINGS as readonly string[]).includes(encoding)) {
      throw new ValidationError("encoding", `must be one of ${TOKEN_ENCODINGS.join(", ")}`)
    }
    count = (require(`gpt-tokenizer/encoding/${encoding}`) as { countTokens: CountTokens }).countTokens
    counters.set(encoding, count)
  }
  return count
}

/**
 * The number of tokens `text` encodes to. Add the model's expected answer length to get a turn's
 * `estimatedTokens`; settle with the actual usage afterwards.
 * @example
 * const estimatedTokens = estimateTokens(message) + 400 // the prompt's tokens, plus room for the answer
 * await meter.validateAndConsumeTokens({ ...turn, estimatedTokens, message })
 */
export function estimateTokens(text: string, options: EstimateTokensOptions = {}): number {
  if (typeof text !== "string") throw new ValidationError("text", "must be a string")
  return counter(options.encoding ?? "o200k_base")(text, PLAIN_TEXT)
}
