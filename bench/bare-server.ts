// The ceiling: a bare Fastify route that parses a JSON body and answers, nothing else.
import Fastify from "fastify"

const app = Fastify({ logger: false })
app.post("/bare", async (request) => ({
  allowed: true,
  echo: (request.body as { entity_id?: string }).entity_id,
}))
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 18181) })
process.stdout.write("ready\n")
