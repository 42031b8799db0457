/**
 * Backfill from an existing system: NDJSON, one historical turn per line. Memory stays flat whatever the
 * number of lines: only one batch and the subscription lookups are held.
 *
 * Semantics, exactly (the README's "Importing history" says the same):
 * - Lines are validated one by one against {@link ImportLineSchema} (the text and time rules included). A
 *   bad line is rejected with its number and reason and never blocks the good ones.
 * - Good lines are committed in batches of `batchSize`, one statement each (all of a batch or none of it).
 *   When the database refuses a batch for its data (SQLSTATE classes 22 and 23), the batch is written again
 *   line by line, so that only the refused lines are rejected.
 * - When the import cannot go on (the input breaks, the body limit is passed, the database is lost), an
 *   {@link ImportInterruptedError} carries the report so far: `imported` counts exactly the committed
 *   lines, and `resumeFromLine` is the first line whose outcome is not in the report. Sending the lines
 *   again from there is safe; sending them all again is safe for lines with an idempotency key.
 */
import { type Static, Type } from "typebox"
import { billedTokens } from "../core/billing.js"
import { snakeCaseProperties } from "../core/casing.js"
import { CHANNELS, type Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { resolveChannelSettings } from "../core/decision.js"
import { type ErrorCode, OmnimeterError } from "../core/errors.js"
import { DateTime, Id } from "../core/formats.js"
import { formatScaled, isCurrencyCode, MONEY_DECIMALS, toScaled } from "../core/money.js"
import { billingPeriodAt } from "../core/period.js"
import type { Subscription } from "../core/subscription.js"
import { validate } from "../core/validate.js"
import type { Database } from "../storage/database.js"
import { type ImportedTurn, insertImportedTurns } from "../storage/ledger.js"
import { insertOutcome } from "../storage/outcomes.js"
import {
  findSubscriptionByEntity,
  findSubscriptionById,
  listChannelOverrides,
} from "../storage/subscriptions.js"
import { ChannelSchema, ModelName, OutcomeInputSchema, TokenCount } from "./inputs.js"

export const ImportLineSchema = Type.Object(
  {
    subscription_id: Type.Optional(Type.String({ format: "uuid" })),
    entity_id: Type.Optional(Id(255)),
    entity_type: Type.Optional(Id(64)),
    channel: ChannelSchema,
    chatbot_id: Type.Optional(Id(255)),
    session_id: Type.Optional(Id(255)),
    user_identifier: Type.Optional(Id(255)),
    operation_type: Type.Optional(Id(64)),
    idempotency_key: Type.Optional(Id(255)),
    created_at: DateTime(),
    raw_tokens: TokenCount(),
    model: Type.Optional(ModelName()),
    input_tokens: Type.Optional(TokenCount()),
    output_tokens: Type.Optional(TokenCount()),
  },
  { additionalProperties: false },
)
export type ImportLine = Static<typeof ImportLineSchema>

/** An outcome line (`"type": "outcome"`): POST /api/outcomes's fields, for backfills. */
export const OutcomeImportLineSchema = Type.Object(
  {
    type: Type.Literal("outcome"),
    subscription_id: Type.Optional(Type.String({ format: "uuid" })),
    ...snakeCaseProperties(OutcomeInputSchema.properties),
    occurred_at: DateTime(),
  },
  { additionalProperties: false },
)
export type OutcomeImportLine = Static<typeof OutcomeImportLineSchema>

export interface ImportReport {
  imported: number
  /** Valid lines skipped because their idempotency key was already charged. */
  duplicates: number
  rejectedCount: number
  /** The first `maxRejectedListed` rejected lines. */
  rejected: Array<{ line: number; reason: string }>
}

export interface ImportOptions {
  batchSize?: number
  maxRejectedListed?: number
  /** Longest accepted line, in characters. */
  maxLineLength?: number
  /** The operator's currency: turn costs and outcome values are in it (default USD). */
  currency?: string
}

/**
 * An import that stopped part-way. `report` is exact for lines 1 to `resumeFromLine - 1`; nothing from
 * `resumeFromLine` on was written.
 */
export class ImportInterruptedError extends OmnimeterError {
  override readonly name = "ImportInterruptedError"
  constructor(
    readonly report: ImportReport,
    readonly resumeFromLine: number,
    override readonly cause: unknown,
  ) {
    const code: ErrorCode = cause instanceof OmnimeterError ? cause.code : "internal_error"
    const why = cause instanceof OmnimeterError ? cause.message : "the import failed"
    super(
      code,
      `${why} The import stopped at line ${resumeFromLine}: ${report.imported} lines before it were imported; send the lines from ${resumeFromLine} on again.`,
      { resumeFromLine },
    )
  }
}

/** A database refusal caused by one row's data rather than by the database being unavailable. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"))
}

interface Target {
  subscription: Subscription
  multipliers: Map<Channel, number>
}

/** Imports NDJSON lines from `lines` (one string per line, without the newline). */
export async function importUsage(
  database: Database,
  clock: Clock,
  lines: AsyncIterable<string>,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const batchSize = options.batchSize ?? 1000
  const maxListed = options.maxRejectedListed ?? 1000
  const maxLineLength = options.maxLineLength ?? 65_536
  const currency = options.currency ?? "USD"
  const report: ImportReport = { imported: 0, duplicates: 0, rejectedCount: 0, rejected: [] }
  const targets = new Map<string, Target | null>()
  let batch: Array<{ line: number; turn: ImportedTurn }> = []
  let lineNumber = 0
  // The rejections counted and listed before the pending batch's first line: what an interrupted import's
  // report keeps.
  let beforeBatch = { count: 0, listed: 0 }
  const markBatchStart = () => {
    beforeBatch = { count: report.rejectedCount, listed: report.rejected.length }
  }

  const reject = (reason: string, line = lineNumber) => {
    report.rejectedCount += 1
    if (report.rejected.length < maxListed) report.rejected.push({ line, reason })
  }
  const flush = async () => {
    if (batch.length === 0) return
    try {
      const written = await insertImportedTurns(
        database.db,
        batch.map((b) => b.turn),
        currency,
      )
      report.imported += written
      report.duplicates += batch.length - written
    } catch (error) {
      if (!isDataError(error)) throw error
      // One row spoiled the statement: write each line alone, so that only that row is rejected. Each line
      // leaves the batch once its outcome is in the report, so an interruption resumes after it.
      for (let next = batch[0]; next !== undefined; next = batch[0]) {
        try {
          const written = await insertImportedTurns(database.db, [next.turn], currency)
          report.imported += written
          report.duplicates += 1 - written
        } catch (lineError) {
          if (!isDataError(lineError)) throw lineError
          reject(
            `could not be stored: ${lineError instanceof Error ? lineError.message : String(lineError)}`,
            next.line,
          )
        }
        batch.shift()
        markBatchStart()
      }
    }
    batch = []
  }

  // Lines of an unwritten batch are not in the report, nor are the rejections after its first line: the
  // report covers exactly the lines before resumeFromLine.
  const interrupted = (cause: unknown) => {
    const first = batch[0]
    if (first === undefined) return new ImportInterruptedError(report, lineNumber + 1, cause)
    report.rejectedCount = beforeBatch.count
    report.rejected.length = beforeBatch.listed
    return new ImportInterruptedError(report, first.line, cause)
  }
  let writing = false
  const write = async () => {
    writing = true
    await flush()
    writing = false
  }
  try {
    for await (const raw of lines) {
      lineNumber += 1
      await importLine(raw)
      if (batch.length >= batchSize) await write()
    }
    await write()
  } catch (error) {
    if (error instanceof ImportInterruptedError) throw error
    if (writing) throw interrupted(error)
    // The input broke (a client gone, the body limit passed) while the database is fine: the lines read so
    // far are written, so that the report covers every complete line received.
    try {
      await write()
    } catch (writeError) {
      throw interrupted(writeError)
    }
    throw interrupted(error)
  }
  return report

  async function importLine(raw: string): Promise<void> {
    const text = raw.trim()
    if (text === "") return
    if (text.length > maxLineLength) {
      reject(`line is longer than ${maxLineLength} characters`)
      return
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      reject("not valid JSON")
      return
    }
    if ((parsed as { type?: unknown } | null)?.type === "outcome") {
      await importOutcome(parsed)
      return
    }
    let line: ImportLine
    try {
      line = validate(ImportLineSchema, parsed)
    } catch (error) {
      reject(error instanceof Error ? error.message : String(error))
      return
    }
    const createdAt = new Date(line.created_at)
    if (createdAt.getTime() > clock.now() + 5 * 60_000) {
      reject("created_at: is in the future")
      return
    }
    if ((line.input_tokens === undefined) !== (line.output_tokens === undefined)) {
      reject("input_tokens and output_tokens: are given together or not at all")
      return
    }
    if (
      line.input_tokens !== undefined &&
      line.input_tokens + (line.output_tokens ?? 0) !== line.raw_tokens
    ) {
      reject("raw_tokens: must equal input_tokens + output_tokens")
      return
    }
    const target = await resolveTarget(database, targets, line)
    if (typeof target === "string") {
      reject(target)
      return
    }
    const multiplier = target.multipliers.get(line.channel) ?? 100
    if (batch.length === 0) markBatchStart()
    batch.push({
      line: lineNumber,
      turn: {
        subscriptionId: target.subscription.id,
        channel: line.channel,
        chatbotId: line.chatbot_id ?? null,
        sessionId: line.session_id ?? null,
        userIdentifier: line.user_identifier ?? null,
        operationType: line.operation_type ?? "chat",
        rawTokens: line.raw_tokens,
        billedTokens: billedTokens(line.raw_tokens, multiplier),
        multiplierHundredths: multiplier,
        idempotencyKey: line.idempotency_key ?? null,
        createdAt,
        periodStart: billingPeriodAt(target.subscription.periodAnchor, createdAt).start,
        model: line.model ?? null,
        inputTokens: line.input_tokens ?? null,
        outputTokens: line.output_tokens ?? null,
      },
    })
  }

  /**
   * An outcome line: validated like POST /api/outcomes and written at once, after the turns before it (so
   * that a report's resume line still means "everything before it is written").
   */
  async function importOutcome(parsed: unknown): Promise<void> {
    let line: OutcomeImportLine
    try {
      line = validate(OutcomeImportLineSchema, parsed)
    } catch (error) {
      reject(error instanceof Error ? error.message : String(error))
      return
    }
    const value = line.value === undefined ? undefined : toScaled(line.value, MONEY_DECIMALS)
    if (line.value !== undefined && value === undefined) {
      reject("value: must be a non-negative decimal with at most 6 decimals")
      return
    }
    if (line.currency !== undefined && (!isCurrencyCode(line.currency) || line.currency !== currency)) {
      reject(`currency: must be the operator's currency, ${currency}`)
      return
    }
    const occurredAt = new Date(line.occurred_at)
    if (occurredAt.getTime() > clock.now() + 5 * 60_000) {
      reject("occurred_at: is in the future")
      return
    }
    const target = await resolveTarget(database, targets, line)
    if (typeof target === "string") {
      reject(target)
      return
    }
    await write()
    let recorded: boolean
    try {
      ;({ recorded } = await insertOutcome(database.db, {
        subscriptionId: target.subscription.id,
        name: line.name,
        value: value === undefined ? null : formatScaled(value, MONEY_DECIMALS),
        currency: value === undefined ? null : currency,
        userIdentifier: line.user_identifier,
        sessionId: line.session_id ?? null,
        channel: line.channel ?? null,
        occurredAt,
        idempotencyKey: line.idempotency_key,
      }))
    } catch (error) {
      if (isDataError(error)) {
        reject(`could not be stored: ${error instanceof Error ? error.message : String(error)}`)
        return
      }
      // Everything before this line is written; this one is not.
      throw new ImportInterruptedError(report, lineNumber, error)
    }
    if (recorded) report.imported += 1
    else report.duplicates += 1
    markBatchStart()
  }
}

async function resolveTarget(
  database: Database,
  targets: Map<string, Target | null>,
  line: Pick<ImportLine, "subscription_id" | "entity_id" | "entity_type">,
): Promise<Target | string> {
  let cacheKey: string
  if (line.subscription_id) cacheKey = `id:${line.subscription_id}`
  else if (line.entity_id && line.entity_type) cacheKey = `entity:${line.entity_type}:${line.entity_id}`
  else return "subscription_id, or entity_id with entity_type, is required"
  if (!targets.has(cacheKey)) {
    if (targets.size > 100_000) targets.clear()
    const subscription = line.subscription_id
      ? await findSubscriptionById(database.db, line.subscription_id)
      : await findSubscriptionByEntity(database.db, line.entity_type ?? "", line.entity_id ?? "")
    if (!subscription) targets.set(cacheKey, null)
    else {
      const overrides = await listChannelOverrides(database.db, subscription.id)
      const multipliers = new Map(
        CHANNELS.map((channel) => [
          channel,
          resolveChannelSettings(subscription.plan, channel, overrides[channel]).multiplierHundredths,
        ]),
      )
      const target: Target = { subscription, multipliers }
      targets.set(cacheKey, target)
    }
  }
  return targets.get(cacheKey) ?? "subscription_not_found: no such subscription"
}
