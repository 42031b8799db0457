/**
 * How people move between channels: a flow chart of channel transitions (each channel on the left sends a
 * band to the channel of the next session on the right, as wide as the number of transitions), the top
 * paths, the cross-channel share, and the first and last touch of converters. Every figure is also a table.
 */
import "../journeys.css"
import type { JourneysBody, Transition } from "../api/journey-types.ts"
import { ChannelName, channelColor, useChannelLabel } from "../channels.tsx"
import { formatInteger, formatPercent, formatSeconds } from "../format.ts"
import { useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"
import { AsyncView, Empty, useAsync } from "../ui/async.tsx"
import { DownloadCsv } from "../ui/DownloadCsv.tsx"
import { ScrollableTable } from "../ui/ScrollableTable.tsx"

const percent = (share: number | null) =>
  share === null ? "–" : formatPercent(Math.round(share * 1000) / 10)

/** A Sankey-style two-column flow: sources left, destinations right, band width by count. */
export function TransitionFlow({ transitions }: { transitions: Transition[] }) {
  const label = useChannelLabel()
  const sources = [...new Set(transitions.map((t) => t.from))]
  const targets = [...new Set(transitions.map((t) => t.to))]
  const total = transitions.reduce((sum, t) => sum + t.count, 0)
  // Room for the longest channel name beside its column (7.5 units a character of the 13 px labels), so a
  // name like "Instagram Direct" is never cut at the chart's edge; the bands get the 120 units between.
  const nodeWidth = 10
  const labelRoom = 8 + 7.5 * Math.max(0, ...[...sources, ...targets].map((name) => label(name).length))
  const x0 = labelRoom
  const x1 = x0 + nodeWidth + 120
  const width = x1 + nodeWidth + labelRoom
  const height = Math.max(160, 36 * Math.max(sources.length, targets.length) + 24)
  const usable = height - 12 * (Math.max(sources.length, targets.length) + 1)
  const scale = total > 0 ? usable / total : 0
  const stack = (names: string[], key: "from" | "to") => {
    const out = new Map<string, { y: number; size: number; used: number }>()
    let y = 12
    for (const name of names) {
      const size = transitions.filter((t) => t[key] === name).reduce((sum, t) => sum + t.count, 0) * scale
      out.set(name, { y, size, used: 0 })
      y += size + 12
    }
    return out
  }
  const left = stack(sources, "from")
  const right = stack(targets, "to")
  return (
    <svg
      className="flow"
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label="Channel transitions: each band goes from a session's channel to the next session's channel"
    >
      {transitions.map((t) => {
        const a = left.get(t.from)
        const b = right.get(t.to)
        if (!a || !b) return null
        const w = t.count * scale
        const ya = a.y + a.used + w / 2
        const yb = b.y + b.used + w / 2
        a.used += w
        b.used += w
        const mid = (x0 + nodeWidth + x1) / 2
        return (
          <path
            key={`${t.from}-${t.to}`}
            className="flow-link"
            d={`M ${x0 + nodeWidth} ${ya} C ${mid} ${ya}, ${mid} ${yb}, ${x1} ${yb}`}
            stroke={channelColor(t.from)}
            strokeWidth={Math.max(1, w)}
          >
            <title>{`${label(t.from)} → ${label(t.to)}: ${formatInteger(t.count)}`}</title>
          </path>
        )
      })}
      {[...left].map(([name, node]) => (
        <g key={`l-${name}`}>
          <rect
            x={x0}
            y={node.y}
            width={nodeWidth}
            height={Math.max(2, node.size)}
            fill={channelColor(name)}
          />
          <text x={x0 - 6} y={node.y + node.size / 2 + 4} textAnchor="end">
            {label(name)}
          </text>
        </g>
      ))}
      {[...right].map(([name, node]) => (
        <g key={`r-${name}`}>
          <rect
            x={x1}
            y={node.y}
            width={nodeWidth}
            height={Math.max(2, node.size)}
            fill={channelColor(name)}
          />
          <text x={x1 + nodeWidth + 6} y={node.y + node.size / 2 + 4}>
            {label(name)}
          </text>
        </g>
      ))}
    </svg>
  )
}

function Touches({ title, touches }: { title: string; touches: JourneysBody["first_touch"] }) {
  return (
    <div>
      <h3>{title}</h3>
      {touches.length === 0 ? (
        <p className="muted">No converted people in this period.</p>
      ) : (
        <ul>
          {touches.map((touch) => (
            <li key={touch.channel}>
              <ChannelName channel={touch.channel} />: {formatInteger(touch.people)}
            </li>
          ))}
        </ul>
      )}
    </div>
  )
}

function JourneysView({ data }: { data: JourneysBody }) {
  const { subscription } = useWorkspace()
  const path = `/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/journeys`
  const period = { from: data.period.from, to: data.period.to }
  if (data.people === 0)
    return (
      <Empty title="No journeys in this period">
        Journeys count allowed turns that carry a user_identifier. Link a person's identifiers with PUT
        /api/subscriptions/&#123;id&#125;/people/&#123;person_id&#125;.
      </Empty>
    )
  return (
    <>
      <section className="panel figures" aria-label="Journey figures">
        <div>
          <div className="muted">Cross-channel share</div>
          <p className="big-figure" data-testid="cross-channel-share">
            {percent(data.cross_channel_share)}
          </p>
          <div className="muted small">of people used 2 or more channels</div>
        </div>
        <div>
          <div className="muted">People</div>
          <p className="big-figure">{formatInteger(data.people)}</p>
        </div>
        <div>
          <div className="muted">Sessions</div>
          <p className="big-figure">{formatInteger(data.sessions)}</p>
          <div className="muted small">a new one after {data.session_gap_minutes} min idle</div>
        </div>
      </section>
      <section className="panel">
        <div className="toolbar">
          <h2>Where people go next</h2>
          <DownloadCsv path={path} query={{ ...period, table: "transitions" }} />
        </div>
        {data.transitions.length === 0 ? (
          <p className="muted">Nobody changed channel in this period.</p>
        ) : (
          <>
            <TransitionFlow transitions={data.transitions} />
            <ScrollableTable columns={4} testId="transitions-scroll">
              <table data-testid="transitions">
                <thead>
                  <tr>
                    <th>From</th>
                    <th>To</th>
                    <th>Times</th>
                    <th>Median gap</th>
                  </tr>
                </thead>
                <tbody>
                  {data.transitions.map((t) => (
                    <tr key={`${t.from}-${t.to}`}>
                      <td>
                        <ChannelName channel={t.from} />
                      </td>
                      <td>
                        <ChannelName channel={t.to} />
                      </td>
                      <td>{formatInteger(t.count)}</td>
                      <td>{formatSeconds(t.median_gap_seconds * 1000)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollableTable>
          </>
        )}
      </section>
      <section className="panel">
        <div className="toolbar">
          <h2>Top paths</h2>
          <DownloadCsv path={path} query={{ ...period, table: "top_paths" }} />
        </div>
        <ScrollableTable columns={4} testId="top-paths-scroll">
          <table data-testid="top-paths">
            <thead>
              <tr>
                <th>Path</th>
                <th>People</th>
                <th>Share</th>
                <th>Conversion</th>
              </tr>
            </thead>
            <tbody>
              {data.top_paths.map((path) => (
                <tr key={path.channels.join(">")}>
                  <td>
                    <span className="path-steps">
                      {path.channels.map((channel, i) => (
                        <span key={`${channel}-${i.toString()}`}>
                          {i > 0 ? "→ " : ""}
                          <ChannelName channel={channel} />
                        </span>
                      ))}
                    </span>
                  </td>
                  <td>{formatInteger(path.people)}</td>
                  <td>{percent(path.share)}</td>
                  <td>{percent(path.conversion_rate)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollableTable>
      </section>
      {data.converted_people !== null ? (
        <section className="panel figures">
          <Touches title="First touch of converters" touches={data.first_touch} />
          <Touches title="Last touch of converters" touches={data.last_touch} />
        </section>
      ) : null}
    </>
  )
}

export function Journeys() {
  const { api, subscription } = useWorkspace()
  const { query } = useLocation()
  const from = query.get("from") ?? undefined
  const to = query.get("to") ?? undefined
  const [state, retry] = useAsync(
    () =>
      api.get<JourneysBody>(`/api/onboarding/analytics/${encodeURIComponent(subscription.id)}/journeys`, {
        from,
        to,
      }),
    `${subscription.id}:${from}:${to}`,
  )
  return (
    <>
      <section className="panel">
        <h1>Journeys</h1>
        <p className="muted">
          How people move between channels. A session is a person's turns on one channel sharing a session id,
          or less than 30 minutes apart.
        </p>
      </section>
      <AsyncView state={state} retry={retry} label="Loading journeys…">
        {(data) => <JourneysView data={data} />}
      </AsyncView>
    </>
  )
}
