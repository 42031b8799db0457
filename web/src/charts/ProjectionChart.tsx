/**
 * Projected period totals as horizontal bars, one row each (the total first, then the channels): the part
 * already used, solid; the forecast for the rest of the period, pale; the 95% prediction interval as a
 * whisker; and the quota as a dashed line across the total's row. Hand-written SVG with its table.
 */
import { useId } from "react"
import { formatCompact, formatInteger } from "../format.ts"
import { DataTable } from "./LineChart.tsx"
import { niceMax, ticks } from "./scale.ts"
import { useWidth } from "./useWidth.ts"

export interface ProjectionRow {
  key: string
  label: string
  color: string
  used: number
  projected: number
  lower: number
  upper: number
}

const ROW = 34
const PAD = { top: 8, right: 16, bottom: 26 }

export function ProjectionChart({
  title,
  rows,
  quota,
  testId,
}: {
  title: string
  rows: ProjectionRow[]
  /** The period's token limit, drawn on the first row (the total). */
  quota: number
  testId?: string
}) {
  const id = useId()
  const [box, width] = useWidth<HTMLElement>(720)
  // Room for the longest label at the axis font (11px, ~6.4px a character), never past 40% of the box.
  const longest = Math.max(0, ...rows.map((r) => r.label.length))
  const labelWidth = Math.round(Math.min(width * 0.4, Math.max(48, longest * 6.4 + 14)))
  const max = niceMax(Math.max(quota, ...rows.map((r) => Math.max(r.upper, r.projected))))
  const innerW = Math.max(40, width - labelWidth - PAD.right)
  const height = PAD.top + rows.length * ROW + PAD.bottom
  const x = (v: number) => labelWidth + (innerW * Math.max(0, v)) / max
  const bottom = PAD.top + rows.length * ROW
  return (
    <figure className="chart" data-testid={testId} ref={box}>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${id}-title`}>
        <title id={`${id}-title`}>{title}</title>
        {ticks(max).map((tick) => (
          <g key={tick}>
            <line x1={x(tick)} x2={x(tick)} y1={PAD.top} y2={bottom} className="grid" />
            <text x={x(tick)} y={height - 8} textAnchor="middle" className="axis">
              {formatCompact(tick)}
            </text>
          </g>
        ))}
        {rows.map((row, i) => {
          const top = PAD.top + i * ROW
          const mid = top + ROW / 2
          return (
            <g key={row.key} data-row={row.key}>
              <text x={labelWidth - 8} y={mid + 4} textAnchor="end" className="axis projection-label">
                {row.label}
              </text>
              <rect
                x={x(0)}
                y={top + 8}
                width={Math.max(0, x(row.projected) - x(0))}
                height={ROW - 16}
                fill={row.color}
                opacity={0.3}
                rx={2}
              >
                <title>{`${row.label}: ${formatInteger(row.projected)} tokens projected`}</title>
              </rect>
              <rect
                x={x(0)}
                y={top + 8}
                width={Math.max(0, x(row.used) - x(0))}
                height={ROW - 16}
                fill={row.color}
                rx={2}
              >
                <title>{`${row.label}: ${formatInteger(row.used)} tokens used so far`}</title>
              </rect>
              <g className="whisker">
                <title>{`${row.label}: 95% interval ${formatInteger(row.lower)} to ${formatInteger(row.upper)}`}</title>
                <line x1={x(row.lower)} x2={x(row.upper)} y1={mid} y2={mid} />
                <line x1={x(row.lower)} x2={x(row.lower)} y1={mid - 6} y2={mid + 6} />
                <line x1={x(row.upper)} x2={x(row.upper)} y1={mid - 6} y2={mid + 6} />
              </g>
            </g>
          )
        })}
        {quota > 0 && rows.length > 0 ? (
          <g className="quota-line">
            <title>{`Quota: ${formatInteger(quota)} tokens`}</title>
            <line x1={x(quota)} x2={x(quota)} y1={PAD.top + 2} y2={PAD.top + ROW - 2} />
          </g>
        ) : null}
      </svg>
      <ul className="legend projection-legend">
        <li className="legend-item">
          <span className="key key-used" aria-hidden="true" />
          used so far
        </li>
        <li className="legend-item">
          <span className="key key-forecast" aria-hidden="true" />
          forecast to the period's end
        </li>
        <li className="legend-item">
          <span className="key key-interval" aria-hidden="true" />
          95% prediction interval
        </li>
        <li className="legend-item">
          <span className="key key-quota" aria-hidden="true" />
          quota
        </li>
      </ul>
      <DataTable
        caption={title}
        columns={[
          { key: "used", label: "Used" },
          { key: "projected", label: "Projected" },
          { key: "lower", label: "Lower (95%)" },
          { key: "upper", label: "Upper (95%)" },
        ]}
        rows={rows.map((r) => ({ label: r.label, values: [r.used, r.projected, r.lower, r.upper] }))}
      />
    </figure>
  )
}
