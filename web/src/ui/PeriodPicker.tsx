/**
 * The period of the analytics pages: a from/to date range in the subscription's timezone, kept in the URL
 * (so reload and links keep it), with presets. Empty means the API's default, the last 30 days.
 */
import { type FormEvent, useEffect, useState } from "react"
import { href, navigate, useLocation } from "../router.ts"

/** Today's calendar date in `timeZone`, as YYYY-MM-DD. */
export function todayIn(timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).format(new Date())
}

/** `day` moved by `days` calendar days. */
export function addDays(day: string, days: number): string {
  const [y, m, d] = day.split("-").map(Number)
  return new Date(Date.UTC(y ?? 1970, (m ?? 1) - 1, (d ?? 1) + days)).toISOString().slice(0, 10)
}

export function usePeriodQuery(): { from: string | undefined; to: string | undefined } {
  const { query } = useLocation()
  return { from: query.get("from") ?? undefined, to: query.get("to") ?? undefined }
}

export function PeriodPicker({
  from,
  to,
  timezone,
}: {
  /** The period the API answered for (its defaults filled in). */
  from: string
  to: string
  timezone: string
}) {
  const location = useLocation()
  const [draftFrom, setDraftFrom] = useState(from)
  const [draftTo, setDraftTo] = useState(to)
  useEffect(() => {
    setDraftFrom(from)
    setDraftTo(to)
  }, [from, to])

  const go = (nextFrom: string, nextTo: string) => {
    const query = Object.fromEntries(location.query.entries())
    navigate(href(location.path, { ...query, from: nextFrom, to: nextTo }))
  }
  const submit = (event: FormEvent) => {
    event.preventDefault()
    go(draftFrom, draftTo)
  }
  const today = todayIn(timezone)
  return (
    <form className="period" onSubmit={submit} aria-label="Period">
      <div className="field-inline">
        <label htmlFor="period-from">From</label>
        <input
          id="period-from"
          type="date"
          value={draftFrom}
          max={draftTo || today}
          onChange={(e) => setDraftFrom(e.target.value)}
        />
      </div>
      <div className="field-inline">
        <label htmlFor="period-to">To</label>
        <input
          id="period-to"
          type="date"
          value={draftTo}
          min={draftFrom}
          max={today}
          onChange={(e) => setDraftTo(e.target.value)}
        />
      </div>
      <button type="submit">Apply</button>
      <fieldset className="presets">
        <legend className="sr-only">Quick periods</legend>
        {[7, 30, 90].map((days) => (
          <button
            key={days}
            type="button"
            className="secondary small"
            onClick={() => go(addDays(today, -(days - 1)), today)}
          >
            {days} days
          </button>
        ))}
      </fieldset>
      <p className="muted small timezone">
        Days and hours in <strong>{timezone}</strong> (the subscription's timezone)
      </p>
    </form>
  )
}
