/**
 * The dashboard reads the public HTTP API only: from the server's code it may import TYPES (erased at
 * build), never values, and its runtime packages are a short list. Checked on the sources here (parsed with
 * the TypeScript compiler, so comments and strings cannot fool it); the browser suite checks the built files.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join, relative, resolve } from "node:path"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const WEB_SRC = resolve("web/src")
const RUNTIME_PACKAGES = new Set([
  "react",
  "react-dom",
  "react-dom/client",
  "react/jsx-runtime",
  "gpt-tokenizer",
])

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return /\.tsx?$/.test(entry.name) ? [path] : []
  })
}

interface Import {
  file: string
  specifier: string
  typeOnly: boolean
}

/** Every import, re-export and dynamic import of a file, and whether it can only carry types. */
function importsOf(file: string, text: string): Import[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX)
  const found: Import[] = []
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)))
      found.push({ file, specifier: node.moduleSpecifier.text, typeOnly })
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ file, specifier: node.moduleSpecifier.text, typeOnly: node.isTypeOnly })
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ file, specifier: node.arguments[0].text, typeOnly: false })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

const all = sources(WEB_SRC).flatMap((file) => importsOf(file, readFileSync(file, "utf8")))

describe("the dashboard's imports", () => {
  it("import only types from outside web/ (the server's schemas), never values", () => {
    const outside = all.filter(
      (i) => i.specifier.startsWith(".") && !resolve(i.file, "..", i.specifier).startsWith(`${WEB_SRC}/`),
    )
    expect(outside.length).toBeGreaterThan(0)
    const offending = outside
      .filter((i) => !i.typeOnly)
      .map((i) => `${relative(".", i.file)}: ${i.specifier}`)
    expect(offending).toEqual([])
  })

  it("use only React, React DOM and the tokenizer as runtime packages", () => {
    const packages = all.filter((i) => !i.specifier.startsWith(".") && !i.typeOnly).map((i) => i.specifier)
    const subpath = (specifier: string) =>
      specifier.startsWith("gpt-tokenizer/") ? "gpt-tokenizer" : specifier
    expect(packages.map(subpath).filter((p) => !RUNTIME_PACKAGES.has(p))).toEqual([])
  })

  it("detects a value import, so the checks above can fail", () => {
    const found = importsOf(
      "web/src/x.ts",
      'import { ConsumeBody } from "../../src/http/schemas.js"\nimport type { A } from "./a.ts"\nimport { type B, C } from "./b.ts"\nexport { D } from "./d.ts"\nconst e = import("fastify")',
    )
    expect(found.map((i) => [i.specifier, i.typeOnly])).toEqual([
      ["../../src/http/schemas.js", false],
      ["./a.ts", true],
      ["./b.ts", false],
      ["./d.ts", false],
      ["fastify", false],
    ])
  })
})
