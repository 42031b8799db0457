/**
 * The usage ledger and the quota counters. Every write here is one SQL statement, so it is atomic on its
 * own and needs no explicit transaction. Live turns are decided by `consumeBatch` (group commit,
 * src/storage/functions/consume_batch.sql); live and imported turns enter the ledger through one function,
 * src/storage/functions/write_turns.sql.
 */

import { randomUUID } from "node:crypto"
import { type Kysely, sql } from "kysely"
import { hundredthsToDecimalString, multiplierToHundredths } from "../core/billing.js"
import type { Channel } from "../core/channels.js"
import type { DenialReason } from "../core/decision.js"
import { uuidV7 } from "../core/ids.js"
import { DEFAULT_CURRENCY } from "../core/money.js"
import type { DB } from "./schema.js"

/** What a turn carries into the ledger, whatever its outcome. */
export interface TurnRecord {
  subscriptionId: string
  channel: Channel
  chatbotId: string | null
  sessionId: string | null
  userIdentifier: string | null
  operationType: string
  estimatedTokens: number
  multiplierHundredths: number
  messageLength: number | null
  idempotencyKey: string | null
  createdAt: Date
}

/** One turn of a group commit: a charge to decide, or (with `denialReason`) a denial to record. */
export interface BatchTurn extends TurnRecord {
  /**
   * The turn's ledger id, assigned before its first run (a UUIDv7 of `createdAt`): after a lost reply,
   * {@link findBatchOutcomes} finds by it whether the turn was written.
   */
  id: string
  billedTokens: number
  periodStart: Date
  /** The subscription a subscription key's call is limited to; another subscription answers not_found. */
  scope: string | null
  denialReason: DenialReason | null
  /** The channel's priority 1..10: a turn below the subscription's reserve priority may not use the reserve. */
  priority: number
  /** The model named at consume and the message's sentiment ([-1, 1]); written with an allowed turn. */
  model?: string | null
  sentiment?: number | null
}

export type BatchOutcome =
  /** `tokenLimit` is the limit the database decided with (a cached copy of the subscription may lag). */
  | { kind: "allowed"; usageId: string; usedTokens: number; tokenLimit: number }
  /** `reserved`: the full limit would have covered the turn, but not the part its priority may use. */
  | { kind: "quota_exceeded"; usedTokens: number; tokenLimit: number; reserved: boolean }
  /** A charged turn with this idempotency key exists (earlier, or a twin in this or a concurrent batch). */
  | { kind: "duplicate" }
  /** The denial given was recorded. */
  | { kind: "denied" }
  /** The subscription is gone, or outside the turn's scope: nothing was written. */
  | { kind: "not_found" }

interface BatchRow {
  i: number
  outcome: "allowed" | "quota_exceeded" | "quota_reserved" | "duplicate" | "not_found" | "denied"
  usage_id: string | null
  used_tokens: number
  token_limit: number
}

/**
 * Decides and writes many turns in ONE statement (`omnimeter_consume_batch`, migration 0004): one
 * transaction, one commit for all of them, each still charged only `WHERE used + billed <= limit`. Turns of
 * one subscription are decided in the order given. When this resolves, every outcome is committed; when
 * the database answers with an error, nothing of the batch was written; when the connection dies (a
 * DatabaseUnavailableError), the outcome is unknown until {@link findBatchOutcomes} looks. Each turn is
 * written under its own `id`. Returns one outcome per turn, in the order given.
 */
