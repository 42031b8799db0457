/**
 * How many instances share the rate limits: the N of the fallback's fair share (limit / N per instance).
 *
 * Each instance keeps a heartbeat in Redis: a sorted set `<prefix>{instances}` of instance ids scored by
 * their last beat (Redis server time, so clock skew does not matter), pruned of ids silent for `ttlMs`.
 * One script per beat records this instance, prunes, and counts. The last count is kept while Redis is
 * unreachable: that is exactly when the fallback needs it, and instances rarely come and go during an
 * outage (one that leaves makes the others stricter, never looser). The count used is the largest seen in
 * the last `ttlMs`: when Redis comes back empty, the instances re-register one beat at a time, and the count
 * must not dip to 1 meanwhile (that would let a still-degraded instance take the whole limit).
 */
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { PeriodicJob } from "../background.js"
import { type Clock, systemClock } from "../core/clock.js"
import { LuaScript, type RedisClient } from "./redis.js"

/** KEYS: the set. ARGV: instance id, ttlMs. Returns the number of live instances, this one included. */
const BEAT_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('ZCARD', KEYS[1])
`

const beatScript = new LuaScript(BEAT_LUA)

export interface InstanceHeartbeatOptions {
  redis: RedisClient
  /** The rate limiter's key prefix; the set is `<prefix>{instances}`. */
  keyPrefix?: string
  /** This instance's id; defaults to host, pid and a random part. */
  instanceId?: string
  /** Time between beats. Default 5000 ms. */
  intervalMs?: number
  /** An instance silent this long no longer counts. Default three intervals. */
  ttlMs?: number
  /** Ages the counts kept by `count()`. Defaults to the system clock. */
  clock?: Clock
}

/**
 * Counts live instances through Redis; a background job (one beat per interval).
 * @example
 * ```ts
 * const heartbeat = new InstanceHeartbeat({ redis })
 * await heartbeat.runOnce() // 3 when two other instances beat within the last 15 s
 * heartbeat.start()
 * heartbeat.count() // the last count, kept while Redis is unreachable
 * ```
 */
export class InstanceHeartbeat extends PeriodicJob {
  private readonly redis: RedisClient
  private readonly key: string
  private readonly ttlMs: number
  readonly instanceId: string
  private readonly clock: Clock
  private last = 1
  private recent: Array<{ at: number; count: number }> = []

  constructor(options: InstanceHeartbeatOptions) {
    const intervalMs = options.intervalMs ?? 5_000
    super(intervalMs)
    const keyPrefix = options.keyPrefix ?? "omnimeter:rl:"
    if (/[{}]/.test(keyPrefix))
      throw new TypeError(`keyPrefix must not contain "{" or "}" (got "${keyPrefix}")`)
    this.redis = options.redis
    this.key = `${keyPrefix}{instances}`
    this.ttlMs = options.ttlMs ?? intervalMs * 3
    this.clock = options.clock ?? systemClock
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  }

  /** The largest count seen in the last `ttlMs`, else the last one; 1 until the first beat succeeds. */
  count(): number {
    const since = this.clock.now() - this.ttlMs
    return Math.max(this.last, ...this.recent.filter((beat) => beat.at > since).map((beat) => beat.count))
  }

  /** One beat: records this instance and returns how many are live now. Rejects when Redis does not answer. */
  async runOnce(): Promise<number> {
    const reply = await beatScript.run(this.redis, [this.key], [this.instanceId, this.ttlMs])
    if (typeof reply !== "number" || !Number.isInteger(reply) || reply < 1)
      throw new Error(`unexpected reply from the heartbeat script: ${JSON.stringify(reply)}`)
    const now = this.clock.now()
    this.recent = this.recent.filter((beat) => beat.at > now - this.ttlMs)
    this.recent.push({ at: now, count: reply })
    this.last = reply
    return reply
  }

  /** Stops beating and leaves the set, so the others' count drops at once rather than after `ttlMs`. */
  override async stop(): Promise<void> {
    await super.stop()
    await this.redis.zrem(this.key, this.instanceId).catch(() => {})
  }
}
