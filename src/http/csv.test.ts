import { Type } from "typebox"
import { describe, expect, it } from "vitest"
import { csvColumns, csvField, csvLine, documentCsvResponses, wantsCsv } from "./csv.js"

describe("csv fields", () => {
  it.each([
    [null, ""],
    [undefined, ""],
    [42, "42"],
    [-3.5, "-3.5"],
    [true, "true"],
    ["plain", "plain"],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["two\nlines", '"two\nlines"'],
    ["=SUM(A1)", "'=SUM(A1)"],
    ["-1+1", "'-1+1"],
    ["@home", "'@home"],
    [{ a: 1 }, '"{""a"":1}"'],
  ])("%j is written as %s", (value, written) => {
    expect(csvField(value)).toBe(written)
  })
})

describe("csv columns from an item schema", () => {
  const Item = Type.Object({
    name: Type.String(),
    count: Type.Integer(),
    growth: Type.Object({ tokens: Type.Union([Type.Number(), Type.Null()]), users: Type.Number() }),
    pair: Type.Union([Type.Object({ best: Type.String() }), Type.Null()]),
    points: Type.Array(Type.Integer()),
    steps: Type.Array(Type.Object({ at: Type.String() })),
    tags: Type.Union([Type.Array(Type.String()), Type.Null()]),
    data: Type.Record(Type.String(), Type.Unknown()),
  })

  it("names scalars, dots nested objects (nullable too), joins lists of scalars, leaves lists of objects out, keeps records whole", () => {
    expect(csvColumns(Item).map((c) => c.name)).toEqual([
      "name",
      "count",
      "growth.tokens",
      "growth.users",
      "pair.best",
      "points",
      "tags",
      "data",
    ])
  })

  it("reads a row, null objects as empty fields", () => {
    const row = {
      name: "x",
      count: 2,
      growth: { tokens: null, users: 3 },
      pair: null,
      points: [1, 2],
      steps: [{ at: "a" }],
      tags: null,
      data: { k: 1 },
    }
    expect(csvLine(csvColumns(Item), row)).toBe('x,2,,3,,1 2,,"{""k"":1}"\r\n')
  })
})

describe("whether a request asks for csv", () => {
  const ask = (query: Record<string, string>, accept?: string) =>
    wantsCsv({ query, headers: accept === undefined ? {} : { accept } } as never)
  it.each([
    [{ format: "csv" }, undefined, true],
    [{ format: "json" }, "text/csv", false],
    [{}, "text/csv", true],
    [{}, "text/csv, application/json;q=0.5", true],
    [{}, "application/json, text/csv;q=0.5", false],
    [{}, "*/*", false],
    [{}, "text/csv;q=0", false],
    [{}, undefined, false],
  ])("query %j with Accept %s: %s", (query, accept, expected) => {
    expect(ask(query, accept)).toBe(expected)
  })
})

describe("the OpenAPI document", () => {
  it("documents text/csv on the 200 of operations with a format parameter, and only those", () => {
    const document = {
      paths: {
        "/a": {
          get: {
            parameters: [{ in: "query", name: "format" }],
            responses: { "200": { content: { "application/json": {} } } },
          },
        },
        "/b": { get: { parameters: [], responses: { "200": { content: { "application/json": {} } } } } },
      },
    }
    documentCsvResponses(document)
    expect(Object.keys(document.paths["/a"].get.responses["200"].content)).toEqual([
      "application/json",
      "text/csv",
    ])
    expect(Object.keys(document.paths["/b"].get.responses["200"].content)).toEqual(["application/json"])
  })
})
