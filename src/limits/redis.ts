/**
 * The sliding-window log of `rate-limiter.ts`, kept in Redis so that every instance shares one limit.
 *
 * Design note. Goals, in order: (1) exact: never more than the limit in any rolling 60 s window, however
 * many instances consume at once; (2) the same answers as `InProcessRateLimiter`, field for field, so
 * the two are interchangeable; (3) one round trip per decision; (4) nothing left behind by idle keys.
 *
 * - Atomicity: `consume` is one Lua script (prune, check both limits, record) and `release` another, so no
 *   two decisions on a key interleave. Scripts are run by EVALSHA, falling back to EVAL once per server
 *   when the script cache does not know them yet.
 * - Time: Redis server time (`TIME`) by default, so instances with skewed clocks still share one window.
 *   A `clock` passed in (tests) replaces it with the caller's `now()`.
 * - Layout, per limit key K: `<prefix>{K}`, a sorted set of grants (score = grant time in ms, member =
 *   `<time>-<seq>:<tokens>`, which is also the reservation id), and `<prefix>{K}:meta`, a hash holding the
 *   window's running token sum (`tokens`) and a grant counter (`seq`). The `{K}` hash tag puts both keys in
 *   one Redis Cluster slot, as a multi-key script requires.
 * - Invariants: `meta.tokens` equals the sum of the tokens encoded in the set's members (both change in the
 *   same script; it is reset to 0 whenever the set empties, so no rounding drift outlives a window). Every
 *   write sets a PEXPIRE of one window plus a second, so a key that goes quiet vanishes on its own.
 *   Reservation ids are unique: the counter is per key and the grant time tells apart the counters of keys
 *   that expired and came back.
 * - Trade-offs: the running sum costs a second key but keeps a grant O(log n) instead of summing the whole
 *   window; computing retry-after for a token denial walks the window, O(n) with n <= requests-per-minute.
 */
import { createHash } from "node:crypto"
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import type { Clock } from "../core/clock.js"
import {
  RATE_WINDOW_MS,
  type RateLimiter,
  type RateLimitRequest,
  type RateLimitResult,
} from "./rate-limiter.js"
import { keySlot } from "./slot.js"

/** Keys outlive the last grant by one window plus this margin, so that expiry never cuts a live window. */
const EXPIRY_MARGIN_MS = 1_000

/** Shared by both scripts: a member ends in ":<tokens>". */
const TOKENS_OF = `
local function tokensOf(member)
  return tonumber(string.match(member, ':([^:]*)$')) or 0
end
`

/**
 * One decision on one key: prune, check both limits, record. The arithmetic mirrors
 * InProcessRateLimiter.consume line for line. Returns {granted (1|0), reservation id or exceeded limit,
 * retryAfterMs, remaining, resetMs}.
 */
const CONSUME_ONE = `
local function consumeOne(log, meta, now, rpm, tpm, tokens, tokensText, window, expiry)
  local cutoff = now - window
  local used = tonumber(redis.call('HGET', meta, 'tokens')) or 0
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
  for _, member in ipairs(expired) do used = used - tokensOf(member) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff) end
  local count = redis.call('ZCARD', log)
  if count == 0 then used = 0 end
  if #expired > 0 then
    redis.call('HSET', meta, 'tokens', used)
    redis.call('PEXPIRE', meta, expiry)
  end

  local reset = window
  local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end

  if count + 1 > rpm then
    local retry = window
    local blocker = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
    if blocker[2] then retry = tonumber(blocker[2]) + window - now end
    return {0, 'requests_per_minute', math.max(1, retry), 0, reset}
  end

  if used + tokens > tpm then
    local retry = window
    if tokens <= tpm then
      local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
      local left = used
      for i = 1, #entries, 2 do
        left = left - tokensOf(entries[i])
        if left + tokens <= tpm then
          retry = math.max(1, tonumber(entries[i + 1]) + window - now)
          break
        end
      end
    end
    return {0, 'tokens_per_minute', retry, rpm - count, reset}
  end

  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local id = string.format('%d-%d:%s', now, seq, tokensText)
  redis.call('ZADD', log, now, id)
  redis.call('HSET', meta, 'tokens', used + tokens)
  redis.call('PEXPIRE', log, expiry)
  redis.call('PEXPIRE', meta, expiry)
  return {1, id, 0, rpm - count - 1, reset}
end

local function scriptNow(given)
  local now = tonumber(given)
  if now then return now end
  -- Before Redis 5, a script had to opt in to effects replication to write after reading the time.
  if redis.replicate_commands then redis.replicate_commands() end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`

