/**
 * Configuration, parsed from the environment once at start-up into a frozen object. Start-up fails fast
 * naming the bad variable. Tests build a Config directly instead of touching process.env.
 */
import { priorityCurveProblem } from "./core/capacity.js"
import { OmnimeterError } from "./core/errors.js"
import { DEFAULT_CURRENCY, isCurrencyCode } from "./core/money.js"
import { isValidTimeZone } from "./core/subscription.js"
import { METER_DEFAULTS } from "./meter/defaults.js"

export interface Config {
  host: string
  port: number
  /** PostgreSQL; absent means the embedded PGlite database in `dataDir`. */
  databaseUrl: string | undefined
  /** Redis for rate limits shared by many instances, as given; absent means the in-process limiter. */
  redisUrl: string | undefined
  /** The node URLs of `REDIS_URL` (comma-separated); several mean a Redis Cluster. Empty without Redis. */
  redisUrls: readonly string[]
  /** Talk to Redis through ioredis's Cluster client (always when `REDIS_URL` lists several nodes). */
  redisCluster: boolean
  /** A Redis call with no answer after this long counts as Redis unreachable (slower is only slow). */
  redisDeadlineMs: number
  /** How many instances share the rate limits, for the fallback's fair share; absent: the Redis heartbeat. */
  instances: number | undefined
  /** While Redis is unreachable: per-instance limits ("fallback"), refuse every turn, or allow every turn. */
  redisFailurePolicy: "fallback" | "deny" | "allow"
  /** Prepended to every Redis key, so several deployments (or test runs) can share one Redis. */
  redisKeyPrefix: string
  /** Send the rate-limit decisions of one event-loop turn as one script call (one per slot on a Cluster). */
  redisBatch: boolean
  dataDir: string
  /** The embedded database's buffer cache (its shared_buffers), in MiB; more speeds large reads, costs RSS. */
  embeddedSharedBuffersMb: number
  /** The operator's admin key; when absent one is generated at first start and shown once. */
  adminKey: string | undefined
  /** Largest body of POST /api/tokens/consume, in bytes (it may carry the user's message). */
  bodyLimitBytes: number
  /** Largest JSON body of every other call, in bytes. */
  jsonBodyLimitBytes: number
  /** Largest NDJSON body of POST /api/usage/import, in bytes, counted while it streams. */
  importBodyLimitBytes: number
  /** A request (headers and body) must arrive within this; 0 is never (Node's requestTimeout). */
  requestTimeoutMs: number
  /** The headers must arrive within this (Node's headersTimeout); at most requestTimeoutMs. */
  headersTimeoutMs: number
  /** An idle keep-alive connection is closed after this (Node's keepAliveTimeout). */
  keepAliveTimeoutMs: number
  /** A connection with no traffic either way is closed after this (Node's server.timeout). */
  socketTimeoutMs: number
  /** PostgreSQL connection pool size. */
  poolSize: number
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent"
  /** Timezone used when a subscription is created without one. */
  defaultTimezone: string
  /** The operator's ISO 4217 currency: the price list, turn costs and outcome values are in it. */
  currency: string
  /** Allow webhook receivers on loopback and private networks (off: SSRF care for tenant-given URLs). */
  webhookAllowPrivate: boolean
  /** Each webhook request must finish within this. */
  webhookTimeoutMs: number
  /**
   * How long a turn's subscription context is reused from memory (0: off). Changes made through another
   * instance apply within this bound; quota is always exact in the database. Unset: 1 s on PostgreSQL,
   * 60 s on embedded PGlite (one process owns its data directory, so every change goes through it).
   */
  contextCacheTtlMs: number | undefined
  /**
   * A journeys answer that takes at least this long to compute is stored and served up to 5 minutes old
   * (analytics/journeys.ts); quicker ones are computed on every read.
   */
  journeysStoreAfterMs: number
  /** Group commit: most turns per batch statement. */
  groupCommitMaxBatch: number
  /** Group commit: most batch statements in flight at once (PostgreSQL; PGlite always runs one). */
  groupCommitInFlight: number
  /**
   * Ledger retention: full months of raw ledger rows kept before the current UTC month; older monthly
   * partitions are dropped (analytics rollups and quota counters are kept). 0 keeps everything.
   */
  ledgerRetentionMonths: number
  /**
   * A capacity shared by every subscription of the deployment (e.g. the provider's TPM limit), shed by
   * channel priority; absent when neither OMNIMETER_CAPACITY_REQUESTS_PER_MINUTE nor
   * OMNIMETER_CAPACITY_TOKENS_PER_MINUTE is set. Shared across instances through Redis only.
   */
  operatorCapacity:
    | { requestsPerMinute: number | null; tokensPerMinute: number | null; priorityCurve: number[] | null }
    | undefined
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const

function bad(variable: string, message: string): never {
  throw new OmnimeterError("validation_error", `${variable}: ${message}`, { field: variable })
}

function integer(
  env: NodeJS.ProcessEnv,
  variable: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[variable]
  if (raw === undefined || raw === "") return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max)
    bad(variable, `must be an integer from ${min} to ${max}, got "${raw}"`)
  return value
}

