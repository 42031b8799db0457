/**
 * Writes the OpenAPI document the server serves to docs/openapi.json, and the TypeScript client's types
 * generated from it (openapi-typescript) to src/client/schema.ts. Run after changing a route:
 * `npm run openapi`. The tests fail while either file differs from what the live server documents.
 */
import { writeFile } from "node:fs/promises"
import { generatedClientTypes, liveOpenApiDocument } from "../test/support/openapi-document.js"

const document = await liveOpenApiDocument()
await writeFile("docs/openapi.json", `${JSON.stringify(document, null, 2)}\n`)
await writeFile("src/client/schema.ts", await generatedClientTypes(document))
console.log("wrote docs/openapi.json and src/client/schema.ts")
