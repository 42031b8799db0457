/**
 * Backfill from an existing system: NDJSON, one historical turn per line. Lines are validated one by one
 * (a bad line is reported with its number and reason and never blocks the good ones), written in batches
 * of `batchSize` (one statement each), and deduplicated by idempotency key. Memory stays flat whatever the
 * number of lines: only one batch and the subscription lookups are held.
 *
 * Each batch commits on its own; an import cut off midway can be sent again, and lines with idempotency
 * keys are not duplicated.
 */
import { type Static, Type } from "typebox"
import { billedTokens } from "../core/billing.js"
import { CHANNELS, type Channel } from "../core/channels.js"
import type { Clock } from "../core/clock.js"
import { resolveChannelSettings } from "../core/decision.js"
import { DateTime, Id } from "../core/formats.js"
import { billingPeriodAt } from "../core/period.js"
import type { Subscription } from "../core/subscription.js"
import { validate } from "../core/validate.js"
import type { Database } from "../storage/database.js"
import { type ImportedTurn, insertImportedTurns } from "../storage/ledger.js"
import {
  findSubscriptionByEntity,
  findSubscriptionById,
  listChannelOverrides,
} from "../storage/subscriptions.js"
import { ChannelSchema, TokenCount } from "./inputs.js"

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
    raw_tokens: TokenCount,
  },
  { additionalProperties: false },
)
export type ImportLine = Static<typeof ImportLineSchema>

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
  const report: ImportReport = { imported: 0, duplicates: 0, rejectedCount: 0, rejected: [] }
  const targets = new Map<string, Target | null>()
  let batch: ImportedTurn[] = []
  let lineNumber = 0

  const reject = (reason: string) => {
    report.rejectedCount += 1
    if (report.rejected.length < maxListed) report.rejected.push({ line: lineNumber, reason })
  }
  const flush = async () => {
    if (batch.length === 0) return
    const written = await insertImportedTurns(database.db, batch)
    report.imported += written
    report.duplicates += batch.length - written
    batch = []
  }

  for await (const raw of lines) {
    lineNumber += 1
    const text = raw.trim()
    if (text === "") continue
    if (text.length > maxLineLength) {
      reject(`line is longer than ${maxLineLength} characters`)
      continue
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      reject("not valid JSON")
      continue
    }
    let line: ImportLine
    try {
      line = validate(ImportLineSchema, parsed)
    } catch (error) {
      reject(error instanceof Error ? error.message : String(error))
      continue
    }
    const createdAt = new Date(line.created_at)
    if (createdAt.getTime() > clock.now() + 5 * 60_000) {
      reject("created_at: is in the future")
      continue
    }
    const target = await resolveTarget(database, targets, line)
    if (typeof target === "string") {
      reject(target)
      continue
    }
    const multiplier = target.multipliers.get(line.channel) ?? 100
    batch.push({
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
    })
    if (batch.length >= batchSize) await flush()
  }
  await flush()
  return report
}

async function resolveTarget(
  database: Database,
  targets: Map<string, Target | null>,
  line: ImportLine,
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
