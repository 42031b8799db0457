/**
 * The period of the analytics pages: a from/to date range in the subscription's timezone, kept in the URL
 * (so reload and links keep it), with presets.
 *
 * The partial-day rule: presets, and the period shown when the URL names none, end with the last complete
 * local day (yesterday), so no chart ends in the false cliff of a day that is not over. Today has its own
 * preset, marked partial; a period that includes it keeps it out of trend and growth (the API's rule).
 */
import { type FormEvent, useEffect, useState } from "react"
import { href, navigate, useLocation } from "../router.ts"
import { useWorkspace } from "../session.ts"

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

/** Days in the default period, like the API's default, but ending yesterday. */
export const DEFAULT_PERIOD_DAYS = 30

/** The last `days` complete local days in `timeZone`: from `days` days ago to yesterday. */
export function completeDays(timeZone: string, days: number): { from: string; to: string } {
  const yesterday = addDays(todayIn(timeZone), -1)
  return { from: addDays(yesterday, -(days - 1)), to: yesterday }
}

/** The period in the URL, or the last 30 complete days in the subscription's timezone. */
export function usePeriodQuery(): { from: string; to: string } {
  const { query } = useLocation()
  const { subscription } = useWorkspace()
  const fallback = completeDays(subscription.timezone, DEFAULT_PERIOD_DAYS)
  const from = query.get("from") ?? undefined
  const to = query.get("to") ?? undefined
  if (from === undefined && to === undefined) return fallback
  return {
    from: from ?? addDays(to ?? fallback.to, -(DEFAULT_PERIOD_DAYS - 1)),
    to: to ?? todayIn(subscription.timezone),
  }
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
  const presets = [7, 30, 90].map((days) => ({ days, ...completeDays(timezone, days) }))
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
        {presets.map((preset) => (
          <button
            key={preset.days}
            type="button"
            className="secondary small"
            aria-pressed={from === preset.from && to === preset.to}
            title={`The last ${preset.days} complete days, to yesterday`}
            onClick={() => go(preset.from, preset.to)}
          >
            {preset.days} days
          </button>
        ))}
        <button
          type="button"
          className="secondary small"
          aria-pressed={from === today && to === today}
          title="Today so far: not over, so it has no trend or growth yet"
          onClick={() => go(today, today)}
        >
          Today (partial)
        </button>
      </fieldset>
      <p className="muted small timezone">
        Days, hours and times in <strong>{timezone}</strong> (the subscription's timezone).{" "}
        {to >= today ? (
          <span data-testid="partial-note">
            {from === today ? "Today" : "The last day"} is not over: it counts the turns so far and is left
            out of trend and growth.
          </span>
        ) : (
          "Presets end yesterday, the last complete day."
        )}
      </p>
    </form>
  )
}