export async function consumeBatch(db: Kysely<DB>, turns: readonly BatchTurn[]): Promise<BatchOutcome[]> {
  if (turns.length === 0) return []
  const payload = turns.map((t, i) => ({
    i,
    subscription_id: t.subscriptionId,
    scope: t.scope,
    channel: t.channel,
    chatbot_id: t.chatbotId,
    session_id: t.sessionId,
    user_identifier: t.userIdentifier,
    operation_type: t.operationType,
    estimated: t.estimatedTokens,
    billed: t.billedTokens,
    multiplier: hundredthsToDecimalString(t.multiplierHundredths),
    message_length: t.messageLength,
    idempotency_key: t.idempotencyKey,
    period_start: t.periodStart.toISOString(),
    created_at: t.createdAt.toISOString(),
    denial_reason: t.denialReason,
    id: t.id,
    priority: t.priority,
  }))
  const details = turns.flatMap((t, i) =>
    (t.model ?? null) !== null || (t.sentiment ?? null) !== null
      ? [
          {
            i,
            subscription_id: t.subscriptionId,
            channel: t.channel,
            created_at: t.createdAt.toISOString(),
            model: t.model ?? null,
            sentiment: t.sentiment ?? null,
          },
        ]
      : [],
  )
  // A batch with a model or a sentiment writes them with its allowed turns in the same statement (so in
  // the same transaction); a batch without any runs the plain call and pays nothing for them.
  const result =
    details.length === 0
      ? await sql<BatchRow>`
    select i, outcome, usage_id, used_tokens, token_limit
    from omnimeter_consume_batch(${JSON.stringify(payload)}::jsonb)
  `.execute(db)
      : await sql<BatchRow>`
    with decided as materialized (
      select i, outcome, usage_id, used_tokens, token_limit
      from omnimeter_consume_batch(${JSON.stringify(payload)}::jsonb)
    ), details as (
      insert into turn_details (usage_id, subscription_id, created_at, channel, model, sentiment)
      select d.usage_id, x.subscription_id, x.created_at, x.channel, x.model, x.sentiment
      from decided d
      join jsonb_to_recordset(${JSON.stringify(details)}::jsonb)
        as x(i integer, subscription_id uuid, channel text, created_at timestamptz, model text, sentiment numeric)
        on x.i = d.i
      where d.outcome = 'allowed'
      on conflict (usage_id) do nothing
    )
    select i, outcome, usage_id, used_tokens, token_limit from decided
  `.execute(db)
  const outcomes: Array<BatchOutcome | undefined> = new Array(turns.length)
  for (const row of result.rows) outcomes[row.i] = batchOutcome(row)
  return outcomes.map((outcome, i) => {
    if (!outcome) throw new Error(`omnimeter_consume_batch answered nothing for turn ${i}`)
    return outcome
  })
}

function batchOutcome(row: BatchRow): BatchOutcome {
  switch (row.outcome) {
    case "allowed":
      if (!row.usage_id) throw new Error("omnimeter_consume_batch allowed a turn without a usage id")
      return {
        kind: "allowed",
        usageId: row.usage_id,
        usedTokens: Number(row.used_tokens),
        tokenLimit: Number(row.token_limit),
      }
    case "quota_exceeded":
    case "quota_reserved":
      return {
        kind: "quota_exceeded",
        usedTokens: Number(row.used_tokens),
        tokenLimit: Number(row.token_limit),
        reserved: row.outcome === "quota_reserved",
      }
    case "duplicate":
      return { kind: "duplicate" }
    case "not_found":
      return { kind: "not_found" }
    case "denied":
      return { kind: "denied" }
  }
}

/**
 * What a batch whose reply was lost wrote, turn by turn, read back by the turns' ids: the outcome the
 * batch gave a turn with a ledger row, or undefined for a turn without one (nothing of it was written:
 * the batch rolled back, or it committed and the turn wrote no row, as a duplicate or a not-found does;
 * running it again decides it afresh). A charged turn is answered with the period's counter as it is now.
 */
export async function findBatchOutcomes(
  db: Kysely<DB>,
  turns: readonly BatchTurn[],
): Promise<Array<BatchOutcome | undefined>> {
  if (turns.length === 0) return []
  const wanted = turns.map((t) => ({
    id: t.id,
    created_at: t.createdAt.toISOString(),
    subscription_id: t.subscriptionId,
    period_start: t.periodStart.toISOString(),
  }))
  const result = await sql<{
    id: string
    status: string
    denial_reason: string | null
    used_tokens: number | null
    token_limit: number | null
  }>`
    select w.id, l.status, l.denial_reason, q.used_tokens, s.token_limit
    from jsonb_to_recordset(${JSON.stringify(wanted)}::jsonb)
      as w(id uuid, created_at timestamptz, subscription_id uuid, period_start timestamptz)
    join token_usage_logs l on l.id = w.id and l.created_at = w.created_at
    left join quota_counters q on q.subscription_id = w.subscription_id and q.period_start = w.period_start
    left join subscriptions s on s.id = w.subscription_id
  `.execute(db)
  const rows = new Map(result.rows.map((row) => [row.id, row]))
  return turns.map((turn): BatchOutcome | undefined => {
    const row = rows.get(turn.id)
    if (!row) return undefined
    const usedTokens = Number(row.used_tokens ?? 0)
    const tokenLimit = Number(row.token_limit ?? 0)
    if (row.status !== "denied") return { kind: "allowed", usageId: turn.id, usedTokens, tokenLimit }
    // A denial row: the one this turn was sent to record, or the quota denial the batch decided.
    if (turn.denialReason) return { kind: "denied" }
    return {
      kind: "quota_exceeded",
      usedTokens,
      tokenLimit,
      reserved: row.denial_reason === "quota_reserved",
    }
  })
}

