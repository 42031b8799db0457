/** Denial reasons in words, for the channel page and the playground. */
export const REASON_TEXT: Readonly<Record<string, string>> = {
  subscription_not_found: "No such subscription",
  subscription_inactive: "Subscription suspended or cancelled",
  channel_not_in_plan: "Channel not in the plan",
  channel_disabled: "Channel switched off",
  message_too_long: "Message too long",
  turn_too_large: "Turn over the tokens-per-minute limit",
  rate_limited: "Rate limit reached",
  quota_exceeded: "Quota exhausted",
}
