/**
 * The dashboard's production bundle, measured: builds web/ into a scratch directory and prints each file's
 * raw and gzip size, the initial load (what the first page needs) and the lazy tokenizer chunk (loaded only
 * by the playground). Run: npx tsx bench/dashboard-size.ts
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { gzipSync } from "node:zlib"
import { build } from "vite"

const outDir = mkdtempSync(join(tmpdir(), "omnimeter-web-size-"))
try {
  await build({
    configFile: resolve("web/vite.config.ts"),
    root: resolve("web"),
    logLevel: "warn",
    build: { outDir, emptyOutDir: true },
  })
  const files = ["index.html", ...readdirSync(join(outDir, "assets")).map((f) => `assets/${f}`)]
  const rows = files.map((file) => {
    const bytes = readFileSync(join(outDir, file))
    return { file, raw: statSync(join(outDir, file)).size, gzip: gzipSync(bytes, { level: 9 }).length }
  })
  const kb = (n: number) => `${(n / 1024).toFixed(1)} kB`
  const lazy = (file: string) => file.includes("o200k_base")
  const sum = (pick: (f: string) => boolean) =>
    rows
      .filter((r) => pick(r.file))
      .reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip }), { raw: 0, gzip: 0 })
  console.log("| file | raw | gzip |\n| --- | ---: | ---: |")
  for (const r of rows)
    console.log(`| ${r.file.replace(/-[\w-]{8}\./, "-<hash>.")} | ${kb(r.raw)} | ${kb(r.gzip)} |`)
  const initial = sum((f) => !lazy(f))
  const tokenizer = sum(lazy)
  console.log(`| **initial load** (html + js + css) | ${kb(initial.raw)} | ${kb(initial.gzip)} |`)
  console.log(`| **tokenizer, lazy** (playground only) | ${kb(tokenizer.raw)} | ${kb(tokenizer.gzip)} |`)
} finally {
  rmSync(outDir, { recursive: true, force: true })
}