/** A charged (not denied) ledger row, as replays and settlement need it. */
export interface ChargedTurn {
  usageId: string
  subscriptionId: string
  channel: Channel
  status: "estimated" | "settled"
  estimatedTokens: number
  rawTokens: number
  billedTokens: number
  multiplierHundredths: number
  periodStart: Date
  createdAt: Date
}

export async function findChargedTurnByKey(
  db: Kysely<DB>,
  subscriptionId: string,
  idempotencyKey: string,
): Promise<ChargedTurn | undefined> {
  // The key table finds the row's id and month (a miss, the common case, ends here with one primary-key
  // probe); the ledger row is then read from that one partition. Two plain queries plan faster than a join
  // over every partition, which matters on this per-turn path.
  const key = await db
    .selectFrom("usage_idempotency_keys")
    .select(["usage_id", "created_at"])
    .where("subscription_id", "=", subscriptionId)
    .where("idempotency_key", "=", idempotencyKey)
    .executeTakeFirst()
  if (!key) return undefined
  const row = await db
    .selectFrom("token_usage_logs")
    .select(["id", "subscription_id", "channel", "status", "estimated_tokens", "raw_tokens", "billed_tokens"])
    .select(["token_multiplier", "period_start", "created_at"])
    .where("id", "=", key.usage_id)
    .where("created_at", "=", key.created_at)
    .where("status", "<>", "denied")
    .executeTakeFirst()
  if (!row || row.period_start === null) return undefined
  return {
    usageId: row.id,
    subscriptionId: row.subscription_id,
    channel: row.channel as Channel,
    status: row.status as "estimated" | "settled",
    estimatedTokens: Number(row.estimated_tokens),
    rawTokens: Number(row.raw_tokens),
    billedTokens: Number(row.billed_tokens),
    multiplierHundredths: multiplierToHundredths(row.token_multiplier) ?? 100,
    periodStart: row.period_start,
    createdAt: row.created_at,
  }
}

/** Billed tokens charged so far in the period starting at `periodStart`. */
export async function usedTokensInPeriod(
  db: Kysely<DB>,
  subscriptionId: string,
  periodStart: Date,
): Promise<number> {
  const row = await db
    .selectFrom("quota_counters")
    .select("used_tokens")
    .where("subscription_id", "=", subscriptionId)
    .where("period_start", "=", periodStart)
    .executeTakeFirst()
  return Number(row?.used_tokens ?? 0)
}

export interface SettleRequest {
  usageId: string
  actualTokens: number
  settledAt: Date
  outcome: "ok" | "error" | null
  latencyMs: number | null
  /** The model and token split, priced with the price list in `currency` (the operator's; default USD). */
  model?: string | null
  inputTokens?: number | null
  outputTokens?: number | null
  currency?: string
}

export type SettleOutcome =
  | {
      kind: "settled"
      subscriptionId: string
      channel: Channel
      previousBilledTokens: number
      billedTokens: number
      usedTokens: number
      tokenLimit: number
      periodStart: Date
      model: string | null
      /** Micro-units, exact numeric text; null when unpriced. */
      costMicros: string | null
    }
  | { kind: "not_found" }
  | { kind: "already_settled" }
  | { kind: "denied" }

/**
 * Replaces a turn's estimate with what the LLM really used and moves the period's counter by the
 * difference, in one statement (`omnimeter_settle`, migration 0007: a PL/pgSQL function, so its plan over
 * every ledger partition is cached per connection). The row lock taken by `for update` makes a concurrent second settle wait
 * and then find the row no longer `estimated`, so it changes nothing. Billing uses numeric arithmetic in
 * the database: `ceil(actual * multiplier)` is exact there too.
 */
