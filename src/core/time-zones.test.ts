import { describe, expect, it } from "vitest"
import {
  addDays,
  daysBetweenInclusive,
  eachDay,
  type LocalDate,
  localDateOf,
  localHourOf,
  localHoursBetween,
  localRangeToInstants,
  offsetsAreWholeHours,
  parseLocalDate,
  todayIn,
  zonedStartOfDay,
  zoneOffsetMinutes,
} from "./time-zones.js"

const HOUR = 3_600_000
const d = (iso: string) => new Date(iso)

function dayLengthHours(date: LocalDate, timeZone: string): number {
  const { start, end } = localRangeToInstants(date, date, timeZone)
  return (end.getTime() - start.getTime()) / HOUR
}

// The oracle reads local dates through its own formatter ("en-CA" prints YYYY-MM-DD), not through the module.
const oracleFormatters = new Map<string, Intl.DateTimeFormat>()
function oracleDate(ms: number, timeZone: string): string {
  let formatter = oracleFormatters.get(timeZone)
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
    })
    oracleFormatters.set(timeZone, formatter)
  }
  return formatter.format(ms)
}

/**
 * The first instant whose local date is `date` or later, by brute force: walk from well before UTC midnight
 * in 15-minute steps to the first step that reads `date`, then bisect that step to the second. No zone
 * changes its offset twice within 15 minutes, so the first step that reads `date` brackets the answer.
 */
function bruteForceStartOfDay(date: string, timeZone: string): number {
  const step = 15 * 60_000
  let before = Date.parse(`${date}T00:00:00Z`) - 16 * HOUR
  expect(oracleDate(before, timeZone) < date).toBe(true)
  let after = before + step
  while (oracleDate(after, timeZone) < date) {
    before = after
    after += step
  }
  while (after - before > 1000) {
    const middle = before + Math.floor((after - before) / 2000) * 1000
    if (oracleDate(middle, timeZone) < date) before = middle
    else after = middle
  }
  return after
}

describe("local dates", () => {
  it("parses only real dates written as YYYY-MM-DD", () => {
    expect(parseLocalDate("2026-01-15")).toBe("2026-01-15")
    expect(parseLocalDate("2028-02-29")).toBe("2028-02-29")
    expect(parseLocalDate("2000-02-29")).toBe("2000-02-29")
    expect(parseLocalDate("0001-01-01")).toBe("0001-01-01")
    for (const bad of [
      "2026-02-30",
      "2026-02-29",
      "2100-02-29",
      "2026-04-31",
      "2026-13-01",
      "2026-00-10",
      "2026-01-00",
      "0000-01-01",
      "2026-2-1",
      "2026-02-1",
      "26-02-01",
      "20260201",
      "2026/02/01",
      " 2026-02-01",
      "2026-02-01 ",
      "2026-02-01T00:00:00Z",
      "+02026-02-01",
      "",
    ]) {
      expect(parseLocalDate(bad), bad).toBeUndefined()
    }
  })

  it("adds days across month ends, leap days and year ends, in both directions", () => {
    expect(addDays("2026-01-31", 1)).toBe("2026-02-01")
    expect(addDays("2028-02-28", 1)).toBe("2028-02-29")
    expect(addDays("2026-02-28", 1)).toBe("2026-03-01")
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01")
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28")
    expect(addDays("2026-01-15", 0)).toBe("2026-01-15")
    expect(addDays("2026-01-01", 365)).toBe("2027-01-01")
    expect(addDays("2028-01-01", 366)).toBe("2029-01-01")
  })

  it("refuses malformed dates and fractional day counts instead of guessing", () => {
    expect(() => addDays("2026-02-30" as LocalDate, 1)).toThrow(RangeError)
    expect(() => addDays("2026-02-01", 1.5)).toThrow(RangeError)
    expect(() => addDays("9999-12-31", 1)).toThrow(RangeError)
  })

  it("counts both ends of a range of days", () => {
    expect(daysBetweenInclusive("2026-03-01", "2026-03-31")).toBe(31)
    expect(daysBetweenInclusive("2026-03-05", "2026-03-05")).toBe(1)
    expect(daysBetweenInclusive("2028-01-01", "2028-12-31")).toBe(366)
    expect(daysBetweenInclusive("2026-03-05", "2026-03-04")).toBe(0)
  })

  it("lists every day of a range in order, whatever the DST changes inside it", () => {
    expect(eachDay("2026-02-27", "2026-03-02")).toEqual([
      "2026-02-27",
      "2026-02-28",
      "2026-03-01",
      "2026-03-02",
    ])
    const year = eachDay("2026-01-01", "2026-12-31")
    expect(year).toHaveLength(365)
    expect(year).toContain("2026-03-08")
    expect(year).toContain("2026-11-01")
    expect(new Set(year).size).toBe(365)
    expect(eachDay("2026-03-05", "2026-03-04")).toEqual([])
  })
})

