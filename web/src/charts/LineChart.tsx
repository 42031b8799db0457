/**
 * Lines over time, one per series, in hand-written SVG (no chart library: a few hundred bytes instead of
 * a few hundred kilobytes). Every chart carries its numbers as a table for screen readers and for copying.
 */
import { useId, useState } from "react"
import { formatCompact, formatInteger } from "../format.ts"
import { labelIndexes, niceMax, ticks } from "./scale.ts"
import { useWidth } from "./useWidth.ts"

export interface Series {
  key: string
  label: string
  color: string
  values: number[]
}

const HEIGHT = 240
const PAD = { top: 12, right: 12, bottom: 28, left: 52 }

export function LineChart({
  title,
  series,
  xLabels,
  unit,
  testId,
  partialFrom,
}: {
  title: string
  series: Series[]
  xLabels: string[]
  unit: string
  testId?: string
  /** Index of the first point of a day that is not over: from there the lines are dashed and shaded. */
  partialFrom?: number | undefined
}) {
  const id = useId()
  const [box, WIDTH] = useWidth<HTMLElement>(720)
  const [hover, setHover] = useState<number | null>(null)
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)))
  const innerW = WIDTH - PAD.left - PAD.right
  const innerH = HEIGHT - PAD.top - PAD.bottom
  const n = xLabels.length
  const x = (i: number) => PAD.left + (n <= 1 ? innerW / 2 : (innerW * i) / (n - 1))
  const y = (v: number) => PAD.top + innerH - (innerH * v) / max
  const labels = labelIndexes(n, Math.max(2, Math.min(8, Math.floor(innerW / 80))))
  const partial = partialFrom !== undefined && partialFrom >= 0 && partialFrom < n ? partialFrom : undefined
  return (
    <figure className="chart" data-testid={testId} ref={box}>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={`${id}-title`}>
        <title id={`${id}-title`}>{title}</title>
        {ticks(max).map((tick) => (
          <g key={tick}>
            <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(tick)} y2={y(tick)} className="grid" />
            <text x={PAD.left - 6} y={y(tick) + 4} textAnchor="end" className="axis">
              {formatCompact(tick)}
            </text>
          </g>
        ))}
        {labels.map((i) => (
          <text
            key={i}
            x={x(i)}
            y={HEIGHT - 8}
            textAnchor={i === 0 && n > 1 ? "start" : i === n - 1 && n > 1 ? "end" : "middle"}
            className="axis"
          >
            {xLabels[i]}
          </text>
        ))}
        {partial !== undefined ? (
          <g className="partial-zone" data-testid={testId ? `${testId}-partial` : undefined}>
            <rect
              x={partial === 0 ? PAD.left : (x(partial - 1) + x(partial)) / 2}
              y={PAD.top}
              width={WIDTH - PAD.right - (partial === 0 ? PAD.left : (x(partial - 1) + x(partial)) / 2)}
              height={innerH}
            />
            <text x={WIDTH - PAD.right - 4} y={PAD.top + 12} textAnchor="end" className="axis">
              partial
            </text>
          </g>
        ) : null}
        {series.map((s) => {
          const point = (v: number, i: number) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`
          const solid = partial === undefined ? s.values : s.values.slice(0, partial)
          const dashed = partial === undefined ? [] : s.values.slice(Math.max(0, partial - 1))
          const offset = partial === undefined ? 0 : Math.max(0, partial - 1)
          return (
            <g key={s.key} data-series={s.key}>
              <polyline
                points={solid.map(point).join(" ")}
                fill="none"
                stroke={s.color}
                strokeWidth={2}
                strokeLinejoin="round"
              />
              {dashed.length > 0 ? (
                <polyline
                  points={dashed.map((v, i) => point(v, i + offset)).join(" ")}
                  fill="none"
                  stroke={s.color}
                  strokeWidth={2}
                  strokeDasharray="4 4"
                  strokeLinejoin="round"
                  className="partial-line"
                />
              ) : null}
            </g>
          )
        })}
        {hover !== null ? (
          <g>
            <line x1={x(hover)} x2={x(hover)} y1={PAD.top} y2={PAD.top + innerH} className="cursor" />
            {series.map((s) => (
              <circle key={s.key} cx={x(hover)} cy={y(s.values[hover] ?? 0)} r={3.5} fill={s.color} />
            ))}
          </g>
        ) : null}
        {xLabels.map((label, i) => (
          <rect
            key={label}
            x={x(i) - innerW / Math.max(1, n - 1) / 2}
            y={PAD.top}
            width={innerW / Math.max(1, n - 1)}
            height={innerH}
            fill="transparent"
            onPointerEnter={() => setHover(i)}
            onPointerLeave={() => setHover((current) => (current === i ? null : current))}
          >
            <title>
              {`${label}: ${series.map((s) => `${s.label} ${formatInteger(s.values[i] ?? 0)}`).join(", ")} ${unit}`}
            </title>
          </rect>
        ))}
      </svg>
      {series.length > 1 ? (
        <figcaption className="legend">
          {series.map((s) => (
            <span key={s.key} className="legend-item">
              <span className="swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}
            </span>
          ))}
        </figcaption>
      ) : null}
      <DataTable
        caption={title}
        columns={series.map((s) => ({ key: s.key, label: s.label }))}
        rows={xLabels.map((label, i) => ({ label, values: series.map((s) => s.values[i] ?? 0) }))}
      />
    </figure>
  )
}

/** The chart's numbers as a table, folded away under "Show numbers". */
export function DataTable({
  caption,
  columns,
  rows,
}: {
  caption: string
  columns: { key: string; label: string }[]
  rows: { label: string; values: number[] }[]
}) {
  return (
    <details className="data-table">
      <summary>Show numbers</summary>
      <div className="table-scroll">
        <table>
          <caption className="sr-only">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">{""}</th>
              {columns.map((c) => (
                <th key={c.key} scope="col" className="num" data-column={c.key}>
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.label}>
                <th scope="row">{row.label}</th>
                {row.values.map((v, i) => (
                  <td key={columns[i]?.key ?? i} className="num">
                    {formatInteger(v)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  )
}