export async function settleTurn(db: Kysely<DB>, request: SettleRequest): Promise<SettleOutcome> {
  const result = await sql<{
    subscription_id: string
    channel: string
    previous_billed: number
    billed_tokens: number
    used_tokens: number
    token_limit: number
    period_start: Date
    model: string | null
    cost_micros: string | null
  }>`
    select o_subscription_id as subscription_id, o_channel as channel, o_previous_billed as previous_billed,
      o_billed_tokens as billed_tokens, o_period_start as period_start, o_used_tokens as used_tokens,
      o_token_limit as token_limit, o_model as model, o_cost_micros::text as cost_micros
    from omnimeter_settle(${request.usageId}::uuid, ${request.actualTokens}::bigint,
      ${request.settledAt}::timestamptz, ${request.outcome}::text, ${request.latencyMs}::int,
      ${request.model ?? null}::text, ${request.inputTokens ?? null}::bigint,
      ${request.outputTokens ?? null}::bigint, ${request.currency ?? DEFAULT_CURRENCY}::text)
  `.execute(db)
  const row = result.rows[0]
  if (row) {
    return {
      kind: "settled",
      subscriptionId: row.subscription_id,
      channel: row.channel as Channel,
      previousBilledTokens: Number(row.previous_billed),
      billedTokens: Number(row.billed_tokens),
      usedTokens: Number(row.used_tokens),
      tokenLimit: Number(row.token_limit),
      periodStart: row.period_start,
      model: row.model,
      costMicros: row.cost_micros,
    }
  }
  const existing = await db
    .selectFrom("token_usage_logs")
    .select("status")
    .where("id", "=", request.usageId)
    .executeTakeFirst()
  if (!existing) return { kind: "not_found" }
  return existing.status === "denied" ? { kind: "denied" } : { kind: "already_settled" }
}

/** A historical turn from an import: already happened, so it is written as settled. */
export interface ImportedTurn {
  subscriptionId: string
  channel: Channel
  chatbotId: string | null
  sessionId: string | null
  userIdentifier: string | null
  operationType: string
  rawTokens: number
  billedTokens: number
  multiplierHundredths: number
  idempotencyKey: string | null
  createdAt: Date
  periodStart: Date
  /** Set for a historical denial: written billed 0, charged to no period. */
  denialReason?: DenialReason
  /** The model and token split, priced at the turn's time like a settlement (issue 14). */
  model?: string | null
  inputTokens?: number | null
  outputTokens?: number | null
  /** The sentiment of the end user's message, -1 to 1 (4 decimals), as consume scores it. */
  sentiment?: number | null
}

/** How an import derives its turns' session tables (ledger_sessions, journey_sessions and the rest). */
export interface ImportOptions {
  /**
   * `now` (the default): in the import's own statements, so the tables hold the turns when it returns.
   * `queued`: left in session_queue, on either database, for the next reader of the subscription's session
   * tables or `drainSessionQueue` (sessions.ts) to derive; every reader derives first, so no answer misses
   * them. A bulk load that must return soon (the demo's first key) defers about a third of its work this
   * way. Inside a caller's transaction, the rest of that transaction queues too.
   */
  sessions?: "now" | "queued"
}

/**
 * Writes a batch of historical turns and adds their billed tokens to their periods' counters, in one
 * statement. A turn whose idempotency key is already charged for its subscription (earlier import, live
 * turn, or twin in the same batch) is skipped. Returns how many rows were written.
 */
export async function insertImportedTurns(
  db: Kysely<DB>,
  turns: ImportedTurn[],
  /** The operator's currency, in which turns with a model are priced. */
  currency = DEFAULT_CURRENCY,
  options: ImportOptions = {},
): Promise<number> {
  if (turns.length === 0) return 0
  if (options.sessions === "queued") {
    // write_turns queues unless the session says omnimeter.sessions_inline (the embedded database's
    // connection does): turned off for this transaction only.
    const queued = (trx: Kysely<DB>) =>
      sql`select set_config('omnimeter.sessions_inline', 'off', true)`
        .execute(trx)
        .then(() => writeImportedTurns(trx, turns, currency))
    return db.isTransaction ? queued(db) : db.transaction().execute(queued)
  }
  const inserted = await writeImportedTurns(db, turns, currency)
  // An import derives its turns' sessions at once (and whatever its subscriptions had queued), in a
  // statement of its own: on PostgreSQL write_turns queued them, and a backfill of history would otherwise
  // hand the background job and the first reader one long queue. (The embedded database derived them in
  // the statement above, migration 0026: this finds nothing queued.)
  const subscriptions = [...new Set(turns.map((t) => t.subscriptionId))]
  await sql`select omnimeter_sessions_derive(s, null) from unnest(${subscriptions}::uuid[]) as s`.execute(db)
  return inserted
}

