/**
 * CSV on every list and analytics operation (issue 16), one table of exports on both databases: each
 * answers `format=csv` and `Accept: text/csv` with a header row naming the fields the OpenAPI document
 * gives one item of its JSON list, and one row per item equal to that JSON, read back by the tests' own
 * CSV parser and flattened by the tests' own walk of the document (not the exporter's column readers).
 * A bad `format` is a 400 naming it; the security matrix runs every export as CSV.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ManualClock } from "../../src/core/clock.js"
import { parseCsv } from "../support/csv.js"
import { startTestApp, type TestApp } from "../support/http.js"
import { expectDocumented } from "../support/openapi.js"
import { type Caller, describeSecurityMatrix, type MatrixEndpoint } from "../support/security-matrix.js"

type Json = Record<string, unknown>
type Sub = Awaited<ReturnType<TestApp["subscription"]>>

const clock = new ManualClock(Date.parse("2026-03-10T12:00:00Z"))
const PERIOD = "from=2026-03-01&to=2026-03-09"
let t: TestApp
let owner: Sub
let other: Sub
let revokedKey: string
let webhookId: string
let experimentId: string

const consume = (body: Json) =>
  t.request({
    method: "POST",
    url: "/api/tokens/consume",
    key: owner.key,
    payload: { entity_id: owner.entityId, entity_type: "organization", estimated_tokens: 120, ...body },
  })

beforeAll(async () => {
  t = await startTestApp({ clock })
  owner = await t.subscription({ token_limit: 100_000_000, timezone: "UTC" })
  other = await t.subscription({ token_limit: 100_000_000 })
  const extra = await t.request({ method: "POST", url: `/api/subscriptions/${owner.id}/keys`, payload: {} })
  revokedKey = extra.json().key
  await t.request({ method: "DELETE", url: `/api/subscriptions/${owner.id}/keys/${extra.json().key_id}` })

  const experiment = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/experiments`,
    payload: {
      name: "shorter answers",
      channels: ["telegram"],
      variants: [
        { name: "control", weight: 1 },
        { name: "short", weight: 1, label: 'A, "quoted" label' },
      ],
      primary_metric: "tokens_per_turn",
      status: "running",
    },
  })
  expect(experiment.statusCode, experiment.body).toBe(201)
  experimentId = experiment.json().id

  // Nine days: ada on the website in the morning and on WhatsApp (linked) before noon, bo on the
  // website, and a few telegram users inside the experiment.
  for (let day = 1; day <= 9; day++) {
    const at = (hour: number) => Date.parse(`2026-03-0${day}T${String(hour).padStart(2, "0")}:00:00Z`)
    const turns: [number, Json][] = [
      [
        at(9),
        { channel: "website", user_identifier: "ada-web", session_id: `w${day}`, chatbot_id: "faq-bot" },
      ],
      [at(11), { channel: "whatsapp", user_identifier: "+15550001", chatbot_id: "support-bot" }],
      [at(13), { channel: "website", user_identifier: "bo", estimated_tokens: 80 + day }],
      [at(15), { channel: "telegram", user_identifier: `tg-${day % 4}`, estimated_tokens: 60 + day }],
    ]
    for (const [time, body] of turns) {
      clock.set(time)
      expect((await consume(body)).json().allowed).toBe(true)
    }
  }
  clock.set(Date.parse("2026-03-10T12:00:00Z"))
  const linked = await t.request({
    method: "PUT",
    url: `/api/subscriptions/${owner.id}/people/ada`,
    payload: {
      identifiers: [
        { channel: "website", user_identifier: "ada-web" },
        { channel: "whatsapp", user_identifier: "+15550001" },
      ],
    },
  })
  expect(linked.statusCode, linked.body).toBe(200)
  const outcome = await t.request({
    method: "POST",
    url: "/api/outcomes",
    key: owner.key,
    payload: {
      name: "purchase",
      value: "12.50",
      user_identifier: "ada-web",
      channel: "website",
      occurred_at: "2026-03-05T10:00:00Z",
      idempotency_key: "order-1",
    },
  })
  expect(outcome.statusCode, outcome.body).toBe(201)
  const price = await t.request({
    method: "PUT",
    url: "/api/prices/gpt-4o-mini",
    payload: { input_per_million: "0.15", output_per_million: "0.6" },
  })
  expect(price.statusCode, price.body).toBe(200)
  const dashboard = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/dashboards`,
    key: owner.key,
    payload: { name: "Desk, daily", widgets: [{ kind: "totals" }, { kind: "channel_comparison" }] },
  })
  expect(dashboard.statusCode, dashboard.body).toBe(201)
  const webhook = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/webhooks`,
    key: owner.key,
    payload: {
      url: "https://hooks.example.com/omnimeter",
      event_types: ["quota.threshold_reached", "rate_limit.exceeded"],
    },
  })
  expect(webhook.statusCode, webhook.body).toBe(201)
  webhookId = webhook.json().id
  const sent = await t.request({
    method: "POST",
    url: `/api/subscriptions/${owner.id}/webhooks/${webhookId}/test`,
    key: owner.key,
  })
  expect(sent.statusCode, sent.body).toBe(202)
})
afterAll(async () => t.close())

interface Export {
  name: string
  route: string
  url: () => string
  /** The rows the CSV must hold, from the JSON answer. */
  rows: (body: Json) => Json[]
  /** The documented schema of one row, from the 200 answer's schema (refs resolved by the walk). */
  item: (answer: Json) => unknown
  /** Columns the CSV leaves out on purpose (the list's quota, which only the single read carries). */
  omit?: string
  /** Expected status for callers other than the admin; unlisted as the matrix's defaults. */
  callers?: Partial<Record<Caller, number>>
  /** Read with the owner's key (an admin-only list is read with the admin key). */
  adminOnly?: boolean
  isPublic?: boolean
  /** The fixture may give it no rows (insights fire on evidence the fixture need not hold). */
  mayBeEmpty?: boolean
}