describe("day boundaries", () => {
  it("makes the spring-forward day 23 hours and the fall-back day 25 hours in New York", () => {
    expect(zonedStartOfDay("2026-03-08", "America/New_York")).toEqual(d("2026-03-08T05:00:00Z"))
    expect(zonedStartOfDay("2026-03-09", "America/New_York")).toEqual(d("2026-03-09T04:00:00Z"))
    expect(dayLengthHours("2026-03-08", "America/New_York")).toBe(23)
    expect(zonedStartOfDay("2026-11-01", "America/New_York")).toEqual(d("2026-11-01T04:00:00Z"))
    expect(dayLengthHours("2026-11-01", "America/New_York")).toBe(25)
    expect(dayLengthHours("2026-07-01", "America/New_York")).toBe(24)
  })

  it("makes the spring-forward day 23 hours and the fall-back day 25 hours in Berlin", () => {
    expect(zonedStartOfDay("2026-03-29", "Europe/Berlin")).toEqual(d("2026-03-28T23:00:00Z"))
    expect(dayLengthHours("2026-03-29", "Europe/Berlin")).toBe(23)
    expect(zonedStartOfDay("2026-10-25", "Europe/Berlin")).toEqual(d("2026-10-24T22:00:00Z"))
    expect(dayLengthHours("2026-10-25", "Europe/Berlin")).toBe(25)
  })

  it("spans a whole month of March in Berlin as 31 days less the hour DST takes", () => {
    const { start, end } = localRangeToInstants("2026-03-01", "2026-03-31", "Europe/Berlin")
    expect(start).toEqual(d("2026-02-28T23:00:00Z"))
    expect(end).toEqual(d("2026-03-31T22:00:00Z"))
    expect((end.getTime() - start.getTime()) / HOUR).toBe(31 * 24 - 1)
  })

  it("starts days in Kolkata at 18:30Z and in Kathmandu at 18:15Z the previous UTC day", () => {
    expect(zonedStartOfDay("2026-01-15", "Asia/Kolkata")).toEqual(d("2026-01-14T18:30:00Z"))
    expect(zonedStartOfDay("2026-01-15", "Asia/Kathmandu")).toEqual(d("2026-01-14T18:15:00Z"))
    expect(dayLengthHours("2026-01-15", "Asia/Kathmandu")).toBe(24)
    expect(zoneOffsetMinutes(d("2026-01-15T00:00:00Z"), "Asia/Kolkata")).toBe(330)
    expect(zoneOffsetMinutes(d("2026-01-15T00:00:00Z"), "Asia/Kathmandu")).toBe(345)
  })

  it("follows Lord Howe Island's half-hour DST: days of 23.5 and 24.5 hours", () => {
    expect(zonedStartOfDay("2026-01-15", "Australia/Lord_Howe")).toEqual(d("2026-01-14T13:00:00Z"))
    expect(zonedStartOfDay("2026-06-15", "Australia/Lord_Howe")).toEqual(d("2026-06-14T13:30:00Z"))
    expect(zoneOffsetMinutes(d("2026-01-15T00:00:00Z"), "Australia/Lord_Howe")).toBe(660)
    expect(zoneOffsetMinutes(d("2026-06-15T00:00:00Z"), "Australia/Lord_Howe")).toBe(630)
    expect(dayLengthHours("2026-04-05", "Australia/Lord_Howe")).toBe(24.5)
    expect(dayLengthHours("2026-10-04", "Australia/Lord_Howe")).toBe(23.5)
  })

  it("starts a day whose midnight is skipped at the first instant that exists, 01:00 local", () => {
    const santiago = zonedStartOfDay("2024-09-08", "America/Santiago")
    expect(santiago).toEqual(d("2024-09-08T04:00:00Z"))
    expect(localHourOf(santiago, "America/Santiago")).toBe(1)
    expect(localDateOf(new Date(santiago.getTime() - 1), "America/Santiago")).toBe("2024-09-07")
    expect(dayLengthHours("2024-09-08", "America/Santiago")).toBe(23)

    const beirut = zonedStartOfDay("2024-03-31", "Asia/Beirut")
    expect(beirut).toEqual(d("2024-03-30T22:00:00Z"))
    expect(localHourOf(beirut, "Asia/Beirut")).toBe(1)
  })

  it("starts a day whose midnight happens twice at the first midnight", () => {
    // Cuba falls back from 01:00 to 00:00: the first midnight is at UTC-4, the second at UTC-5.
    expect(zonedStartOfDay("2024-11-03", "America/Havana")).toEqual(d("2024-11-03T04:00:00Z"))
    expect(dayLengthHours("2024-11-03", "America/Havana")).toBe(25)
  })

  it("gives a day the zone skipped entirely no length at all", () => {
    // Samoa crossed the date line after 2011-12-29; 2011-12-30 never happened there.
    const skipped = localRangeToInstants("2011-12-30", "2011-12-30", "Pacific/Apia")
    expect(skipped.start).toEqual(d("2011-12-30T10:00:00Z"))
    expect(skipped.end).toEqual(skipped.start)
    expect(localDateOf(skipped.start, "Pacific/Apia")).toBe("2011-12-31")
  })

  it("agrees with a brute-force search on every day of 2024 in zones with awkward offsets and DST", () => {
    const zones = [
      "UTC",
      "America/New_York",
      "Europe/Berlin",
      "Asia/Kolkata",
      "Asia/Kathmandu",
      "Australia/Lord_Howe",
      "America/Santiago",
      "Asia/Beirut",
      "America/Havana",
      "America/St_Johns",
      "Pacific/Chatham",
      "Pacific/Kiritimati",
      "Pacific/Pago_Pago",
    ]
    for (const timeZone of zones) {
      for (const date of eachDay("2024-01-01", "2024-12-31")) {
        expect(zonedStartOfDay(date, timeZone).getTime(), `${timeZone} ${date}`).toBe(
          bruteForceStartOfDay(date, timeZone),
        )
      }
    }
  })

  it("puts every instant of a local day's range on that local day", () => {
    for (const timeZone of ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]) {
      for (const date of ["2026-03-08", "2026-04-05", "2026-10-04", "2026-11-01"] as const) {
        const { start, end } = localRangeToInstants(date, date, timeZone)
        for (let t = start.getTime(); t < end.getTime(); t += 5 * 60_000) {
          expect(localDateOf(new Date(t), timeZone)).toBe(date)
        }
        expect(localDateOf(new Date(end.getTime() - 1), timeZone)).toBe(date)
        expect(localDateOf(end, timeZone)).toBe(addDays(date, 1))
      }
    }
  })

  it("refuses a range that ends before it starts, an unknown zone and a malformed date", () => {
    expect(() => localRangeToInstants("2026-03-05", "2026-03-04", "UTC")).toThrow(RangeError)
    expect(() => zonedStartOfDay("2026-03-05", "Mars/Olympus_Mons")).toThrow(RangeError)
    expect(() => zonedStartOfDay("2026-3-5" as LocalDate, "UTC")).toThrow(RangeError)
    expect(() => localDateOf(new Date(Number.NaN), "UTC")).toThrow(RangeError)
  })
})