/** The import's one statement: the rows, the counters, and the turns' details. Answers the rows written. */
async function writeImportedTurns(db: Kysely<DB>, turns: ImportedTurn[], currency: string): Promise<number> {
  const rows = turns.map((t) => ({
    // A UUIDv7 of the turn's time, as live turns have (a time before 1970 has none: v4). Time-ordered ids
    // also keep a time-ordered import's index inserts at the right edge instead of all over the index.
    id: t.createdAt.getTime() >= 0 ? uuidV7(t.createdAt.getTime()) : randomUUID(),
    subscription_id: t.subscriptionId,
    channel: t.channel,
    chatbot_id: t.chatbotId,
    session_id: t.sessionId,
    user_identifier: t.userIdentifier,
    operation_type: t.operationType,
    raw_tokens: t.rawTokens,
    token_multiplier: hundredthsToDecimalString(t.multiplierHundredths),
    idempotency_key: t.idempotencyKey,
    created_at: t.createdAt.toISOString(),
    period_start: t.denialReason ? null : t.periodStart.toISOString(),
    denial_reason: t.denialReason ?? null,
    billed: t.denialReason ? 0 : t.billedTokens,
    model: t.model ?? null,
    input_tokens: t.inputTokens ?? null,
    output_tokens: t.outputTokens ?? null,
    sentiment: t.sentiment ?? null,
  }))
  // omnimeter_write_turns (src/storage/functions/write_turns.sql) writes them as live turns are written, and
  // omnimeter_charge_quota (charge_quota.sql) adds them to the counters as it adds live turns:
  // a keyed, charged turn claims its key first, and one whose key is held (an earlier import, a live turn,
  // a concurrent twin that commits, or an earlier twin in this batch) is not written. Denials hold no key.
  const result = await sql<{ inserted: number }>`
    with input as materialized (
      select x.* from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as (
          id uuid, subscription_id uuid, channel text, chatbot_id text, session_id text, user_identifier text,
          operation_type text, raw_tokens bigint, billed bigint, token_multiplier numeric,
          idempotency_key text, created_at timestamptz, period_start timestamptz, denial_reason text,
          model text, input_tokens bigint, output_tokens bigint, sentiment numeric))
        with ordinality as x
    ), written as (
      select w.* from omnimeter_write_turns(array(
        select row(id, subscription_id, channel, chatbot_id, session_id, user_identifier, operation_type,
          case when denial_reason is null then 'settled' else 'denied' end, denial_reason,
          raw_tokens, raw_tokens, billed, token_multiplier, null, idempotency_key, period_start, created_at,
          case when denial_reason is null then created_at end)::omnimeter_ledger_row
        from input order by ordinality)) w
    ), charges as (
      select subscription_id, period_start, sum(billed_tokens)::bigint as tokens
      from written where status <> 'denied' group by 1, 2
    ), counted as (
      -- History is charged uncapped: those turns happened, whatever the limit says today.
      select c.* from omnimeter_charge_quota(
        array(select subscription_id from charges), array(select period_start from charges),
        array(select tokens from charges), false) c
    ), details as (
      insert into turn_details (usage_id, subscription_id, created_at, channel, model, input_tokens,
        output_tokens, cost_micros, sentiment)
      select i.id, i.subscription_id, i.created_at, i.channel, i.model, i.input_tokens, i.output_tokens,
        omnimeter_turn_cost(i.model, ${currency}::text, i.created_at, i.input_tokens, i.output_tokens),
        i.sentiment
      from input i join written w on w.id = i.id
      where w.status <> 'denied'
        and (i.model is not null or i.input_tokens is not null or i.sentiment is not null)
      returning 1
    )
    select (select count(*) from written)::int as inserted, (select count(*) from counted)::int as periods,
      (select count(*) from details)::int as details
  `.execute(db)
  return Number(result.rows[0]?.inserted ?? 0)
}
