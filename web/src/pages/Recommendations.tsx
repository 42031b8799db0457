/**
 * Channel recommendations beside the insights: the channels ranked by value per 1,000 billed tokens with
 * their action, conversion rate and its 95% interval, and the sentence that explains each; and a lookup of
 * one person's preferred channel by a user identifier or a person id.
 */
import { type FormEvent, useState } from "react"
import type { RecommendationsBody } from "../api/journey-types.ts"
import { ChannelName } from "../channels.tsx"
import { formatDecimal, formatInteger, formatPercent } from "../format.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { ScrollableTable } from "../ui/ScrollableTable.tsx"

const ACTION_TEXT: Record<RecommendationsBody["channels"][number]["action"], string> = {
  steer_to: "Steer traffic to",
  steer_away: "Steer traffic away",
  keep: "Keep",
  gather_evidence: "Gather evidence",
}

const rate = (value: number | null) => (value === null ? "–" : formatPercent(Math.round(value * 1000) / 10))

function recommendationsUrl(subscriptionId: string, person?: { by: string; value: string }): string {
  const base = `/api/onboarding/analytics/${encodeURIComponent(subscriptionId)}/recommendations`
  return person ? `${base}?${person.by}=${encodeURIComponent(person.value)}` : base
}

export function RecommendationsSection() {
  const { api, subscription } = useWorkspace()
  const [state, retry] = useAsync(
    () => api.get<RecommendationsBody>(recommendationsUrl(subscription.id)),
    subscription.id,
  )
  return (
    <section className="panel" aria-labelledby="recommendations-title">
      <div className="panel-head">
        <h2 id="recommendations-title">Channel recommendations</h2>
        <span className="muted small">ranked by value per 1,000 billed tokens, last 30 days</span>
      </div>
      <AsyncView state={state} retry={retry} label="Loading recommendations…">
        {(answer) =>
          answer.channels.length === 0 ? (
            <Empty title="No channel activity">No allowed turn in the last 30 days.</Empty>
          ) : (
            <ScrollableTable columns={7} testId="recommendations">
              <table>
                <thead>
                  <tr>
                    <th>#</th>
                    <th>Channel</th>
                    <th>Action</th>
                    <th>Conversion rate (95% interval)</th>
                    <th>Value / 1k tokens</th>
                    <th>Cost / conversion</th>
                    <th>Why</th>
                  </tr>
                </thead>
                <tbody>
                  {answer.channels.map((c) => (
                    <tr key={c.channel} data-channel={c.channel} data-action={c.action}>
                      <td>{c.rank}</td>
                      <td>
                        <ChannelName channel={c.channel} />
                      </td>
                      <td>{ACTION_TEXT[c.action]}</td>
                      <td>
                        {rate(c.conversion_rate)}
                        {c.conversion_rate_interval
                          ? ` (${rate(c.conversion_rate_interval.low)} to ${rate(c.conversion_rate_interval.high)})`
                          : ""}
                      </td>
                      <td className="num">
                        {c.value_per_1k_tokens === null
                          ? "–"
                          : `${formatDecimal(c.value_per_1k_tokens)} ${answer.currency}`}
                      </td>
                      <td className="num">
                        {c.cost_per_conversion === null
                          ? "–"
                          : `${formatDecimal(c.cost_per_conversion)} ${answer.currency}`}
                      </td>
                      <td className="small">{c.sentence}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollableTable>
          )
        }
      </AsyncView>
      <PersonLookup />
    </section>
  )
}

/** One person's preferred channel, looked up on demand. */
function PersonLookup() {
  const { api, subscription } = useWorkspace()
  const [by, setBy] = useState<"user_identifier" | "person_id">("user_identifier")
  const [value, setValue] = useState("")
  const [asked, setAsked] = useState<{ by: string; value: string } | null>(null)
  const submit = (event: FormEvent) => {
    event.preventDefault()
    if (value.trim() !== "") setAsked({ by, value: value.trim() })
  }
  return (
    <form className="person-lookup" onSubmit={submit} aria-label="A person's preferred channel">
      <h3>A person's preferred channel</h3>
      <div className="row">
        <select value={by} onChange={(e) => setBy(e.target.value as typeof by)} aria-label="Look up by">
          <option value="user_identifier">User identifier</option>
          <option value="person_id">Person id</option>
        </select>
        <input
          value={value}
          onChange={(e) => setValue(e.target.value)}
          aria-label="Identifier or person id"
        />
        <button type="submit">Look up</button>
      </div>
      {asked ? <PersonAnswer subscriptionId={subscription.id} asked={asked} api={api} /> : null}
    </form>
  )
}

function PersonAnswer({
  subscriptionId,
  asked,
  api,
}: {
  subscriptionId: string
  asked: { by: string; value: string }
  api: ReturnType<typeof useWorkspace>["api"]
}) {
  const [state, retry] = useAsync(
    () => api.get<RecommendationsBody>(recommendationsUrl(subscriptionId, asked)),
    `${subscriptionId}:${asked.by}:${asked.value}`,
  )
  return (
    <AsyncView state={state} retry={retry} label="Looking up…">
      {(answer) =>
        answer.person === null ? null : (
          <div data-testid="person-recommendation">
            <p>{answer.person.sentence}</p>
            {answer.person.channels.length > 0 ? (
              <ul className="small">
                {answer.person.channels.map((c) => (
                  <li key={c.channel}>
                    <ChannelName channel={c.channel} />: {formatInteger(c.sessions)} sessions,{" "}
                    {formatInteger(c.turns)} turns, {formatInteger(c.conversions)} conversions
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
        )
      }
    </AsyncView>
  )
}
