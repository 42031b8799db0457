/**
 * The dashboard's production bundle, measured: builds web/ into a scratch directory and prints each file's
 * raw and gzip size, the initial load (what the first page needs) and the lazy tokenizer chunk (loaded only
 * by the playground). Also what the server sends since it compresses (src/http/app.ts, @fastify/compress):
 * brotli at quality 4 and gzip at zlib's default level, the plugin's settings. Run: npx tsx bench/dashboard-size.ts
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { brotliCompressSync, constants, gzipSync } from "node:zlib"
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
    return {
      file,
      raw: statSync(join(outDir, file)).size,
      gzip: gzipSync(bytes, { level: 9 }).length,
      sentGzip: gzipSync(bytes).length,
      sentBr: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }).length,
    }
  })
  const kb = (n: number) => `${(n / 1024).toFixed(1)} kB`
  const lazy = (file: string) => file.includes("o200k_base")
  const sum = (pick: (f: string) => boolean) =>
    rows
      .filter((r) => pick(r.file))
      .reduce(
        (t, r) => ({
          raw: t.raw + r.raw,
          gzip: t.gzip + r.gzip,
          sentGzip: t.sentGzip + r.sentGzip,
          sentBr: t.sentBr + r.sentBr,
        }),
        { raw: 0, gzip: 0, sentGzip: 0, sentBr: 0 },
      )
  const line = (name: string, r: { raw: number; gzip: number; sentGzip: number; sentBr: number }) =>
    `| ${name} | ${kb(r.raw)} | ${kb(r.gzip)} | ${kb(r.sentGzip)} | ${kb(r.sentBr)} |`
  console.log("| file | raw | gzip -9 | sent, gzip | sent, br |\n| --- | ---: | ---: | ---: | ---: |")
  for (const r of rows) console.log(line(r.file.replace(/-[\w-]{8}\./, "-<hash>."), r))
  console.log(
    line(
      "**initial load** (html + js + css)",
      sum((f) => !lazy(f)),
    ),
  )
  console.log(line("**tokenizer, lazy** (playground only)", sum(lazy)))
} finally {
  rmSync(outDir, { recursive: true, force: true })
}
