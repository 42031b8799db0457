/**
 * The dashboard: the React app built into web/dist (`npm run build:web`), served by this same server at `/`.
 * Hashed assets are cached for a year; index.html is revalidated on every load so a new build shows at once.
 * The files are listed when the server starts (one route each), so a rebuilt dashboard shows after a restart.
 * Any other GET for a page (an unknown path outside the API that accepts HTML) answers index.html, so a
 * reload on /configuration works; the API, docs, OpenAPI and metrics paths keep their 404 envelope.
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import fastifyStatic from "@fastify/static"
import type { FastifyReply, FastifyRequest } from "fastify"
import type { App } from "./types.js"

/** Where `npm run build:web` writes the dashboard: web/dist at the package root (from src/http or dist/http). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL("../../web/dist", import.meta.url))

/** Paths that belong to the service, never to the dashboard's client-side routes. */
const SERVICE_PATH = /^\/(api|docs|openapi\.json|metrics|healthz|readyz)(\/|$)/

/**
 * The dashboard's pages may load only this server's own scripts, styles and API: no inline script, no third
 * party. React sets style properties through the DOM, which a style-src of 'self' allows.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

function pageHeaders(reply: FastifyReply): void {
  reply.header("Cache-Control", "no-cache")
  reply.header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
  reply.header("X-Content-Type-Options", "nosniff")
  reply.header("Referrer-Policy", "no-referrer")
}

/** Whether `dir` holds a built dashboard. */
export function dashboardBuilt(dir: string | false = DEFAULT_DASHBOARD_DIR): boolean {
  return dir !== false && existsSync(join(dir, "index.html"))
}

/** Serves the built dashboard from `dir` when it holds an index.html; answers whether it does. */
export async function registerDashboard(app: App, dir: string): Promise<boolean> {
  if (!dashboardBuilt(dir)) return false
  await app.register(fastifyStatic, {
    root: dir,
    prefix: "/",
    wildcard: false,
    index: ["index.html"],
    cacheControl: false,
    setHeaders: (reply, path) => {
      if (path.endsWith(".html")) pageHeaders(reply)
      else if (path.includes(`${join(dir, "assets")}`)) {
        reply.header("Cache-Control", "public, max-age=31536000, immutable")
      } else reply.header("Cache-Control", "public, max-age=3600")
    },
  })
  return true
}

/** True for a browser asking for one of the dashboard's client-side routes. */
export function isDashboardPage(request: FastifyRequest): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false
  const path = request.url.split("?")[0] ?? "/"
  if (SERVICE_PATH.test(path) || path.startsWith("/assets/")) return false
  const accept = request.headers.accept ?? ""
  return accept.includes("text/html")
}

/** Answers a client-side route with the dashboard's index.html. */
export function sendDashboardPage(reply: FastifyReply): FastifyReply {
  pageHeaders(reply)
  return reply.type("text/html; charset=utf-8").sendFile("index.html")
}
