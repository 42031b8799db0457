/**
 * Customer journeys (issue 15): from each person's sessions in time order, the channel transitions, the
 * top paths, the share of people on two or more channels, and the first- and last-touch channel of the
 * people who converted. Pure; the sessions come from src/analytics/journeys.ts.
 *
 * A session is a person's run of turns on one channel: the turns sharing a session_id, or, for turns
 * without one, turns on the same channel less than SESSION_GAP_MINUTES apart.
 */
import type { Channel } from "./channels.js"

/** Turns without a session_id start a new session after this much inactivity on the channel. */
export const SESSION_GAP_MINUTES = 30
/** Paths are cut to their first this-many steps (after repeats are collapsed). */
export const MAX_PATH_STEPS = 5
/** How many paths the answer lists. */
export const TOP_PATHS = 20

/** One session: its person and channel, and when its first turn was. */
export interface SessionRow {
  person: string
  channel: Channel
  startedAt: Date
}

export interface Transition {
  from: Channel
  to: Channel
  /** How many times a person's next session was on `to` after one on `from`. */
  count: number
  /** Median time from the start of the `from` session to the start of the next, in seconds. */
  medianGapSeconds: number
}

export interface JourneyPath {
  channels: Channel[]
  people: number
  /** people / all people with a session, 0-1. */
  share: number
  /** Converted people of the path / people of the path; null when no outcomes are known. */
  conversionRate: number | null
}

export interface TouchCount {
  channel: Channel
  people: number
}

export interface Journeys {
  people: number
  sessions: number
  transitions: Transition[]
  topPaths: JourneyPath[]
  /** People active on 2 or more channels / people; null with no people. */
  crossChannelShare: number | null
  /** Of the people who converted: the channel of their first and last session before converting. */
  firstTouch: TouchCount[]
  lastTouch: TouchCount[]
  convertedPeople: number | null
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/**
 * What the answer is made of, before sorting and cutting: the database computes these in one query
 * (src/analytics/journeys.ts), {@link assembleJourneys} from session rows. Lists in any order.
 */
export interface JourneyAggregates {
  people: number
  sessions: number
  /** People whose sessions are on 2 or more channels. */
  crossChannelPeople: number
  /** Per ordered pair of different channels: the count and the median gap (seconds). */
  transitions: Transition[]
  /** Per distinct path (collapsed, cut to MAX_PATH_STEPS): its people and how many of them converted. */
  paths: Array<{ channels: Channel[]; people: number; converted: number }>
  firstTouch: TouchCount[]
  lastTouch: TouchCount[]
  /** People with a session who converted; null when outcomes are not known at all. */
  convertedPeople: number | null
}

const byPeopleThenChannel = (a: TouchCount, b: TouchCount) =>
  b.people - a.people || a.channel.localeCompare(b.channel)

/** The answer from its aggregates: transitions by count, the top TOP_PATHS paths with shares and rates. */
export function journeysFromAggregates(aggregates: JourneyAggregates): Journeys {
  const { people } = aggregates
  const known = aggregates.convertedPeople !== null
  return {
    people,
    sessions: aggregates.sessions,
    transitions: [...aggregates.transitions].sort(
      (a, b) => b.count - a.count || `${a.from}${a.to}`.localeCompare(`${b.from}${b.to}`),
    ),
    topPaths: [...aggregates.paths]
      .sort((a, b) => b.people - a.people || a.channels.join(">").localeCompare(b.channels.join(">")))
      .slice(0, TOP_PATHS)
      .map((path) => ({
        channels: path.channels,
        people: path.people,
        share: path.people / people,
        conversionRate: known ? path.converted / path.people : null,
      })),
    crossChannelShare: people > 0 ? aggregates.crossChannelPeople / people : null,
    firstTouch: [...aggregates.firstTouch].sort(byPeopleThenChannel),
    lastTouch: [...aggregates.lastTouch].sort(byPeopleThenChannel),
    convertedPeople: aggregates.convertedPeople,
  }
}

/**
 * The journeys answer from session rows: the definition the database's aggregation
 * (src/analytics/journeys.ts) is tested against. `sessions` in any order; `conversions` maps a person to
 * the instant of their first conversion (undefined: outcomes are not known at all, so no conversion
 * figures).
 */
export function assembleJourneys(
  sessions: readonly SessionRow[],
  conversions?: ReadonlyMap<string, Date>,
): Journeys {
  const byPerson = new Map<string, SessionRow[]>()
  for (const session of sessions) {
    const list = byPerson.get(session.person)
    if (list) list.push(session)
    else byPerson.set(session.person, [session])
  }
  const gaps = new Map<string, number[]>()
  const paths = new Map<string, { channels: Channel[]; people: number; converted: number }>()
  const first = new Map<Channel, number>()
  const last = new Map<Channel, number>()
  let crossChannel = 0
  let converted = 0
  for (const [person, list] of byPerson) {
    list.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || a.channel.localeCompare(b.channel))
    for (let i = 1; i < list.length; i++) {
      const previous = list[i - 1]
      const current = list[i]
      if (!previous || !current || previous.channel === current.channel) continue
      const key = `${previous.channel}>${current.channel}`
      const gap = (current.startedAt.getTime() - previous.startedAt.getTime()) / 1000
      const known = gaps.get(key)
      if (known) known.push(gap)
      else gaps.set(key, [gap])
    }
    const collapsed: Channel[] = []
    for (const session of list) if (collapsed.at(-1) !== session.channel) collapsed.push(session.channel)
    if (new Set(collapsed).size >= 2) crossChannel += 1
    const steps = collapsed.slice(0, MAX_PATH_STEPS)
    const pathKey = steps.join(">")
    const convertedAt = conversions?.get(person)
    const path = paths.get(pathKey) ?? { channels: steps, people: 0, converted: 0 }
    path.people += 1
    if (convertedAt) {
      path.converted += 1
      const before = list.filter((session) => session.startedAt.getTime() <= convertedAt.getTime())
      const touches = before.length > 0 ? before : list
      const firstTouch = touches[0]
      const lastTouch = touches.at(-1)
      if (firstTouch && lastTouch) {
        converted += 1
        first.set(firstTouch.channel, (first.get(firstTouch.channel) ?? 0) + 1)
        last.set(lastTouch.channel, (last.get(lastTouch.channel) ?? 0) + 1)
      }
    }
    paths.set(pathKey, path)
  }
  const touchList = (counts: Map<Channel, number>): TouchCount[] =>
    [...counts].map(([channel, count]) => ({ channel, people: count }))
  return journeysFromAggregates({
    people: byPerson.size,
    sessions: sessions.length,
    crossChannelPeople: crossChannel,
    transitions: [...gaps].map(([key, values]) => {
      const [from, to] = key.split(">") as [Channel, Channel]
      return { from, to, count: values.length, medianGapSeconds: median(values) }
    }),
    paths: [...paths.values()],
    firstTouch: touchList(first),
    lastTouch: touchList(last),
    convertedPeople: conversions ? converted : null,
  })
}