const at = (node: unknown, ...keys: string[]): unknown =>
  keys.reduce<unknown>((n, k) => (n as Json | undefined)?.[k], node)
const list = (name: string) => (body: Json) => body[name] as Json[]
const items = (name: string) => (answer: Json) => at(answer, "properties", name, "items")
const analytics = (path = "") => `/api/onboarding/analytics/:subscription_id${path}`

const EXPORTS: Export[] = [
  {
    name: "subscriptions",
    route: "/api/subscriptions",
    url: () => "/api/subscriptions?limit=500",
    rows: list("subscriptions"),
    item: items("subscriptions"),
    omit: "quota",
    adminOnly: true,
    callers: { own: 403, other: 403 },
  },
  {
    name: "keys",
    route: "/api/subscriptions/:id/keys",
    url: () => `/api/subscriptions/${owner.id}/keys`,
    rows: list("keys"),
    item: items("keys"),
    adminOnly: true,
    callers: { own: 403, other: 404 },
  },
  {
    name: "webhook endpoints",
    route: "/api/subscriptions/:id/webhooks",
    url: () => `/api/subscriptions/${owner.id}/webhooks`,
    rows: list("webhooks"),
    item: items("webhooks"),
  },
  {
    name: "webhook deliveries",
    route: "/api/subscriptions/:id/webhooks/:webhook_id/deliveries",
    url: () => `/api/subscriptions/${owner.id}/webhooks/${webhookId}/deliveries?limit=50`,
    rows: list("deliveries"),
    item: items("deliveries"),
  },
  {
    name: "dashboards",
    route: "/api/subscriptions/:id/dashboards",
    url: () => `/api/subscriptions/${owner.id}/dashboards`,
    rows: list("dashboards"),
    item: items("dashboards"),
  },
  {
    name: "prices",
    route: "/api/prices",
    url: () => "/api/prices",
    rows: list("prices"),
    item: items("prices"),
    callers: { other: 200 },
  },
  {
    name: "a person's identifiers",
    route: "/api/subscriptions/:id/people/:person_id",
    url: () => `/api/subscriptions/${owner.id}/people/ada`,
    rows: (body) => (body.identifiers as Json[]).map((i) => ({ person_id: body.person_id, ...i })),
    item: (answer) => ({
      type: "object",
      properties: {
        person_id: { type: "string" },
        ...(at(answer, "properties", "identifiers", "items", "properties") as Json),
      },
    }),
  },
  {
    name: "experiments",
    route: "/api/subscriptions/:id/experiments",
    url: () => `/api/subscriptions/${owner.id}/experiments`,
    rows: list("experiments"),
    item: items("experiments"),
  },
  {
    name: "experiment results",
    route: "/api/subscriptions/:id/experiments/:experiment_id/results",
    url: () => `/api/subscriptions/${owner.id}/experiments/${experimentId}/results`,
    rows: list("variants"),
    item: items("variants"),
  },
  {
    name: "forecast",
    route: analytics("/forecast"),
    url: () => `/api/onboarding/analytics/${owner.id}/forecast`,
    rows: (body) => [...(body.channels as Json[]), { channel: "total", ...(body.total as Json) }],
    item: (answer) => ({
      type: "object",
      properties: {
        channel: { type: "string" },
        ...(at(answer, "properties", "total", "properties") as Json),
      },
    }),
  },
  {
    name: "insights",
    route: analytics("/insights"),
    url: () => `/api/onboarding/analytics/${owner.id}/insights`,
    rows: list("insights"),
    item: items("insights"),
    mayBeEmpty: true,
  },
  {
    name: "outcomes",
    route: analytics("/outcomes"),
    url: () => `/api/onboarding/analytics/${owner.id}/outcomes?${PERIOD}`,
    rows: (body) => [...(body.channels as Json[]), { channel: "total", ...(body.totals as Json) }],
    item: items("channels"),
  },
  ...(["top_paths", "transitions", "first_touch", "last_touch"] as const).map((table) => ({
    name: `journeys, ${table}`,
    route: analytics("/journeys"),
    url: () => `/api/onboarding/analytics/${owner.id}/journeys?${PERIOD}&table=${table}`,
    rows: list(table),
    item: items(table),
  })),
  {
    name: "admin overview",
    route: "/api/admin/overview",
    url: () => "/api/admin/overview?days=30",
    rows: list("subscriptions"),
    item: items("subscriptions"),
    adminOnly: true,
    callers: { own: 403, other: 403 },
  },
  {
    name: "channel configuration",
    route: "/api/onboarding/subscription/:subscription_id/channels/config",
    url: () => `/api/onboarding/subscription/${owner.id}/channels/config`,
    rows: list("channels"),
    item: items("channels"),
  },
  {
    name: "channel catalog",
    route: "/api/onboarding/channels",
    url: () => "/api/onboarding/channels",
    rows: list("channels"),
    item: items("channels"),
    isPublic: true,
  },
  {
    name: "plan catalog",
    route: "/api/plans",
    url: () => "/api/plans",
    rows: list("plans"),
    item: items("plans"),
    isPublic: true,
  },
]

