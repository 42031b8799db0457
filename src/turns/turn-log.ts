/**
 * The turn log: a subscription's ledger rows, newest first, filtered and paged by a keyset cursor, one turn
 * by its id, and a stream of every matching turn for exports.
 *
 * Pages are read through the ledger's (subscription_id, created_at) index from the cursor down; the cursor
 * is the last row's exact `created_at` (microseconds) and id, so a page never skips or repeats a turn
 * however many are written meanwhile (new turns land above the first page). Filters on channel, chatbot,
 * user, session and decision are applied on that index range: a rare value costs a longer scan of the
 * subscription's turns (no index per filter: each would cost every consume an index insert).
 */
import { type Kysely, type RawBuilder, sql } from "kysely"
import type { Channel } from "../core/channels.js"
import type { LedgerDenialReason } from "../core/decision.js"
import { OmnimeterError, ValidationError } from "../core/errors.js"
import { isUuid } from "../core/ids.js"
import type { TenantScope } from "../core/tenant.js"
import type { Database } from "../storage/database.js"
import type { DB } from "../storage/schema.js"
import { withScope } from "../storage/scoped.js"
import { findSubscriptionById } from "../storage/subscriptions.js"

/** One turn as the ledger recorded it. */
export interface Turn {
  usageId: string
  createdAt: Date
  channel: Channel
  chatbotId: string | null
  sessionId: string | null
  userIdentifier: string | null
  operationType: string
  /** estimated (charged its estimate, not settled), settled, or denied. */
  status: "estimated" | "settled" | "denied"
  decision: "allowed" | "denied"
  denialReason: LedgerDenialReason | null
  estimatedTokens: number
  rawTokens: number
  billedTokens: number
  tokenMultiplier: number
  messageLength: number | null
  idempotencyKey: string | null
  periodStart: Date | null
  settledAt: Date | null
  outcome: string | null
  latencyMs: number | null
}

/** Which turns to list; every field narrows. `from` included, `to` excluded. */
export interface TurnFilter {
  channel?: Channel | undefined
  chatbotId?: string | undefined
  userIdentifier?: string | undefined
  sessionId?: string | undefined
  decision?: "allowed" | "denied" | undefined
  reason?: LedgerDenialReason | undefined
  from?: string | undefined
  to?: string | undefined
}

export interface TurnPage {
  turns: Turn[]
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null
}

interface TurnRow {
  id: string
  created_at: Date | string
  at_text: string
  channel: string
  chatbot_id: string | null
  session_id: string | null
  user_identifier: string | null
  operation_type: string
  status: string
  denial_reason: string | null
  estimated_tokens: number | string
  raw_tokens: number | string
  billed_tokens: number | string
  token_multiplier: string
  message_length: number | null
  idempotency_key: string | null
  period_start: Date | string | null
  settled_at: Date | string | null
  outcome: string | null
  latency_ms: number | null
}

const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value))

function turnOf(row: TurnRow): Turn {
  return {
    usageId: row.id,
    createdAt: new Date(row.created_at),
    channel: row.channel as Channel,
    chatbotId: row.chatbot_id,
    sessionId: row.session_id,
    userIdentifier: row.user_identifier,
    operationType: row.operation_type,
    status: row.status as Turn["status"],
    decision: row.status === "denied" ? "denied" : "allowed",
    denialReason: row.denial_reason as LedgerDenialReason | null,
    estimatedTokens: Number(row.estimated_tokens),
    rawTokens: Number(row.raw_tokens),
    billedTokens: Number(row.billed_tokens),
    tokenMultiplier: Number(row.token_multiplier),
    messageLength: row.message_length,
    idempotencyKey: row.idempotency_key,
    periodStart: date(row.period_start),
    settledAt: date(row.settled_at),
    outcome: row.outcome,
    latencyMs: row.latency_ms,
  }
}

const COLUMNS = sql`id, created_at,
  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_text, channel, chatbot_id,
  session_id, user_identifier, operation_type, status, denial_reason, estimated_tokens, raw_tokens,
  billed_tokens, token_multiplier::text as token_multiplier, message_length, idempotency_key, period_start,
  settled_at, outcome, latency_ms`

/** A position in the log: just below the row with this exact time and id. */
interface Position {
  at: string
  id: string
}

const AT_TEXT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

/**
 * The opaque cursor of a position (base64url of "time|id").
 * @example decodeCursor(encodeCursor({ at: "2026-01-01T00:00:00.000000Z", id })) // the same position
 */
export function encodeCursor(position: Position): string {
  return Buffer.from(`${position.at}|${position.id}`, "utf8").toString("base64url")
}

/** The position a cursor names; a cursor this service did not write answers 400 naming `cursor`. */
export function decodeCursor(cursor: string): Position {
  const [at = "", id = "", ...rest] = Buffer.from(cursor, "base64url").toString("utf8").split("|")
  if (rest.length > 0 || !AT_TEXT.test(at) || !isUuid(id) || Number.isNaN(Date.parse(at))) {
    throw new ValidationError("cursor", "is not a cursor this endpoint returned (pass next_cursor as it is)")
  }
  return { at, id: id.toLowerCase() }
}