/**
 * KEYS: log, meta. ARGV: now ("" for Redis server time), requestsPerMinute, tokensPerMinute, tokens,
 * windowMs, expiryMs.
 */
const CONSUME_LUA = `
${TOKENS_OF}
${CONSUME_ONE}
local now = scriptNow(ARGV[1])
return consumeOne(KEYS[1], KEYS[2], now, tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[4],
  tonumber(ARGV[5]), tonumber(ARGV[6]))
`

/**
 * Many decisions in one call, in the order given, each exactly as CONSUME_LUA would decide it alone.
 * KEYS: log1, meta1, log2, meta2, ... ARGV: now ("" for Redis server time), windowMs, expiryMs, then
 * requestsPerMinute, tokensPerMinute, tokens for each decision. Returns one CONSUME_LUA reply per decision.
 */
const CONSUME_MANY_LUA = `
${TOKENS_OF}
${CONSUME_ONE}
local now = scriptNow(ARGV[1])
local window, expiry = tonumber(ARGV[2]), tonumber(ARGV[3])
local replies = {}
for n = 1, #KEYS / 2 do
  local a = 3 + (n - 1) * 3
  replies[n] = consumeOne(KEYS[2 * n - 1], KEYS[2 * n], now, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), ARGV[a + 3], window, expiry)
end
return replies
`

/** KEYS: log, meta. ARGV: reservation id, expiryMs. Returns 1 when the reservation was still counted. */
const RELEASE_LUA = `
${TOKENS_OF}
local log, meta = KEYS[1], KEYS[2]
if redis.call('ZREM', log, ARGV[1]) == 0 then return 0 end
local used = (tonumber(redis.call('HGET', meta, 'tokens')) or 0) - tokensOf(ARGV[1])
if redis.call('ZCARD', log) == 0 then used = 0 end
redis.call('HSET', meta, 'tokens', used)
redis.call('PEXPIRE', meta, ARGV[2])
return 1
`

/** A single Redis server or a Redis Cluster: both run the same scripts, routed by their first key. */
export type RedisClient = Redis | Cluster

/** A Lua script run by its SHA1, loaded on the first NOSCRIPT (a fresh or restarted server, a new node). */
export class LuaScript {
  private readonly sha: string

  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex")
  }

  async run(redis: RedisClient, keys: string[], args: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args)
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error
      return redis.eval(this.source, keys.length, ...keys, ...args)
    }
  }
}

const consumeScript = new LuaScript(CONSUME_LUA)
const consumeManyScript = new LuaScript(CONSUME_MANY_LUA)
const releaseScript = new LuaScript(RELEASE_LUA)

export interface RedisRateLimiterOptions {
  /** The client to run on. The caller owns it: {@link RedisRateLimiter.close} leaves it open. */
  redis: RedisClient
  /** Prepended to every key; must not contain "{" or "}" (the hash tag is the limit key). */
  keyPrefix?: string
  /** Whose "now" to use. Omit it in production: Redis server time keeps every instance on one clock. */
  clock?: Clock
  /**
   * Send the decisions asked for in one event-loop turn as ONE script call (in the order asked, each
   * decided exactly as alone), instead of one call each: one round trip and one socket write per burst.
   * On a Redis Cluster client the burst is split by hash slot (a script's keys must share one slot): one
   * script call per slot, each to the node that owns it. Default false.
   */
  batch?: boolean
}

/** Most decisions in one batched script call. */
const MAX_BATCH = 128

interface PendingConsume {
  request: RateLimitRequest
  resolve: (result: RateLimitResult) => void
  reject: (error: unknown) => void
}

