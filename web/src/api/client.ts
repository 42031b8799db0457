/**
 * A small fetch client for the omnimeter HTTP API: bearer key, JSON, and the one error envelope turned into
 * an ApiError that carries the code, the field to blame and the request id.
 */
import type { ErrorEnvelope } from "./types.ts"

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | undefined,
    readonly requestId: string | undefined,
  ) {
    super(message)
    this.name = "ApiError"
  }
}

function isEnvelope(value: unknown): value is ErrorEnvelope {
  if (typeof value !== "object" || value === null || !("error" in value)) return false
  const error = (value as { error: unknown }).error
  return typeof error === "object" && error !== null && "code" in error && "message" in error
}

export type Query = Record<string, string | number | undefined>

function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

/** A response whose non-2xx statuses are data, not errors (the consume endpoint's denials). */
export interface RawResponse<T> {
  status: number
  headers: Headers
  body: T
}

export interface Api {
  get<T>(path: string, query?: Query): Promise<T>
  put<T>(path: string, body: unknown): Promise<T>
  patch<T>(path: string, body: unknown): Promise<T>
  post<T>(path: string, body: unknown): Promise<T>
  /** DELETE; resolves with nothing on 204. */
  delete(path: string): Promise<void>
  /** POST answering every status with its parsed body; for endpoints whose denials are values. */
  postRaw<T>(path: string, body: unknown): Promise<RawResponse<T>>
  /** GET as CSV (`format=csv`): the file and the name the server gave it. */
  csv(path: string, query?: Query): Promise<{ blob: Blob; filename: string }>
}

async function parse(response: Response): Promise<unknown> {
  const text = await response.text()
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new ApiError(
      response.status,
      "invalid_response",
      `The server answered ${response.status} without JSON.`,
      undefined,
      response.headers.get("x-request-id") ?? undefined,
    )
  }
}

function failure(response: Response, body: unknown): ApiError {
  const requestId = response.headers.get("x-request-id") ?? undefined
  if (isEnvelope(body)) {
    return new ApiError(response.status, body.error.code, body.error.message, body.error.field, requestId)
  }
  return new ApiError(
    response.status,
    "http_error",
    `The server answered ${response.status}.`,
    undefined,
    requestId,
  )
}

/** A client that sends `key` as the bearer token. */
export function createApi(key: string, fetcher: typeof fetch = (...args) => fetch(...args)): Api {
  async function send(
    method: string,
    path: string,
    body?: unknown,
    accept = "application/json",
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, accept }
    if (body !== undefined) headers["content-type"] = "application/json"
    try {
      return await fetcher(path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      })
    } catch {
      throw new ApiError(
        0,
        "network_error",
        "The server could not be reached. Is omnimeter running?",
        undefined,
        undefined,
      )
    }
  }
  async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await send(method, path, body)
    const parsed = await parse(response)
    if (!response.ok) throw failure(response, parsed)
    return parsed as T
  }
  return {
    get: (path, query) => json("GET", withQuery(path, query)),
    put: (path, body) => json("PUT", path, body),
    patch: (path, body) => json("PATCH", path, body),
    post: (path, body) => json("POST", path, body),
    delete: async (path) => {
      await json<unknown>("DELETE", path)
    },
    async postRaw<T>(path: string, body: unknown) {
      const response = await send("POST", path, body)
      const parsed = await parse(response)
      if (response.status >= 500 || response.status === 400 || response.status === 401) {
        throw failure(response, parsed)
      }
      return { status: response.status, headers: response.headers, body: parsed as T }
    },
    async csv(path, query) {
      const response = await send("GET", withQuery(path, { ...query, format: "csv" }), undefined, "text/csv")
      if (!response.ok) throw failure(response, await parse(response))
      const disposition = response.headers.get("content-disposition") ?? ""
      const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "export.csv"
      return { blob: await response.blob(), filename }
    },
  }
}