describe("local date and hour of an instant", () => {
  it("puts a turn at 23:50 local on that local day, although UTC is already on the next", () => {
    const lateInNewYork = d("2026-01-16T04:50:00Z")
    expect(localDateOf(lateInNewYork, "America/New_York")).toBe("2026-01-15")
    expect(localHourOf(lateInNewYork, "America/New_York")).toBe(23)

    const lateInLosAngelesSummer = d("2026-07-16T06:50:00Z")
    expect(localDateOf(lateInLosAngelesSummer, "America/Los_Angeles")).toBe("2026-07-15")
    expect(localHourOf(lateInLosAngelesSummer, "America/Los_Angeles")).toBe(23)
  })

  it("puts a turn just after local midnight on the new day, although UTC is still on the previous", () => {
    const earlyInKathmandu = d("2026-01-14T18:20:00Z")
    expect(localDateOf(earlyInKathmandu, "Asia/Kathmandu")).toBe("2026-01-15")
    expect(localHourOf(earlyInKathmandu, "Asia/Kathmandu")).toBe(0)
    expect(localDateOf(d("2026-01-14T18:14:59Z"), "Asia/Kathmandu")).toBe("2026-01-14")
    expect(localHourOf(d("2026-01-14T18:14:59Z"), "Asia/Kathmandu")).toBe(23)
  })

  it("reports the repeated hour of a fall-back night as the same local hour twice", () => {
    expect(localHourOf(d("2026-11-01T05:30:00Z"), "America/New_York")).toBe(1)
    expect(localHourOf(d("2026-11-01T06:30:00Z"), "America/New_York")).toBe(1)
    expect(zoneOffsetMinutes(d("2026-11-01T05:30:00Z"), "America/New_York")).toBe(-240)
    expect(zoneOffsetMinutes(d("2026-11-01T06:30:00Z"), "America/New_York")).toBe(-300)
  })

  it("knows today differs across the date line at the same instant", () => {
    const now = d("2026-01-15T12:00:00Z")
    expect(todayIn("Pacific/Kiritimati", now)).toBe("2026-01-16")
    expect(todayIn("Pacific/Pago_Pago", now)).toBe("2026-01-15")
    expect(todayIn("UTC", now)).toBe("2026-01-15")
  })

  it("keeps historical offsets that are not whole minutes exact to the second", () => {
    // Before 1854 Kolkata kept local mean time, UTC+5:53:28.
    expect(zoneOffsetMinutes(d("1850-01-01T00:00:00Z"), "Asia/Kolkata")).toBeCloseTo(353 + 28 / 60, 10)
    expect(localHourOf(d("1850-01-01T18:06:32Z"), "Asia/Kolkata")).toBe(0)
    expect(localDateOf(d("1850-01-01T18:06:32Z"), "Asia/Kolkata")).toBe("1850-01-02")
  })
})

