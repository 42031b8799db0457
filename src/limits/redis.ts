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
 * One decision over one or more windows: the channel's own (first), then any shared windows (a
 * subscription's or the deployment's capacity, at the thresholds of the turn's priority). Prune each, check
 * each in order, and record the grant in all of them or in none. The arithmetic mirrors
 * InProcessRateLimiter.consume line for line. A limit below 0 means "no limit of that kind". Returns
 * {granted (1|0), reservation id or exceeded limit, retryAfterMs, remaining, resetMs, shared index or -1}.
 */
const CONSUME_WINDOWS = `
local function pruneWindow(log, meta, now, window, expiry)
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
  return count, used
end

local function checkWindow(log, count, used, now, rpm, tpm, tokens, window)
  if rpm >= 0 and count + 1 > rpm then
    local retry = window
    local blocker = redis.call('ZRANGE', log, count - rpm, count - rpm, 'WITHSCORES')
    if blocker[2] then retry = tonumber(blocker[2]) + window - now end
    return 'requests_per_minute', math.max(1, retry)
  end
  if tpm >= 0 and used + tokens > tpm then
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
    return 'tokens_per_minute', retry
  end
  return nil, 0
end

-- keys[base + 2w - 1], keys[base + 2w]: window w's log and meta; limits[2w - 1], limits[2w]: its limits.
local function consumeWindows(keys, base, limits, n, tokens, tokensText, now, window, expiry)
  local counts, useds = {}, {}
  for w = 1, n do
    counts[w], useds[w] = pruneWindow(keys[base + 2 * w - 1], keys[base + 2 * w], now, window, expiry)
  end
  local channelLog = keys[base + 1]
  local reset = window
  local oldest = redis.call('ZRANGE', channelLog, 0, 0, 'WITHSCORES')
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  local rpm = limits[1]
  for w = 1, n do
    local exceeded, retry = checkWindow(keys[base + 2 * w - 1], counts[w], useds[w], now, limits[2 * w - 1],
      limits[2 * w], tokens, window)
    if exceeded then
      local remaining = rpm - counts[1]
      if w == 1 and exceeded == 'requests_per_minute' then remaining = 0 end
      return {0, exceeded, retry, remaining, reset, w - 2}
    end
  end
  local seq = redis.call('HINCRBY', keys[base + 2], 'seq', 1)
  local id
  if n == 1 then
    id = string.format('%d-%d:%s', now, seq, tokensText)
  else
    -- Unique in every shared window too: the channel's log name tells apart the counters of its channels.
    id = string.format('%d-%d@%s:%s', now, seq, channelLog, tokensText)
  end
  for w = 1, n do
    local log, meta = keys[base + 2 * w - 1], keys[base + 2 * w]
    redis.call('ZADD', log, now, id)
    redis.call('HSET', meta, 'tokens', useds[w] + tokens)
    redis.call('PEXPIRE', log, expiry)
    redis.call('PEXPIRE', meta, expiry)
  end
  return {1, id, 0, rpm - counts[1] - 1, reset, -1}
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
 * Decisions in one call, in the order given, each exactly as alone. KEYS: each decision's windows' log and
 * meta, channel first. ARGV: now ("" for Redis server time), windowMs, expiryMs, then for each decision:
 * its window count n, its tokens, and n pairs of (requests, tokens) limits (-1: none). Returns one
 * consumeWindows reply per decision.
 */
const CONSUME_MANY_LUA = `
${TOKENS_OF}
${CONSUME_WINDOWS}
local now = scriptNow(ARGV[1])
local window, expiry = tonumber(ARGV[2]), tonumber(ARGV[3])
local replies = {}
local a, base = 4, 0
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local tokensText = ARGV[a + 1]
  local limits = {}
  for j = 1, 2 * n do limits[j] = tonumber(ARGV[a + 1 + j]) end
  replies[#replies + 1] = consumeWindows(KEYS, base, limits, n, tonumber(tokensText), tokensText, now, window,
    expiry)
  a = a + 2 + 2 * n
  base = base + 2 * n
end
return replies
`

/**
 * KEYS: pairs of log, meta. ARGV: reservation id, expiryMs. Removes the grant from every window that still
 * counts it. Returns how many did.
 */
const RELEASE_LUA = `
${TOKENS_OF}
local released = 0
for w = 1, #KEYS / 2 do
  local log, meta = KEYS[2 * w - 1], KEYS[2 * w]
  if redis.call('ZREM', log, ARGV[1]) == 1 then
    local used = (tonumber(redis.call('HGET', meta, 'tokens')) or 0) - tokensOf(ARGV[1])
    if redis.call('ZCARD', log) == 0 then used = 0 end
    redis.call('HSET', meta, 'tokens', used)
    redis.call('PEXPIRE', meta, ARGV[2])
    released = released + 1
  end
