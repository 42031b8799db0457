// Copies what tsc does not: the SQL migrations, which the migrator reads next to its compiled module.
import { cpSync } from "node:fs"

cpSync("src/storage/migrations", "dist/storage/migrations", { recursive: true })
