/**
 * Hour of day x channel: each cell's color strength is its tokens against the busiest cell, so peak hours
 * stand out across channels. A real table: readable by screen readers, scrollable on a phone.
 */
import { formatHour, formatInteger } from "../format.ts"

export interface HeatmapRow {
  key: string
  label: string
  color: string
  values: number[]
  peak: number | null
}

export function Heatmap({ title, rows, unit }: { title: string; rows: HeatmapRow[]; unit: string }) {
  const max = Math.max(1, ...rows.flatMap((r) => r.values))
  const hours = Array.from({ length: 24 }, (_, h) => h)
  return (
    <div className="table-scroll">
      <table className="heatmap" data-testid="heatmap">
        <caption className="sr-only">{title}</caption>
        <colgroup>
          <col className="heatmap-label" />
        </colgroup>
        <thead>
          <tr>
            <th scope="col">
              <span className="sr-only">Channel</span>
            </th>
            {hours.map((h) => (
              <th key={h} scope="col" className="hour">
                <span aria-hidden="true">{h % 3 === 0 ? String(h).padStart(2, "0") : ""}</span>
                <span className="sr-only">{formatHour(h)}</span>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key} data-channel={row.key}>
              <th scope="row">{row.label}</th>
              {hours.map((h) => {
                const value = row.values[h] ?? 0
                const strength = value / max
                return (
                  <td
                    key={h}
                    data-hour={h}
                    data-value={value}
                    className={row.peak === h ? "peak" : undefined}
                    title={`${row.label} ${formatHour(h)}: ${formatInteger(value)} ${unit}`}
                    style={{
                      background: value > 0 ? row.color : undefined,
                      opacity: value > 0 ? 0.12 + 0.88 * strength : undefined,
                    }}
                  >
                    <span className="sr-only">{formatInteger(value)}</span>
                  </td>
                )
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
