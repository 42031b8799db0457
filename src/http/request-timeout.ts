/**
 * A route that streams its body (the import) may answer a request timeout itself: Node's default is to
 * write a bare 408 and close the connection, which would lose what the import had already committed. The
 * route registers a handler for its raw request; the server's clientError handler calls it instead of
 * answering, and the route then answers in the envelope with its report and closes the connection.
 */
import type { IncomingMessage } from "node:http"

const handlers = new WeakMap<IncomingMessage, () => void>()

/**
 * Calls `handler` when `request`'s request timeout passes, instead of answering a bare 408.
 * @example onRequestTimeout(request.raw, () => body.destroy(new OmnimeterError("request_timeout", "...")))
 */
export function onRequestTimeout(request: IncomingMessage, handler: () => void): void {
  handlers.set(request, handler)
}

/** Runs the handler registered for `request`, if any; true when there was one. */
export function handleRequestTimeout(request: IncomingMessage | undefined): boolean {
  const handler = request && handlers.get(request)
  if (!handler) return false
  handlers.delete(request)
  handler()
  return true
}