/** The OpenAPI document's 200 JSON schema of a route's GET. */
function answerSchema(route: string): Json {
  const document = t.app.swagger() as unknown as Json
  const path = route.replace(/:(\w+)/g, "{$1}")
  return resolve(
    at(document, "paths", path, "get", "responses", "200", "content", "application/json", "schema"),
  )
}

/**
 * The documented fields of one row, walked from the OpenAPI document: objects flattened with dots, a list
 * of scalars one field, a list of objects none, a record (an object without named properties) one field.
 */
function documentedFields(node: unknown, prefix = ""): string[] {
  const schema = resolve(node)
  const branch = (schema.anyOf as Json[] | undefined)?.map(resolve).find((b) => b.type !== "null") ?? schema
  const name = (key: string) => (prefix ? `${prefix}.${key}` : key)
  if (branch.type === "object" && branch.properties) {
    return Object.entries(branch.properties as Json).flatMap(([key, child]) => {
      const c = resolve(child)
      const inner = (c.anyOf as Json[] | undefined)?.map(resolve).find((b) => b.type !== "null") ?? c
      if (inner.type === "array") {
        const itemType = resolve(inner.items).type
        return ["string", "integer", "number", "boolean"].includes(String(itemType)) ? [name(key)] : []
      }
      if (inner.type === "object" && inner.properties) return documentedFields(inner, name(key))
      return [name(key)]
    })
  }
  return []
}

