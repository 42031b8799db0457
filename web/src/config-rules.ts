/**
 * The channel settings form's fields and their rules in plain words: what the Configuration page checks
 * before sending, and says when the API refuses a value.
 */
export const NUMBER_FIELDS = [
  { key: "requests_per_minute", label: "Requests per minute", hint: "turns in any rolling minute" },
  { key: "tokens_per_minute", label: "Tokens per minute", hint: "estimated tokens in any rolling minute" },
  { key: "max_message_length", label: "Max message length", hint: "characters (Unicode code points)" },
  { key: "token_multiplier", label: "Token multiplier", hint: "0.01–10, two decimals" },
  { key: "priority", label: "Priority", hint: "1 (lowest) – 10 (highest)" },
] as const

export type NumberField = (typeof NUMBER_FIELDS)[number]["key"]

/**
 * Each field's rule, as the API applies it (src/core/channels.ts CHANNEL_SETTING_BOUNDS; a unit test keeps
 * the two equal): the range, and whole numbers or two decimals.
 */
export const FIELD_RULES: Readonly<Record<NumberField, { min: number; max: number; decimals: 0 | 2 }>> = {
  requests_per_minute: { min: 0, max: 1_000_000, decimals: 0 },
  tokens_per_minute: { min: 0, max: 1_000_000_000, decimals: 0 },
  max_message_length: { min: 1, max: 1_000_000, decimals: 0 },
  token_multiplier: { min: 0.01, max: 10, decimals: 2 },
  priority: { min: 1, max: 10, decimals: 0 },
}

/** The rule of a field in plain words, with what was typed when it breaks it; null when the value is fine. */
export function plainFieldError(field: NumberField, text: string): string | null {
  const rule = FIELD_RULES[field]
  const label = NUMBER_FIELDS.find((f) => f.key === field)?.label ?? field
  const range = `from ${rule.min.toLocaleString("en-US")} to ${rule.max.toLocaleString("en-US")}`
  const shape =
    rule.decimals === 0
      ? `${label} must be a whole number ${range}`
      : `${label} must be a number ${range} with at most two decimals, like 1.25`
  const typed = text.trim()
  if (typed === "") return `${shape}; it is empty.`
  if (!/^-?\d+(\.\d+)?$/.test(typed)) return `${shape}; “${typed}” is not a number.`
  const value = Number(typed)
  const decimals = typed.split(".")[1]?.length ?? 0
  if (decimals > rule.decimals) {
    return rule.decimals === 0
      ? `${shape}; ${typed} has decimals.`
      : `${shape}; ${typed} has ${decimals} decimals (round it to ${value.toFixed(2)}).`
  }
  if (value < rule.min) return `${shape}; ${typed} is below ${rule.min.toLocaleString("en-US")}.`
  if (value > rule.max) return `${shape}; ${typed} is above ${rule.max.toLocaleString("en-US")}.`
  return null
}