function boolean(env: NodeJS.ProcessEnv, variable: string, fallback: boolean): boolean {
  const raw = env[variable]
  if (raw === undefined || raw === "") return fallback
  if (raw === "true" || raw === "1") return true
  if (raw === "false" || raw === "0") return false
  return bad(variable, `must be true or false, got "${raw}"`)
}

function url(env: NodeJS.ProcessEnv, variable: string, protocols: string[]): string | undefined {
  const raw = env[variable]
  if (raw === undefined || raw === "") return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    return bad(variable, "is not a valid URL")
  }
  if (!protocols.includes(parsed.protocol)) bad(variable, `must start with ${protocols.join(" or ")}`)
  return raw
}

/** Comma-separated redis:// or rediss:// URLs, one per node; all with one scheme. */
function redisUrls(env: NodeJS.ProcessEnv): string[] {
  const raw = env.REDIS_URL
  if (raw === undefined || raw.trim() === "") return []
  const urls = raw.split(",").map((part) => part.trim())
  const protocols = new Set<string>()
  for (const [i, part] of urls.entries()) {
    if (part === "") bad("REDIS_URL", `node ${i + 1} of ${urls.length} is empty`)
    url({ REDIS_URL: part }, "REDIS_URL", ["redis:", "rediss:"])
    protocols.add(new URL(part).protocol)
  }
  if (protocols.size > 1) bad("REDIS_URL", "mixes redis:// and rediss:// nodes")
  return urls
}

/** The deployment-wide capacity and its priority curve ("50,56,...,100", ten non-decreasing percents). */
function operatorCapacity(env: NodeJS.ProcessEnv): Config["operatorCapacity"] {
  const optional = (variable: string) => (env[variable] ? integer(env, variable, 1, 1, 1_000_000_000) : null)
  const requestsPerMinute = optional("OMNIMETER_CAPACITY_REQUESTS_PER_MINUTE")
  const tokensPerMinute = optional("OMNIMETER_CAPACITY_TOKENS_PER_MINUTE")
  const rawCurve = env.OMNIMETER_CAPACITY_PRIORITY_CURVE
  let priorityCurve: number[] | null = null
  if (rawCurve) {
    priorityCurve = rawCurve.split(",").map((part) => Number(part.trim()))
    const problem = priorityCurveProblem(priorityCurve)
    if (problem) bad("OMNIMETER_CAPACITY_PRIORITY_CURVE", problem)
  }
  if (requestsPerMinute === null && tokensPerMinute === null) {
    if (priorityCurve) bad("OMNIMETER_CAPACITY_PRIORITY_CURVE", "needs a capacity to apply to")
    return undefined
  }
  return Object.freeze({ requestsPerMinute, tokensPerMinute, priorityCurve })
}