function resolve(node: unknown): Json {
  const schema = (node ?? {}) as Json
  const ref = schema.$ref
  if (typeof ref !== "string") return schema
  const document = t.app.swagger() as unknown as Json
  return resolve(at(document, ...ref.replace(/^#\//, "").split("/")))
}

/** A JSON value as a CSV cell: empty for null, lists joined by spaces, objects as JSON, formulas defused. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return ""
  if (Array.isArray(value)) return value.join(" ")
  if (typeof value === "object") return JSON.stringify(value)
  const text = String(value)
  return typeof value === "string" && /^[=+\-@\t\r]/.test(text) ? `'${text}` : text
}

const valueAt = (row: Json, field: string) => at(row, ...field.split("."))

async function fetchBoth(entry: Export, how: "query" | "accept") {
  const key = entry.adminOnly ? undefined : entry.isPublic ? null : owner.key
  const json = await t.request({ method: "GET", url: entry.url(), ...(key === undefined ? {} : { key }) })
  expect(json.statusCode, json.body).toBe(200)
  const separator = entry.url().includes("?") ? "&" : "?"
  const csv = await t.request({
    method: "GET",
    url: how === "query" ? `${entry.url()}${separator}format=csv` : entry.url(),
    ...(how === "accept" ? { headers: { accept: "text/csv, application/json;q=0.5" } } : {}),
    ...(key === undefined ? {} : { key }),
  })
  return { json, csv }
}

describe.each(EXPORTS)("$name as CSV", (entry) => {
  it.each(["query", "accept"] as const)(
    "asked by %s: a header naming the documented fields, then one row per item equal to the JSON",
    async (how) => {
      const { json, csv } = await fetchBoth(entry, how)
      expect(csv.statusCode, csv.body).toBe(200)
      expect(csv.headers["content-type"]).toBe("text/csv; charset=utf-8")
      expect(csv.headers["content-disposition"]).toMatch(/^attachment; filename="[\w.-]+\.csv"$/)
      expectDocumented(t.app, "GET", entry.route, csv)
      const fields = documentedFields(entry.item(answerSchema(entry.route))).filter(
        (f) => !entry.omit || !(f === entry.omit || f.startsWith(`${entry.omit}.`)),
      )
      expect(fields.length).toBeGreaterThan(1)
      const [header, ...rows] = parseCsv(csv.body)
      expect(header).toEqual(fields)
      const expected = entry.rows(json.json())
      if (!entry.mayBeEmpty) expect(expected.length, "the fixture gives the list rows").toBeGreaterThan(0)
      expect(rows).toEqual(expected.map((row) => fields.map((f) => cell(valueAt(row, f)))))
    },
  )
})

describe("CSV specifics", () => {
  it("quotes a field with a comma and quotes, defuses a phone number read as a formula, and joins a path", async () => {
    const res = await t.request({
      url: `/api/subscriptions/${owner.id}/experiments/${experimentId}/results?format=csv`,
      key: owner.key,
    })
    const [header, ...rows] = parseCsv(res.body)
    const label = header?.indexOf("label") ?? -1
    expect(rows.map((r) => r[label])).toContain('A, "quoted" label')
    const paths = parseCsv(
      (
        await t.request({
          url: `/api/onboarding/analytics/${owner.id}/journeys?${PERIOD}&format=csv&table=transitions`,
          key: owner.key,
        })
      ).body,
    )
    // ada, one linked person, went from the website to WhatsApp on each of the nine days, and back the next.
    expect(paths[0]?.slice(0, 3)).toEqual(["from", "to", "count"])
    expect(paths.slice(1).find((r) => r[0] === "website" && r[1] === "whatsapp")?.[2]).toBe("9")
    expect(paths.slice(1).find((r) => r[0] === "whatsapp" && r[1] === "website")?.[2]).toBe("8")
    const person = parseCsv(
      (await t.request({ url: `/api/subscriptions/${owner.id}/people/ada?format=csv`, key: owner.key })).body,
    )
    expect(person.slice(1).map((r) => r.slice(0, 3))).toEqual([
      ["ada", "website", "ada-web"],
      ["ada", "whatsapp", "'+15550001"],
    ])
    const topPaths = parseCsv(
      (
        await t.request({
          url: `/api/onboarding/analytics/${owner.id}/journeys?${PERIOD}&format=csv`,
          key: owner.key,
        })
      ).body,
    )
    expect(topPaths[0]?.[0]).toBe("channels")
    // ada's path, repeats collapsed, its channels joined by spaces in one field.
    expect(topPaths.slice(1).some((r) => r[0]?.startsWith("website whatsapp website"))).toBe(true)
  })

  it("streams every subscription from `after` on, not one page", async () => {
    const all = (await t.request({ url: "/api/subscriptions?limit=500" })).json().subscriptions as Json[]
    const first = all[0]?.id as string
    const res = await t.request({ url: `/api/subscriptions?limit=1&after=${first}&format=csv` })
    const [, ...rows] = parseCsv(res.body)
    expect(rows.map((r) => r[0])).toEqual(all.slice(1).map((s) => s.id))
  })

  it.each(EXPORTS.filter((e) => !e.isPublic))("$name: a bad format is a 400 naming format", async (entry) => {
    const separator = entry.url().includes("?") ? "&" : "?"
    const res = await t.request({ url: `${entry.url()}${separator}format=xml` })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toContain("format")
    expectDocumented(t.app, "GET", entry.route, res)
  })

  it("a public catalog refuses a bad format too", async () => {
    const res = await t.request({ url: "/api/plans?format=xml", key: null })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toContain("format")
  })
})

describe("who may export", () => {
  const endpoints: MatrixEndpoint[] = EXPORTS.filter((e) => !e.isPublic).map((entry) => ({
    name: `${entry.name}, csv`,
    method: "GET",
    route: entry.route,
    url: () => `${entry.url()}${entry.url().includes("?") ? "&" : "?"}format=csv`,
    expect: { other: 404, ...entry.callers },
  }))
  describeSecurityMatrix(endpoints, {
    app: () => t,
    revokedKey: () => revokedKey,
    otherKey: () => other.key,
    ownKey: () => owner.key,
  })
})