/** Checks a filter's consistency; its values' shapes are checked at the edge. */
function checkFilter(filter: TurnFilter): void {
  if (filter.reason !== undefined && filter.decision === "allowed") {
    throw new ValidationError(
      "reason",
      "names a denial reason, so it cannot be combined with decision=allowed",
    )
  }
  if (
    filter.from !== undefined &&
    filter.to !== undefined &&
    Date.parse(filter.from) > Date.parse(filter.to)
  ) {
    throw new ValidationError("from", "must not be after to")
  }
}

function conditions(
  subscriptionId: string,
  filter: TurnFilter,
  after: Position | undefined,
): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [sql`subscription_id = ${subscriptionId}`]
  if (filter.channel !== undefined) parts.push(sql`channel = ${filter.channel}`)
  if (filter.chatbotId !== undefined) parts.push(sql`chatbot_id = ${filter.chatbotId}`)
  if (filter.userIdentifier !== undefined) parts.push(sql`user_identifier = ${filter.userIdentifier}`)
  if (filter.sessionId !== undefined) parts.push(sql`session_id = ${filter.sessionId}`)
  if (filter.decision === "allowed") parts.push(sql`status <> 'denied'`)
  if (filter.decision === "denied") parts.push(sql`status = 'denied'`)
  if (filter.reason !== undefined) parts.push(sql`denial_reason = ${filter.reason}`)
  if (filter.from !== undefined) parts.push(sql`created_at >= ${filter.from}::timestamptz`)
  if (filter.to !== undefined) parts.push(sql`created_at < ${filter.to}::timestamptz`)
  if (after !== undefined) {
    parts.push(sql`(created_at, id) < (${after.at}::timestamptz, ${after.id}::uuid)`)
  }
  return sql.join(parts, sql` and `)
}

async function readPage(
  db: Kysely<DB>,
  subscriptionId: string,
  filter: TurnFilter,
  after: Position | undefined,
  limit: number,
): Promise<{ turns: Turn[]; next: Position | undefined }> {
  const result = await sql<TurnRow>`
    select ${COLUMNS} from token_usage_logs
    where ${conditions(subscriptionId, filter, after)}
    order by created_at desc, id desc
    limit ${limit + 1}`.execute(db)
  const rows = result.rows.slice(0, limit)
  const last = rows.at(-1)
  return {
    turns: rows.map(turnOf),
    next: result.rows.length > limit && last ? { at: last.at_text, id: last.id } : undefined,
  }
}

export interface TurnLogDependencies {
  database: Database
}

/** Rows per database read when streaming an export: bounds the memory an export holds. */
export const EXPORT_PAGE_SIZE = 1000

/**
 * A subscription's turns.
 * @example
 * const log = new TurnLogService({ database })
 * const { turns, nextCursor } = await log.list(subscriptionId, { decision: "denied" }, { limit: 50 })
 */
export class TurnLogService {
  private readonly database: Database

  constructor(dependencies: TurnLogDependencies) {
    this.database = dependencies.database
  }

  /** One page of turns, newest first. */
  async list(
    subscriptionId: string,
    filter: TurnFilter,
    page: { limit: number; cursor?: string | undefined },
    scope?: TenantScope,
  ): Promise<TurnPage> {
    checkFilter(filter)
    const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor)
    return withScope(this.database, scope, async (db) => {
      await this.requireSubscription(db, subscriptionId)
      const { turns, next } = await readPage(db, subscriptionId, filter, after, page.limit)
      return { turns, nextCursor: next === undefined ? null : encodeCursor(next) }
    })
  }

  /**
   * Every matching turn from `cursor` on, newest first, read a page at a time (each page its own short
   * read, so an export of a million turns holds one page in memory and no transaction open).
   */
  async *stream(
    subscriptionId: string,
    filter: TurnFilter,
    options: { cursor?: string | undefined } = {},
    scope?: TenantScope,
  ): AsyncGenerator<Turn> {
    checkFilter(filter)
    let after = options.cursor === undefined ? undefined : decodeCursor(options.cursor)
    await withScope(this.database, scope, (db) => this.requireSubscription(db, subscriptionId))
    for (;;) {
      const position = after
      const { turns, next } = await withScope(this.database, scope, (db) =>
        readPage(db, subscriptionId, filter, position, EXPORT_PAGE_SIZE),
      )
      yield* turns
      if (next === undefined) return
      after = next
    }
  }

  /** One turn by its id (the consume call's usage_id); 404 `usage_not_found` when the subscription has none. */
  async get(subscriptionId: string, usageId: string, scope?: TenantScope): Promise<Turn> {
    return withScope(this.database, scope, async (db) => {
      await this.requireSubscription(db, subscriptionId)
      const result = await sql<TurnRow>`
        select ${COLUMNS} from token_usage_logs
        where subscription_id = ${subscriptionId} and id = ${usageId}::uuid`.execute(db)
      const row = result.rows[0]
      if (!row) throw new OmnimeterError("usage_not_found", `No turn ${usageId} in this subscription.`)
      return turnOf(row)
    })
  }

  private async requireSubscription(db: Kysely<DB>, subscriptionId: string): Promise<void> {
    if ((await findSubscriptionById(db, subscriptionId)) === undefined) {
      throw new OmnimeterError("subscription_not_found", `No subscription ${subscriptionId} exists.`)
    }
  }
}
