// Copies what tsc does not: the SQL migrations and the database functions they include, which the migrator
// reads next to its compiled module.
import { cpSync } from "node:fs"

cpSync("src/storage/migrations", "dist/storage/migrations", { recursive: true })
cpSync("src/storage/functions", "dist/storage/functions", { recursive: true })
