-- Drill-down by chatbot (issue 16). The analytics rollups gain the turn's chatbot ('' when the turn named
-- none) as part of their key, so that analytics filtered by chatbot_id reads the rollups as the unfiltered
-- answers do (ARCHITECTURE.md, "Analytics rollups"). A turn without a chatbot and one with chatbot '' are
-- the same in the rollups; the ledger keeps the NULL.
--
-- The triggers' functions change with the key; the rollups are then recomputed from the ledger once, in
-- this transaction (the rows written before carried no chatbot), as rebuildRollups does.

ALTER TABLE channel_usage_buckets ADD COLUMN chatbot_id text NOT NULL DEFAULT '';
ALTER TABLE channel_usage_buckets DROP CONSTRAINT channel_usage_buckets_pkey;
ALTER TABLE channel_usage_buckets
  ADD PRIMARY KEY (subscription_id, bucket_start, channel, chatbot_id, denial_reason);

ALTER TABLE channel_usage_hourly ADD COLUMN chatbot_id text NOT NULL DEFAULT '';
ALTER TABLE channel_usage_hourly DROP CONSTRAINT channel_usage_hourly_pkey;
ALTER TABLE channel_usage_hourly
  ADD PRIMARY KEY (subscription_id, bucket_start, channel, chatbot_id, denial_reason);

ALTER TABLE channel_user_days ADD COLUMN chatbot_id text NOT NULL DEFAULT '';
ALTER TABLE channel_user_days DROP CONSTRAINT channel_user_days_pkey;
ALTER TABLE channel_user_days ADD PRIMARY KEY (subscription_id, year, channel, chatbot_id, user_identifier);

-- The default only filled the rows already there (rebuilt below); every writer names the chatbot.
ALTER TABLE channel_usage_buckets ALTER COLUMN chatbot_id DROP DEFAULT;
ALTER TABLE channel_usage_hourly ALTER COLUMN chatbot_id DROP DEFAULT;
ALTER TABLE channel_user_days ALTER COLUMN chatbot_id DROP DEFAULT;

\ir ../functions/rollup_inserted.sql
\ir ../functions/rollup_updated.sql
\ir ../functions/rollup_deleted.sql
\ir ../functions/rollup_forget_users.sql

LOCK TABLE token_usage_logs IN SHARE MODE;
DELETE FROM channel_usage_buckets;
DELETE FROM channel_usage_hourly;
DELETE FROM channel_user_days;
INSERT INTO channel_usage_buckets
  (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
SELECT subscription_id, omnimeter_bucket(created_at), channel, coalesce(chatbot_id, ''),
  coalesce(denial_reason, ''), count(*), sum(billed_tokens), sum(raw_tokens)
FROM token_usage_logs
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO channel_usage_hourly
  (subscription_id, bucket_start, channel, chatbot_id, denial_reason, turn_count, tokens_used, raw_tokens)
SELECT subscription_id, omnimeter_hour_bucket(created_at), channel, coalesce(chatbot_id, ''),
  coalesce(denial_reason, ''), count(*), sum(billed_tokens), sum(raw_tokens)
FROM token_usage_logs
GROUP BY 1, 2, 3, 4, 5;
INSERT INTO channel_user_days (subscription_id, year, channel, chatbot_id, user_identifier, days)
SELECT subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel, coalesce(chatbot_id, ''),
  user_identifier, bit_or(omnimeter_day_bit(created_at))
FROM token_usage_logs
WHERE status <> 'denied' AND user_identifier <> ''
GROUP BY 1, 2, 3, 4, 5;