/**
 * Exact per-key rate limits shared by every instance on one Redis (or one Redis Cluster slot per key).
 * Answers exactly as `InProcessRateLimiter` does; see the design note at the top of this file.
 *
 * The limiter does not own its client: `close()` leaves it open, so one client can serve other uses too.
 *
 * @example
 * ```ts
 * const redis = createRedisClient("redis://127.0.0.1:6379")
 * const limiter = new RedisRateLimiter(redis)
 * const result = await limiter.consume({
 *   key: "sub_1:whatsapp",
 *   requestsPerMinute: 60,
 *   tokensPerMinute: 100_000,
 *   tokens: 800,
 * })
 * if (!result.granted) console.log(`retry in ${result.retryAfterMs} ms`)
 * await redis.quit()
 * ```
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: RedisClient
  private readonly cluster: boolean
  private readonly keyPrefix: string
  private readonly clock: Clock | undefined
  private readonly batch: boolean
  private pending: PendingConsume[] = []
  private flushScheduled = false

  constructor(client: RedisClient | RedisRateLimiterOptions) {
    const options = client instanceof Redis || client instanceof Cluster ? { redis: client } : client
    const keyPrefix = options.keyPrefix ?? "omnimeter:rl:"
    if (/[{}]/.test(keyPrefix))
      throw new TypeError(`keyPrefix must not contain "{" or "}" (got "${keyPrefix}")`)
    this.redis = options.redis
    this.cluster = options.redis instanceof Cluster
    this.keyPrefix = keyPrefix
    this.clock = options.clock
    this.batch = ("batch" in options ? options.batch : undefined) ?? false
  }

  consume(request: RateLimitRequest): Promise<RateLimitResult> {
    if (!this.batch) return this.consumeAlone(request)
    return new Promise((resolve, reject) => {
      this.pending.push({ request, resolve, reject })
      this.scheduleFlush()
    })
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const batch = this.pending.splice(0, MAX_BATCH)
      if (this.pending.length > 0) this.scheduleFlush()
      if (!this.cluster) {
        void this.consumeMany(batch)
        return
      }
      // Decisions on one key keep their order inside their slot's group; keys in different slots are
      // independent, so their groups may run in any order.
      const bySlot = new Map<number, PendingConsume[]>()
      for (const p of batch) {
        const slot = keySlot(this.keys(p.request.key)[0])
        const group = bySlot.get(slot)
        if (group) group.push(p)
        else bySlot.set(slot, [p])
      }
      for (const group of bySlot.values()) void this.consumeMany(group)
    })
  }

  /** One script call for the whole batch; a failed call fails each of its decisions (nothing was recorded). */
  private async consumeMany(batch: PendingConsume[]): Promise<void> {
    const [only] = batch
    if (batch.length === 1 && only) {
      await this.consumeAlone(only.request).then(only.resolve, only.reject)
      return
    }
    try {
      const reply = await consumeManyScript.run(
        this.redis,
        batch.flatMap((p) => this.keys(p.request.key)),
        [
          this.clock ? String(this.clock.now()) : "",
          RATE_WINDOW_MS,
          RATE_WINDOW_MS + EXPIRY_MARGIN_MS,
          ...batch.flatMap((p) => [p.request.requestsPerMinute, p.request.tokensPerMinute, p.request.tokens]),
        ],
      )
      if (!Array.isArray(reply) || reply.length !== batch.length) throw unexpectedReply(reply)
      const replies: unknown[] = reply
      for (const [i, p] of batch.entries()) {
        try {
          p.resolve(parseConsumeReply(replies[i], p.request.requestsPerMinute))
        } catch (error) {
          p.reject(error)
        }
      }
    } catch (error) {
      for (const p of batch) p.reject(error)
    }
  }

  private async consumeAlone(request: RateLimitRequest): Promise<RateLimitResult> {
    const reply = await consumeScript.run(this.redis, this.keys(request.key), [
      this.clock ? String(this.clock.now()) : "",
      request.requestsPerMinute,
      request.tokensPerMinute,
      request.tokens,
      RATE_WINDOW_MS,
      RATE_WINDOW_MS + EXPIRY_MARGIN_MS,
    ])
    return parseConsumeReply(reply, request.requestsPerMinute)
  }

  async release(key: string, reservationId: string): Promise<void> {
    await releaseScript.run(this.redis, this.keys(key), [reservationId, RATE_WINDOW_MS + EXPIRY_MARGIN_MS])
  }

  /** Does nothing: the client belongs to whoever passed it in. */
  async close(): Promise<void> {}

  /** The sorted set of grants and its companion hash, in one Cluster slot thanks to the `{key}` tag. */
  private keys(key: string): [log: string, meta: string] {
    const log = `${this.keyPrefix}{${key}}`
    return [log, `${log}:meta`]
  }
}

