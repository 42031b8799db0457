/**
 * The width of a chart's box in CSS pixels, following resizes, so the SVG draws at 1:1 and its text stays
 * readable from a phone to a wide screen (a fixed viewBox would shrink the labels with the screen).
 */
import { useLayoutEffect, useRef, useState } from "react"

export function useWidth<T extends HTMLElement>(fallback: number): [React.RefObject<T | null>, number] {
  const ref = useRef<T | null>(null)
  const [width, setWidth] = useState(fallback)
  useLayoutEffect(() => {
    const element = ref.current
    if (!element) return
    const measure = () => {
      const measured = Math.floor(element.getBoundingClientRect().width)
      if (measured > 0) setWidth(measured)
    }
    measure()
    const observer = new ResizeObserver(measure)
    observer.observe(element)
    return () => observer.disconnect()
  }, [])
  return [ref, width]
}
