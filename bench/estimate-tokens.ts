/**
 * What `estimateTokens` costs per kB of text: the first call of an encoding (loading its ranks) and the
 * steady state, over chat-like English, code-like text and non-Latin text, per encoding, and the heap the
 * loaded ranks keep. Usage: npx tsx bench/estimate-tokens.ts [--rounds 200]
 */
import { performance } from "node:perf_hooks"
import { parseArgs } from "node:util"
import { estimateTokens, TOKEN_ENCODINGS } from "../src/index.js"

const { values } = parseArgs({ options: { rounds: { type: "string", default: "200" } } })
const rounds = Number(values.rounds)

const samples: Record<string, string> = {
  "English chat":
    "Hi! Where is my order #4821? It was supposed to arrive on Tuesday, and the tracking page still says 'label created'. Can you check with the courier and tell me when it will ship? Thanks a lot. ",
  "JSON and code":
    '{"order_id":4821,"items":[{"sku":"TSHIRT-M-BLK","qty":2,"price":19.99}],"status":"label_created"} function f(x) { return x * 2 } ',
  "random words (no cache hits)": "-",
  Japanese:
    "ご注文の商品はいつ届きますか？追跡ページにはまだ「ラベル作成済み」と表示されています。配送業者に確認していただけますか。",
}

/** Exactly 1,024 bytes of UTF-8, cut at a character boundary. */
function kilobyte(sample: string): string {
  let text = ""
  while (Buffer.byteLength(text) < 1024) text += sample
  while (Buffer.byteLength(text) > 1024) text = text.slice(0, -1)
  return text
}

/** 1 kB of random lowercase "words": nothing repeats, so the tokenizer's per-word merge cache never hits. */
function randomWords(seed: number): string {
  let x = seed * 2654435761 + 1
  let text = ""
  while (text.length < 1024) {
    x = (x * 1103515245 + 12345) % 2 ** 31
    const length = 3 + (x % 8)
    for (let i = 0; i < length; i += 1) {
      x = (x * 1103515245 + 12345) % 2 ** 31
      text += String.fromCharCode(97 + (x % 26))
    }
    text += " "
  }
  return text.slice(0, 1024)
}

const heapBefore = process.memoryUsage().heapUsed
console.log(`estimateTokens, ${rounds} rounds per cell, Node ${process.version}`)
console.log(
  "| encoding | first call (loads ranks) | text | tokens per kB | µs per kB (median) | µs per kB (p99) |",
)
console.log("| --- | ---: | --- | ---: | ---: | ---: |")
for (const encoding of TOKEN_ENCODINGS) {
  const started = performance.now()
  estimateTokens("warm up", { encoding })
  const first = performance.now() - started
  for (const [name, sample] of Object.entries(samples)) {
    const text = kilobyte(sample)
    // Distinct texts each round: the tokenizer's merge cache must not turn this into a lookup.
    const texts = Array.from({ length: rounds }, (_, i) =>
      name.startsWith("random words") ? randomWords(i + 1) : `${i} ${text}`.slice(0, text.length),
    )
    for (const t of texts.slice(0, 20)) estimateTokens(t, { encoding })
    const times: number[] = []
    let tokens = 0
    for (const t of texts) {
      const at = performance.now()
      tokens = estimateTokens(t, { encoding })
      times.push((performance.now() - at) * 1000)
    }
    times.sort((a, b) => a - b)
    const median = times[Math.floor(times.length / 2)] ?? Number.NaN
    const p99 = times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] ?? Number.NaN
    console.log(
      `| ${encoding} | ${first.toFixed(0)} ms | ${name} | ${tokens} | ${median.toFixed(0)} | ${p99.toFixed(0)} |`,
    )
  }
}
global.gc?.()
console.log(
  `heap after loading all four encodings: +${((process.memoryUsage().heapUsed - heapBefore) / 2 ** 20).toFixed(0)} MiB`,
)