/** Turns the script's array reply into a result, refusing anything that is not the expected shape. */
function parseConsumeReply(reply: unknown, limit: number): RateLimitResult {
  if (!Array.isArray(reply) || reply.length !== 5) throw unexpectedReply(reply)
  const values: unknown[] = reply
  const [granted, detail, retryAfterMs, remaining, resetMs] = values
  if (
    typeof detail !== "string" ||
    typeof retryAfterMs !== "number" ||
    typeof remaining !== "number" ||
    typeof resetMs !== "number"
  )
    throw unexpectedReply(reply)
  if (granted === 1) return { granted: true, reservationId: detail, limit, remaining, resetMs }
  if (granted === 0 && (detail === "requests_per_minute" || detail === "tokens_per_minute"))
    return { granted: false, exceeded: detail, retryAfterMs, limit, remaining, resetMs }
  throw unexpectedReply(reply)
}

function unexpectedReply(reply: unknown): Error {
  return new Error(`unexpected reply from the rate limit script: ${JSON.stringify(reply)}`)
}

export interface RedisClientOptions {
  /**
   * A command with no answer after this long fails (ioredis `commandTimeout`); match it to the resilient
   * limiter's deadline. Default 3000 ms: a busy Redis is slow, not lost.
   */
  deadlineMs?: number
  /** Use ioredis's `Cluster` even for one URL (it then discovers the other nodes). Several URLs always do. */
  cluster?: boolean
  /** Replaces any option below, on the single-node client or on each cluster node's connection. */
  overrides?: RedisOptions
}

/**
 * An ioredis client tuned for rate limiting: when Redis is down or unreachable, commands fail quickly
 * instead of queueing until it returns, so `ResilientRateLimiter` can answer from its fallback. `urls`
 * is one `redis://` (or `rediss://`) URL, or several: several URLs, or `cluster: true`, build a Redis
 * Cluster client seeded with those nodes (credentials and TLS from the first URL). The options, and why:
 * - `enableOfflineQueue: false`: while disconnected, a command fails at once rather than waiting.
 * - `maxRetriesPerRequest: 1`: a command caught by a dropped connection fails after one reconnect attempt.
 * - `autoResendUnfulfilledCommands: false`: a consume whose caller has already been answered must not be
 *   replayed after a reconnect (it would record a grant that nobody received).
 * - `connectTimeout` 1 s: a connection attempt to a dead host gives up quickly.
 * - `commandTimeout` = `deadlineMs` (default 3 s): a half-open socket or a hung server cannot hold a
 *   command forever, while a merely slow server still answers.
 * - `retryStrategy`: reconnect forever, backing off to one attempt every 2 s.
 *
 * Commands sent before the first connection is ready fail too: await the client's `"ready"` event at
 * start-up, or accept that the first calls are answered by the fallback.
 *
 * Connection errors are not logged here: every failed command rejects, and the resilient limiter reports
 * the switches it causes. Attach your own `"error"` listener to log them. The caller owns the client and
 * calls `quit()` on shutdown.
 *
 * @example
 * ```ts
 * const redis = createRedisClient(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]) // a Cluster
 * const limiter = new ResilientRateLimiter({ primary: new RedisRateLimiter({ redis, batch: true }) })
 * // on shutdown
 * await limiter.close()
 * await redis.quit()
 * ```
 */
export function createRedisClient(
  urls: string | readonly string[],
  options: RedisClientOptions = {},
): RedisClient {
  const list = typeof urls === "string" ? [urls] : [...urls]
  const [first] = list
  if (first === undefined) throw new TypeError("createRedisClient needs at least one URL")
  const deadlineMs = options.deadlineMs ?? 3_000
  const connection: RedisOptions = {
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 1_000,
    commandTimeout: deadlineMs,
  }
  let client: RedisClient
  if (list.length > 1 || options.cluster) {
    const seed = new URL(first)
    const clusterOptions: ClusterOptions = {
      enableOfflineQueue: false,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
      // A node that restarts on the same address is reconnected to, not forgotten until the next MOVED.
      clusterNodeRetryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
      slotsRefreshTimeout: deadlineMs,
      redisOptions: {
        ...connection,
        ...(seed.username ? { username: decodeURIComponent(seed.username) } : {}),
        ...(seed.password ? { password: decodeURIComponent(seed.password) } : {}),
        ...(seed.protocol === "rediss:" ? { tls: {} } : {}),
        ...options.overrides,
      },
    }
    client = new Cluster(
      list.map((url) => {
        const parsed = new URL(url)
        return { host: parsed.hostname, port: Number(parsed.port || 6379) }
      }),
      clusterOptions,
    )
  } else {
    client = new Redis(first, {
      ...connection,
      enableOfflineQueue: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
      ...options.overrides,
    })
  }
  // Without a listener ioredis prints every reconnect failure; failures surface as rejected commands.
  client.on("error", () => {})
  return client
}
