/**
 * Hour of day x channel on one shared colour scale: every cell's shade is its tokens against the busiest
 * cell of the whole table, in one hue, so a quiet channel reads as quiet rather than vanishing in its own
 * colour, and the legend says what a shade means. A real table: readable by screen readers; on a phone the
 * 24 hours fit the width.
 */
import { formatCompact, formatHour, formatInteger } from "../format.ts"
import { niceMax, ticks } from "./scale.ts"

export interface HeatmapRow {
  key: string
  label: string
  color: string
  values: number[]
  peak: number | null
}

const LIGHT = [224, 231, 255] as const
const DARK = [30, 58, 138] as const

/** The shade of a value from 0 to `max` on the one scale: light blue to dark blue; empty cells stay grey. */
export function heatColor(value: number, max: number): string | undefined {
  if (!(value > 0) || !(max > 0)) return undefined
  const t = Math.min(1, value / max)
  const mix = LIGHT.map((light, i) => Math.round(light + ((DARK[i] ?? light) - light) * t))
  return `rgb(${mix.join(", ")})`
}

export function Heatmap({ title, rows, unit }: { title: string; rows: HeatmapRow[]; unit: string }) {
  const busiest = Math.max(0, ...rows.flatMap((r) => r.values))
  const max = niceMax(busiest)
  const hours = Array.from({ length: 24 }, (_, h) => h)
  return (
    <div className="heatmap-wrap">
      <div className="table-scroll">
        <table className="heatmap" data-testid="heatmap" data-scale-max={max}>
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
                <th key={h} scope="col" className={`hour${h % 6 === 0 ? " hour-major" : ""}`}>
                  <span aria-hidden="true">{h % 3 === 0 ? String(h).padStart(2, "0") : ""}</span>
                  <span className="sr-only">{formatHour(h)}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.key} data-channel={row.key}>
                <th scope="row">
                  <span className="swatch" style={{ background: row.color }} aria-hidden="true" />
                  {row.label}
                </th>
                {hours.map((h) => {
                  const value = row.values[h] ?? 0
                  return (
                    <td
                      key={h}
                      data-hour={h}
                      data-value={value}
                      className={row.peak === h ? "peak" : undefined}
                      title={`${row.label} ${formatHour(h)}: ${formatInteger(value)} ${unit}`}
                      style={{ background: heatColor(value, max) }}
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
      <figure
        className="heat-legend"
        data-testid="heatmap-legend"
        aria-label={`Colour scale, ${unit} per hour`}
      >
        <div
          className="heat-legend-bar"
          aria-hidden="true"
          style={{ background: `linear-gradient(to right, ${heatColor(1e-9, 1)}, ${heatColor(1, 1)})` }}
        />
        <div className="heat-legend-ticks">
          {ticks(max).map((tick) => (
            <span key={tick} style={{ left: `${(100 * tick) / max}%` }}>
              {formatCompact(tick)}
            </span>
          ))}
        </div>
        <figcaption className="muted small">
          {unit} in the hour, the same scale for every channel; grey: none
        </figcaption>
      </figure>
    </div>
  )
}
