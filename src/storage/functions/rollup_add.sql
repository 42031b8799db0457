-- The one place the rollups grow or shrink: adds signed changes (turns, billed and raw tokens) to their
-- quarter-hour buckets and to the hours those buckets fall in, one upsert per row, in key order so that
-- concurrent batches lock rows in the same order; both in one statement (one executor start, not two).
-- omnimeter_write_turns calls it for the rows it inserts, the ledger triggers (rollup_inserted for rows
-- inserted any other way, rollup_updated, rollup_deleted) for theirs; each (subscription, bucket, channel,
-- chatbot, reason) at most once.
CREATE OR REPLACE FUNCTION omnimeter_rollup_add(p_changes omnimeter_rollup_change[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  WITH buckets AS (
    INSERT INTO channel_usage_buckets AS b
      (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
    SELECT c.subscription_id, c.bucket_start, c.channel, c.chatbot_id, c.denial_reason, c.turns, c.billed, c.raw
    FROM unnest(p_changes) c
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (subscription_id, bucket_start, channel, chatbot_id, denial_reason) DO UPDATE
      SET turn_count = b.turn_count + excluded.turn_count,
          tokens_used = b.tokens_used + excluded.tokens_used,
          raw_tokens = b.raw_tokens + excluded.raw_tokens
  )
  INSERT INTO channel_usage_hourly AS h
    (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
  SELECT c.subscription_id, omnimeter_hour_bucket(c.bucket_start), c.channel, c.chatbot_id, c.denial_reason,
    sum(c.turns), sum(c.billed), sum(c.raw)
  FROM unnest(p_changes) c
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ON CONFLICT (subscription_id, bucket_start, channel, chatbot_id, denial_reason) DO UPDATE
    SET turn_count = h.turn_count + excluded.turn_count,
        tokens_used = h.tokens_used + excluded.tokens_used,
        raw_tokens = h.raw_tokens + excluded.raw_tokens;
END $$;
