/**
 * The analytics rollups' repository: what the triggers of migration 0005 keep up to date on every ledger
 * write, and the one function that recomputes them from the ledger (after a restore, a manual correction
 * made with the triggers disabled, or to check them).
 */
import { type Kysely, sql } from "kysely"
import type { DB } from "./schema.js"

/**
 * Recomputes the rollups of one subscription (or of all) from the ledger, in one transaction. The ledger
 * rows are locked against writes meanwhile (SHARE lock on the ledger), so no turn is counted twice or
 * missed.
 * @example await rebuildRollups(database.db, subscriptionId)
 */
export async function rebuildRollups(db: Kysely<DB>, subscriptionId?: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await sql`lock table token_usage_logs in share mode`.execute(trx)
    const only = (column: string) =>
      subscriptionId === undefined ? sql`true` : sql`${sql.ref(column)} = ${subscriptionId}`
    await sql`delete from channel_user_days where ${only("subscription_id")}`.execute(trx)
    for (const [table, bucket] of [
      ["channel_usage_buckets", "omnimeter_bucket"],
      ["channel_usage_hourly", "omnimeter_hour_bucket"],
    ] as const) {
      await sql`delete from ${sql.table(table)} where ${only("subscription_id")}`.execute(trx)
      await sql`
        insert into ${sql.table(table)}
          (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
        select subscription_id, ${sql.raw(bucket)}(created_at), channel, coalesce(chatbot_id, ''),
          coalesce(denial_reason, ''), count(*), sum(billed_tokens), sum(raw_tokens)
        from token_usage_logs where ${only("subscription_id")}
        group by 1, 2, 3, 4, 5`.execute(trx)
    }
    await sql`
      insert into channel_user_days
        (subscription_id, year, channel, chatbot_id, user_identifier, days, first_day, last_day)
      select subscription_id, extract(year from created_at at time zone 'UTC'), channel,
        coalesce(chatbot_id, ''), user_identifier, bit_or(omnimeter_day_bit(created_at)),
        min(extract(doy from created_at at time zone 'UTC')) - 1, max(extract(doy from created_at at time zone 'UTC')) - 1
      from token_usage_logs
      where ${only("subscription_id")} and status <> 'denied' and user_identifier <> ''
      group by 1, 2, 3, 4, 5`.execute(trx)
  })
}
