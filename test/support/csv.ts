/** CSV as the exports write it, read back by a parser of the tests' own. */

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF), independently of the exporter. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ""
  let quoted = false
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i += 1
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ",") {
      row.push(field)
      field = ""
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field)
      rows.push(row)
      row = []
      field = ""
      i += 1
    } else field += c
  }
  if (field !== "" || row.length > 0) rows.push([...row, field])
  return rows
}