/** Reads the configuration from `env` (default `process.env`). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const logLevel = env.LOG_LEVEL || "info"
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    bad("LOG_LEVEL", `must be one of ${LOG_LEVELS.join(", ")}`)
  const adminKey = env.OMNIMETER_ADMIN_KEY || undefined
  if (adminKey !== undefined && adminKey.length < 24)
    bad("OMNIMETER_ADMIN_KEY", "must be at least 24 characters")
  const redisFailurePolicy = env.OMNIMETER_REDIS_FAILURE_POLICY || "fallback"
  if (!["fallback", "deny", "allow"].includes(redisFailurePolicy)) {
    bad("OMNIMETER_REDIS_FAILURE_POLICY", "must be fallback, deny or allow")
  }
  const redisKeyPrefix = env.OMNIMETER_REDIS_KEY_PREFIX || "omnimeter:rl:"
  if (/[{}\s]/.test(redisKeyPrefix) || redisKeyPrefix.length > 100)
    bad("OMNIMETER_REDIS_KEY_PREFIX", "must be at most 100 characters, without braces or spaces")
  const redisBatch = env.OMNIMETER_REDIS_BATCH || "true"
  if (!["true", "false"].includes(redisBatch)) bad("OMNIMETER_REDIS_BATCH", "must be true or false")
  const urls = redisUrls(env)
  const requestTimeoutMs = integer(env, "OMNIMETER_REQUEST_TIMEOUT_MS", 300_000, 1000, 3_600_000)
  const headersTimeoutMs = integer(env, "OMNIMETER_HEADERS_TIMEOUT_MS", 10_000, 500, 600_000)
  if (headersTimeoutMs > requestTimeoutMs)
    bad("OMNIMETER_HEADERS_TIMEOUT_MS", "must not be longer than OMNIMETER_REQUEST_TIMEOUT_MS")
  const defaultTimezone = env.OMNIMETER_DEFAULT_TIMEZONE || METER_DEFAULTS.defaultTimezone
  if (!isValidTimeZone(defaultTimezone))
    bad("OMNIMETER_DEFAULT_TIMEZONE", `unknown IANA timezone "${defaultTimezone}"`)
  const currency = env.OMNIMETER_CURRENCY || DEFAULT_CURRENCY
  if (!isCurrencyCode(currency)) bad("OMNIMETER_CURRENCY", `"${currency}" is not an ISO 4217 currency code`)
  return Object.freeze({
    host: env.HOST || "127.0.0.1",
    port: integer(env, "PORT", 8080, 0, 65535),
    databaseUrl: url(env, "DATABASE_URL", ["postgres:", "postgresql:"]),
    redisUrl: urls.length > 0 ? env.REDIS_URL : undefined,
    redisUrls: Object.freeze(urls),
    redisCluster: urls.length > 1 || boolean(env, "OMNIMETER_REDIS_CLUSTER", false),
    redisDeadlineMs: integer(env, "OMNIMETER_REDIS_DEADLINE_MS", 3_000, 100, 60_000),
    instances: env.OMNIMETER_INSTANCES ? integer(env, "OMNIMETER_INSTANCES", 1, 1, 10_000) : undefined,
    redisFailurePolicy: redisFailurePolicy as Config["redisFailurePolicy"],
    redisKeyPrefix,
    redisBatch: redisBatch === "true",
    dataDir: env.OMNIMETER_DATA_DIR || "./.omnimeter",
    embeddedSharedBuffersMb: integer(env, "OMNIMETER_EMBEDDED_SHARED_BUFFERS_MB", 16, 1, 65_536),
    adminKey,
    bodyLimitBytes: integer(env, "OMNIMETER_BODY_LIMIT_BYTES", 1_048_576, 1024, 1_073_741_824),
    jsonBodyLimitBytes: integer(env, "OMNIMETER_JSON_BODY_LIMIT_BYTES", 65_536, 1024, 1_073_741_824),
    importBodyLimitBytes: integer(
      env,
      "OMNIMETER_IMPORT_BODY_LIMIT_BYTES",
      268_435_456,
      1024,
      Number.MAX_SAFE_INTEGER,
    ),
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: integer(env, "OMNIMETER_KEEP_ALIVE_TIMEOUT_MS", 72_000, 100, 600_000),
    socketTimeoutMs: integer(env, "OMNIMETER_SOCKET_TIMEOUT_MS", 60_000, 1000, 3_600_000),
    poolSize: integer(env, "OMNIMETER_POOL_SIZE", 20, 1, 1000),
    logLevel: logLevel as Config["logLevel"],
    defaultTimezone,
    currency,
    webhookAllowPrivate: boolean(env, "OMNIMETER_WEBHOOK_ALLOW_PRIVATE", false),
    webhookTimeoutMs: integer(env, "OMNIMETER_WEBHOOK_TIMEOUT_MS", 10_000, 100, 60_000),
    journeysStoreAfterMs: integer(env, "OMNIMETER_JOURNEYS_STORE_AFTER_MS", 1000, 0, 3_600_000),
    contextCacheTtlMs: env.OMNIMETER_CONTEXT_CACHE_MS
      ? integer(env, "OMNIMETER_CONTEXT_CACHE_MS", 1000, 0, 600_000)
      : undefined,
    groupCommitMaxBatch: integer(
      env,
      "OMNIMETER_GROUP_COMMIT_MAX_BATCH",
      METER_DEFAULTS.groupCommitMaxBatch,
      1,
      10_000,
    ),
    groupCommitInFlight: integer(
      env,
      "OMNIMETER_GROUP_COMMIT_IN_FLIGHT",
      METER_DEFAULTS.groupCommitInFlight,
      1,
      64,
    ),
    ledgerRetentionMonths: integer(env, "OMNIMETER_LEDGER_RETENTION_MONTHS", 0, 0, 1200),
    operatorCapacity: operatorCapacity(env),
  })
}
