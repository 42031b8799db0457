/**
 * A wide table that scrolls sideways inside its panel rather than widening the page, and says so: while
 * columns are out of view it shows "Scroll sideways" with how many there are, and shadows at the edges
 * that have more. Nothing shows when the table fits.
 */
import { type ReactNode, useLayoutEffect, useRef, useState } from "react"

export function ScrollableTable({
  children,
  columns,
  testId,
}: {
  children: ReactNode
  /** How many columns the table has, for the hint. */
  columns?: number
  testId?: string
}) {
  const ref = useRef<HTMLDivElement | null>(null)
  const [edges, setEdges] = useState({ left: false, right: false })
  useLayoutEffect(() => {
    const element = ref.current
    if (!element) return
    const measure = () => {
      const right = element.scrollLeft + element.clientWidth < element.scrollWidth - 1
      const left = element.scrollLeft > 1
      setEdges((current) => (current.left === left && current.right === right ? current : { left, right }))
    }
    measure()
    const observer = new ResizeObserver(measure)
    observer.observe(element)
    element.addEventListener("scroll", measure, { passive: true })
    return () => {
      observer.disconnect()
      element.removeEventListener("scroll", measure)
    }
  }, [])
  const overflowing = edges.left || edges.right
  return (
    <div
      className={`scrollable${edges.left ? " more-left" : ""}${edges.right ? " more-right" : ""}`}
      data-testid={testId}
    >
      {overflowing ? (
        <p className="scroll-hint muted small" data-testid={testId ? `${testId}-hint` : undefined}>
          Scroll sideways for {columns ? `all ${columns} columns` : "more"}{" "}
          <span aria-hidden="true">{edges.right ? "→" : "←"}</span>
        </p>
      ) : null}
      <div
        ref={ref}
        className="table-scroll"
        // A scrolling region must be reachable by keyboard; the table inside carries the name (caption).
        tabIndex={overflowing ? 0 : undefined}
      >
        {children}
      </div>
    </div>
  )
}