describe("localHoursBetween", () => {
  const hoursOf = (from: string, to: string, zone: string) => {
    const { start, end } = localRangeToInstants(from as LocalDate, to as LocalDate, zone)
    return localHoursBetween(start, end, zone)
  }

  it("gives 23 hours on a spring-forward day, skipping the missing hour", () => {
    const hours = hoursOf("2026-03-08", "2026-03-08", "America/New_York")
    expect(hours).toHaveLength(23)
    expect(hours.map((h) => h.hour)).toEqual([0, 1, ...Array.from({ length: 21 }, (_, i) => i + 3)])
    expect(hours[2]?.start.toISOString()).toBe("2026-03-08T07:00:00.000Z")
  })

  it("gives 25 hours on a fall-back day, the repeated hour twice at different instants", () => {
    const hours = hoursOf("2026-11-01", "2026-11-01", "America/New_York")
    expect(hours).toHaveLength(25)
    const ones = hours.filter((h) => h.hour === 1)
    expect(ones.map((h) => h.start.toISOString())).toEqual([
      "2026-11-01T05:00:00.000Z",
      "2026-11-01T06:00:00.000Z",
    ])
  })

  it("starts hours at :30 and :45 UTC in Kolkata and Kathmandu", () => {
    const kolkata = hoursOf("2026-01-15", "2026-01-15", "Asia/Kolkata")
    expect(kolkata).toHaveLength(24)
    expect(kolkata[0]).toEqual({ start: new Date("2026-01-14T18:30:00Z"), date: "2026-01-15", hour: 0 })
    const kathmandu = hoursOf("2026-01-15", "2026-01-16", "Asia/Kathmandu")
    expect(kathmandu).toHaveLength(48)
    expect(kathmandu[47]).toEqual({ start: new Date("2026-01-16T17:15:00Z"), date: "2026-01-16", hour: 23 })
  })

  it("is empty for an empty interval", () => {
    const at = new Date("2026-01-15T00:00:00Z")
    expect(localHoursBetween(at, at, "UTC")).toEqual([])
  })
})

describe("offsetsAreWholeHours", () => {
  const year = [new Date("2026-01-01T00:00:00Z"), new Date("2027-01-01T00:00:00Z")] as const
  it("holds for whole-hour zones across their DST changes", () => {
    expect(offsetsAreWholeHours(...year, "America/New_York")).toBe(true)
    expect(offsetsAreWholeHours(...year, "UTC")).toBe(true)
  })

  it("fails for half- and quarter-hour zones, and for a zone whose DST moves by half an hour", () => {
    expect(offsetsAreWholeHours(...year, "Asia/Kolkata")).toBe(false)
    expect(offsetsAreWholeHours(...year, "Asia/Kathmandu")).toBe(false)
    expect(offsetsAreWholeHours(...year, "Australia/Lord_Howe")).toBe(false)
  })
})