end
return released
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
    // On a Cluster, a turn's windows live in different slots: one script cannot hold them all.
    if (this.cluster && (request.shared?.length ?? 0) > 0) return this.consumeAcrossSlots(request)
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
    try {
      const replies = await this.runDecisions(batch.map((p) => p.request))
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
    const [reply] = await this.runDecisions([request])
    return parseConsumeReply(reply, request.requestsPerMinute)
  }

  /** Runs decisions in one script call; returns one raw reply per decision. */
  private async runDecisions(requests: readonly RateLimitRequest[]): Promise<unknown[]> {
    const keys: string[] = []
    const args: Array<string | number> = [
      this.clock ? String(this.clock.now()) : "",
      RATE_WINDOW_MS,
      RATE_WINDOW_MS + EXPIRY_MARGIN_MS,
    ]
    for (const request of requests) {
      const shared = request.shared ?? []
      keys.push(...this.keys(request.key), ...shared.flatMap((w) => this.keys(w.key)))
      args.push(1 + shared.length, request.tokens, request.requestsPerMinute, request.tokensPerMinute)
      for (const w of shared) args.push(w.requestsPerMinute ?? -1, w.tokensPerMinute ?? -1)
    }
    const reply = await consumeManyScript.run(this.redis, keys, args)
    if (!Array.isArray(reply) || reply.length !== requests.length) throw unexpectedReply(reply)
    return reply
  }

  /**
   * A Redis Cluster with shared windows: each window in its own slot, so each is decided by its own script
   * call, in order (the channel's first), and a later denial gives the earlier grants back. Never more than
   * a limit in any window (every grant is checked where it is recorded); two turns racing at a threshold
   * may both be refused where one would have passed. The reservation id lists one id per window.
   */
  private async consumeAcrossSlots(request: RateLimitRequest): Promise<RateLimitResult> {
    const shared = request.shared ?? []
    const own = await this.consumeAlone({ ...request, shared: [] })
    if (!own.granted) return own
    const ids = [own.reservationId]
    for (const [index, window] of shared.entries()) {
      const result = await this.consumeAlone({
        key: window.key,
        requestsPerMinute: window.requestsPerMinute ?? Number.MAX_SAFE_INTEGER,
        tokensPerMinute: window.tokensPerMinute ?? Number.MAX_SAFE_INTEGER,
        tokens: request.tokens,
      })
      if (!result.granted) {
        await this.release(
          request.key,
          ids.join(","),
          shared.map((w) => w.key),
        )
        return {
          granted: false,
          exceeded: result.exceeded,
          retryAfterMs: result.retryAfterMs,
          sharedIndex: index,
          limit: own.limit,
          remaining: own.remaining + 1,
          resetMs: own.resetMs,
        }
      }
      ids.push(result.reservationId)
    }
    return { ...own, reservationId: ids.join(",") }
  }

  async release(key: string, reservationId: string, sharedKeys: readonly string[] = []): Promise<void> {
    const expiry = RATE_WINDOW_MS + EXPIRY_MARGIN_MS
    const windows = [key, ...sharedKeys]
    if (reservationId.includes(",")) {
      // Granted window by window (a Cluster): each window holds its own id.
      const ids = reservationId.split(",")
      await Promise.all(
        ids.map((id, i) => {
          const window = windows[i]
          return window === undefined
            ? undefined
            : releaseScript.run(this.redis, this.keys(window), [id, expiry])
        }),
      )
      return
    }
    if (this.cluster && sharedKeys.length > 0) {
      await Promise.all(
        windows.map((w) => releaseScript.run(this.redis, this.keys(w), [reservationId, expiry])),
      )
      return
    }
    await releaseScript.run(
      this.redis,
      windows.flatMap((w) => this.keys(w)),
      [reservationId, expiry],
    )
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
  if (!Array.isArray(reply) || reply.length !== 6) throw unexpectedReply(reply)
  const values: unknown[] = reply
  const [granted, detail, retryAfterMs, remaining, resetMs, sharedIndex] = values
  if (
    typeof detail !== "string" ||
    typeof retryAfterMs !== "number" ||
    typeof remaining !== "number" ||
    typeof resetMs !== "number"
  )
    throw unexpectedReply(reply)
  if (granted === 1) return { granted: true, reservationId: detail, limit, remaining, resetMs }
  if (granted === 0 && (detail === "requests_per_minute" || detail === "tokens_per_minute"))
    return {
      granted: false,
      exceeded: detail,
      retryAfterMs,
      limit,
      remaining,
      resetMs,
      ...(typeof sharedIndex === "number" && sharedIndex >= 0 ? { sharedIndex } : {}),
    }
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
