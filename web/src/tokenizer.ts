/**
 * Token counts from a real tokenizer: gpt-tokenizer's o200k_base (the GPT-4o family's encoding), entirely
 * offline. Its ranks weigh about a megabyte compressed, so the module is loaded on first use (the
 * playground), never with the rest of the dashboard.
 */
import { useEffect, useState } from "react"

export type CountTokens = (text: string) => number

let loading: Promise<CountTokens> | undefined

export function loadTokenizer(): Promise<CountTokens> {
  loading ??= import("gpt-tokenizer/encoding/o200k_base").then(
    (module) => (text: string) => module.countTokens(text),
  )
  return loading
}

export const TOKENIZER_NAME = "o200k_base (GPT-4o family)"

/** The tokenizer once loaded, or the error that stopped it loading. */
export function useTokenizer(): { count: CountTokens | null; error: string | null } {
  const [count, setCount] = useState<CountTokens | null>(null)
  const [error, setError] = useState<string | null>(null)
  useEffect(() => {
    let live = true
    loadTokenizer().then(
      (fn) => live && setCount(() => fn),
      (caught: unknown) => live && setError(caught instanceof Error ? caught.message : String(caught)),
    )
    return () => {
      live = false
    }
  }, [])
  return { count, error }
}
