/** A growth figure with its direction, for eyes (arrow, color) and for screen readers (words). */
import { formatGrowth } from "../format.ts"

export function Growth({
  percent,
  label = "vs previous period",
}: {
  percent: number | null
  label?: string
}) {
  const direction = percent === null ? "new" : percent > 0 ? "up" : percent < 0 ? "down" : "flat"
  const arrow = { up: "▲", down: "▼", flat: "▬", new: "✦" }[direction]
  return (
    <span className={`growth growth-${direction}`} data-growth={percent === null ? "null" : String(percent)}>
      <span aria-hidden="true">{arrow} </span>
      {formatGrowth(percent)}
      <span className="sr-only"> {percent === null ? "(no previous usage)" : label}</span>
    </span>
  )
}

export function TrendArrow({ direction }: { direction: "increasing" | "decreasing" | "stable" }) {
  const arrow = { increasing: "↗", decreasing: "↘", stable: "→" }[direction]
  return (
    <span className={`trend trend-${direction}`} data-trend={direction}>
      <span aria-hidden="true">{arrow} </span>
      {direction}
    </span>
  )
}
