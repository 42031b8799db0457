/** Vertical bars, one per bucket (e.g. 24 hours of the day), in hand-written SVG, with their table. */
import { useId } from "react"
import { formatCompact, formatInteger } from "../format.ts"
import { DataTable } from "./LineChart.tsx"
import { labelIndexes, niceMax, ticks } from "./scale.ts"
import { useWidth } from "./useWidth.ts"

const HEIGHT = 220
const PAD = { top: 12, right: 8, bottom: 28, left: 52 }

export function BarChart({
  title,
  labels,
  values,
  color,
  unit,
  highlight,
  testId,
}: {
  title: string
  labels: string[]
  values: number[]
  color: string
  unit: string
  /** Index of a bar to emphasise (e.g. the peak hour). */
  highlight?: number | null
  testId?: string
}) {
  const id = useId()
  const [box, WIDTH] = useWidth<HTMLElement>(720)
  const max = niceMax(Math.max(0, ...values))
  const innerW = WIDTH - PAD.left - PAD.right
  const innerH = HEIGHT - PAD.top - PAD.bottom
  const slot = innerW / Math.max(1, values.length)
  const y = (v: number) => PAD.top + innerH - (innerH * v) / max
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
        {values.map((v, i) => (
          <rect
            key={labels[i] ?? i}
            x={PAD.left + i * slot + slot * 0.15}
            y={y(v)}
            width={slot * 0.7}
            height={Math.max(0, PAD.top + innerH - y(v))}
            fill={color}
            opacity={highlight === undefined || highlight === null || highlight === i ? 1 : 0.55}
            rx={2}
          >
            <title>{`${labels[i]}: ${formatInteger(v)} ${unit}`}</title>
          </rect>
        ))}
        {labelIndexes(values.length, Math.max(2, Math.min(12, Math.floor(innerW / 56)))).map((i) => (
          <text
            key={i}
            x={PAD.left + i * slot + slot / 2}
            y={HEIGHT - 8}
            textAnchor="middle"
            className="axis"
          >
            {labels[i]}
          </text>
        ))}
      </svg>
      <DataTable
        caption={title}
        columns={[{ key: "value", label: unit }]}
        rows={labels.map((label, i) => ({ label, values: [values[i] ?? 0] }))}
      />
    </figure>
  )
}
