-- Analytics rollups (issue 4). Design note: ARCHITECTURE.md "Analytics rollups".
--
-- Three tables, maintained by statement-level triggers on the ledger, so that whatever writes ledger rows
-- (the consume function, a group commit of many turns, an import, a COPY, settlement) keeps them exact in
-- the same transaction: a turn is in analytics the moment its statement commits.
--
-- channel_usage_buckets: per subscription, channel, 15-minute UTC bucket and outcome ('' = allowed, else the
--   denial reason): turns, billed tokens, raw tokens. Every zone offset in use since 1979 is a multiple of
--   15 minutes, so any local day and any local hour in any zone (DST days of 23/25 h, Kolkata +5:30,
--   Kathmandu +5:45) is an exact union of buckets.
-- channel_usage_hourly: the same per UTC hour, read for zones whose offset is whole hours over the period.
-- channel_user_days: per subscription, UTC year, channel and non-empty user_identifier, the UTC days of that
--   year on which the user had an allowed turn, as a 366-bit map (bit d = day of year d + 1). Distinct users
--   over a range = users whose map meets the whole UTC days inside it, plus the raw ledger rows of the
--   partial days at its edges: exact, never estimated, and one row per user and channel per year to scan.

CREATE TABLE channel_usage_buckets (
  subscription_id uuid NOT NULL,
  bucket_start    timestamptz NOT NULL,
  channel         text NOT NULL,
  denial_reason   text NOT NULL,
  turn_count      bigint NOT NULL,
  tokens_used     bigint NOT NULL,
  raw_tokens      bigint NOT NULL,
  PRIMARY KEY (subscription_id, bucket_start, channel, denial_reason)
);

-- The same sums per UTC hour: four times fewer rows to read for the zones whose offsets are whole hours
-- over the period asked about (most of them); the 15-minute buckets serve the others.
CREATE TABLE channel_usage_hourly (LIKE channel_usage_buckets INCLUDING ALL);

CREATE TABLE channel_user_days (
  subscription_id uuid NOT NULL,
  year            smallint NOT NULL,
  channel         text NOT NULL,
  user_identifier text NOT NULL,
  days            bit(366) NOT NULL,
  PRIMARY KEY (subscription_id, year, channel, user_identifier)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON channel_usage_buckets, channel_usage_hourly, channel_user_days
  TO omnimeter_app;
ALTER TABLE channel_usage_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE channel_usage_hourly ENABLE ROW LEVEL SECURITY;
ALTER TABLE channel_user_days ENABLE ROW LEVEL SECURITY;

-- The same rule as omnimeter_tenant_allows, written so that the tenant setting is read once per query (two
-- InitPlans) instead of once per row: analytics reads tens of thousands of rollup rows per answer, and the
-- per-row form cost more than the rest of the query.
CREATE FUNCTION omnimeter_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN nullif(current_setting('omnimeter.tenant', true), '*')::uuid;
EXCEPTION WHEN invalid_text_representation THEN
  RETURN NULL;
END $$;
GRANT EXECUTE ON FUNCTION omnimeter_tenant_id() TO omnimeter_app;

CREATE POLICY tenant_isolation ON channel_usage_buckets
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON channel_usage_hourly
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));
CREATE POLICY tenant_isolation ON channel_user_days
  USING ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()))
  WITH CHECK ((SELECT coalesce(current_setting('omnimeter.tenant', true) = '*', false))
    OR subscription_id = (SELECT omnimeter_tenant_id()));

-- The 15-minute UTC bucket of an instant.
CREATE FUNCTION omnimeter_bucket(at timestamptz) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT date_bin('15 minutes', at, timestamptz '2000-01-01 00:00:00+00') $$;

-- The UTC hour bucket of an instant (date_trunc would depend on the session's TimeZone).
CREATE FUNCTION omnimeter_hour_bucket(at timestamptz) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT date_bin('1 hour', at, timestamptz '2000-01-01 00:00:00+00') $$;

-- A user's allowed turns, as (subscription, UTC year, channel, user, day bits): the shape of
-- channel_user_days, for any set of ledger rows.
CREATE FUNCTION omnimeter_day_bit(at timestamptz) RETURNS bit(366)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT set_bit(B'0'::bit(366), extract(doy FROM at AT TIME ZONE 'UTC')::int - 1, 1) $$;

-- Inserted ledger rows: add each batch's sums to its buckets (one upsert per bucket, in key order so that
-- concurrent batches lock rows in the same order) and record its users.
CREATE FUNCTION omnimeter_rollup_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  WITH changes AS (
    SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
      coalesce(denial_reason, '') AS denial_reason, count(*) AS turns, sum(billed_tokens) AS billed,
      sum(raw_tokens) AS raw
    FROM inserted_rows
    GROUP BY 1, 2, 3, 4
  ), quarter_hours AS (
    INSERT INTO channel_usage_buckets AS b
      (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
    SELECT * FROM changes
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
      SET turn_count = b.turn_count + excluded.turn_count,
          tokens_used = b.tokens_used + excluded.tokens_used,
          raw_tokens = b.raw_tokens + excluded.raw_tokens
  )
  INSERT INTO channel_usage_hourly AS h
    (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
  SELECT subscription_id, omnimeter_hour_bucket(bucket_start), channel, denial_reason, sum(turns), sum(billed),
    sum(raw)
  FROM changes
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
    SET turn_count = h.turn_count + excluded.turn_count,
        tokens_used = h.tokens_used + excluded.tokens_used,
        raw_tokens = h.raw_tokens + excluded.raw_tokens;
  -- Only a user's first turn of a day changes the row; later ones find their bit set and write nothing.
  INSERT INTO channel_user_days AS u (subscription_id, year, channel, user_identifier, days)
  SELECT subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel, user_identifier,
    bit_or(omnimeter_day_bit(created_at))
  FROM inserted_rows
  WHERE status <> 'denied' AND user_identifier <> ''
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, year, channel, user_identifier) DO UPDATE
    SET days = u.days | excluded.days
    WHERE (u.days | excluded.days) <> u.days;
  RETURN NULL;
END $$;

-- Users whose (subscription, UTC day, channel) lost a row: clear the day's bit unless another allowed row of
-- theirs remains on that day. Runs only when rows are deleted or change who, where or when.
CREATE FUNCTION omnimeter_rollup_forget_users(keys jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE channel_user_days u
  SET days = set_bit(u.days, extract(doy FROM k.day)::int - 1, 0)
  FROM jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, user_identifier text)
  WHERE u.subscription_id = k.subscription_id AND u.year = extract(year FROM k.day)
    AND u.channel = k.channel AND u.user_identifier = k.user_identifier
    AND NOT EXISTS (
      SELECT 1 FROM token_usage_logs t
      WHERE t.subscription_id = k.subscription_id
        AND t.created_at >= k.day::timestamp AT TIME ZONE 'UTC'
        AND t.created_at < (k.day + 1)::timestamp AT TIME ZONE 'UTC'
        AND t.channel = k.channel AND t.user_identifier = k.user_identifier AND t.status <> 'denied');
  DELETE FROM channel_user_days u
  USING jsonb_to_recordset(keys) AS k(subscription_id uuid, day date, channel text, user_identifier text)
  WHERE u.subscription_id = k.subscription_id AND u.year = extract(year FROM k.day)
    AND u.channel = k.channel AND u.user_identifier = k.user_identifier AND u.days = B'0'::bit(366);
END $$;

-- Updated ledger rows (settlement changes raw and billed tokens): subtract what the old versions added and
-- add the new versions, per bucket; buckets whose sums do not change are not touched.
CREATE FUNCTION omnimeter_rollup_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_forget jsonb;
BEGIN
  WITH changes AS (
    SELECT subscription_id, bucket_start, channel, denial_reason, sum(turns) AS turns, sum(billed) AS billed,
      sum(raw) AS raw
    FROM (
      SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
        coalesce(denial_reason, '') AS denial_reason, 1 AS turns, billed_tokens AS billed, raw_tokens AS raw
      FROM updated_rows
      UNION ALL
      SELECT subscription_id, omnimeter_bucket(created_at), channel, coalesce(denial_reason, ''), -1,
        -billed_tokens, -raw_tokens
      FROM previous_rows
    ) AS versions
    GROUP BY 1, 2, 3, 4
    HAVING sum(turns) <> 0 OR sum(billed) <> 0 OR sum(raw) <> 0
  ), quarter_hours AS (
    INSERT INTO channel_usage_buckets AS b
      (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
    SELECT * FROM changes
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
      SET turn_count = b.turn_count + excluded.turn_count,
          tokens_used = b.tokens_used + excluded.tokens_used,
          raw_tokens = b.raw_tokens + excluded.raw_tokens
  )
  INSERT INTO channel_usage_hourly AS h
    (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
  SELECT subscription_id, omnimeter_hour_bucket(bucket_start), channel, denial_reason, sum(turns), sum(billed),
    sum(raw)
  FROM changes
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
    SET turn_count = h.turn_count + excluded.turn_count,
        tokens_used = h.tokens_used + excluded.tokens_used,
        raw_tokens = h.raw_tokens + excluded.raw_tokens;

  -- Who, where or when changed (settlement never does this; a correction might).
  IF EXISTS (
    SELECT 1 FROM updated_rows n JOIN previous_rows o ON o.id = n.id
    WHERE (o.status = 'denied') <> (n.status = 'denied')
      OR o.subscription_id <> n.subscription_id OR o.channel <> n.channel
      OR o.user_identifier IS DISTINCT FROM n.user_identifier
      OR (o.created_at AT TIME ZONE 'UTC')::date <> (n.created_at AT TIME ZONE 'UTC')::date
  ) THEN
    INSERT INTO channel_user_days AS u (subscription_id, year, channel, user_identifier, days)
    SELECT subscription_id, extract(year FROM created_at AT TIME ZONE 'UTC'), channel, user_identifier,
      bit_or(omnimeter_day_bit(created_at))
    FROM updated_rows
    WHERE status <> 'denied' AND user_identifier <> ''
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, year, channel, user_identifier) DO UPDATE
      SET days = u.days | excluded.days
      WHERE (u.days | excluded.days) <> u.days;
    SELECT jsonb_agg(DISTINCT jsonb_build_object('subscription_id', subscription_id,
        'day', (created_at AT TIME ZONE 'UTC')::date, 'channel', channel, 'user_identifier', user_identifier))
      INTO v_forget
    FROM previous_rows WHERE status <> 'denied' AND user_identifier <> '';
    IF v_forget IS NOT NULL THEN
      PERFORM omnimeter_rollup_forget_users(v_forget);
    END IF;
  END IF;
  RETURN NULL;
END $$;

-- Deleted ledger rows (retention, corrections): subtract them.
CREATE FUNCTION omnimeter_rollup_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_forget jsonb;
BEGIN
  WITH changes AS (
    SELECT subscription_id, omnimeter_bucket(created_at) AS bucket_start, channel,
      coalesce(denial_reason, '') AS denial_reason, -count(*) AS turns, -sum(billed_tokens) AS billed,
      -sum(raw_tokens) AS raw
    FROM removed_rows
    GROUP BY 1, 2, 3, 4
  ), quarter_hours AS (
    INSERT INTO channel_usage_buckets AS b
      (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
    SELECT * FROM changes
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
      SET turn_count = b.turn_count + excluded.turn_count,
          tokens_used = b.tokens_used + excluded.tokens_used,
          raw_tokens = b.raw_tokens + excluded.raw_tokens
  )
  INSERT INTO channel_usage_hourly AS h
    (subscription_id, bucket_start, channel, denial_reason, turn_count, tokens_used, raw_tokens)
  SELECT subscription_id, omnimeter_hour_bucket(bucket_start), channel, denial_reason, sum(turns), sum(billed),
    sum(raw)
  FROM changes
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4
  ON CONFLICT (subscription_id, bucket_start, channel, denial_reason) DO UPDATE
    SET turn_count = h.turn_count + excluded.turn_count,
        tokens_used = h.tokens_used + excluded.tokens_used,
        raw_tokens = h.raw_tokens + excluded.raw_tokens;
  DELETE FROM channel_usage_buckets b
  USING (SELECT DISTINCT subscription_id, omnimeter_bucket(created_at) AS bucket_start FROM removed_rows) AS r
  WHERE b.subscription_id = r.subscription_id AND b.bucket_start = r.bucket_start AND b.turn_count = 0;
  DELETE FROM channel_usage_hourly h
  USING (
    SELECT DISTINCT subscription_id, omnimeter_hour_bucket(created_at) AS bucket_start FROM removed_rows
  ) AS r
  WHERE h.subscription_id = r.subscription_id AND h.bucket_start = r.bucket_start AND h.turn_count = 0;
  SELECT jsonb_agg(DISTINCT jsonb_build_object('subscription_id', subscription_id,
      'day', (created_at AT TIME ZONE 'UTC')::date, 'channel', channel, 'user_identifier', user_identifier))
    INTO v_forget
  FROM removed_rows WHERE status <> 'denied' AND user_identifier <> '';
  IF v_forget IS NOT NULL THEN
    PERFORM omnimeter_rollup_forget_users(v_forget);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER token_usage_logs_rollup_insert
  AFTER INSERT ON token_usage_logs REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_inserted();
CREATE TRIGGER token_usage_logs_rollup_update
  AFTER UPDATE ON token_usage_logs REFERENCING OLD TABLE AS previous_rows NEW TABLE AS updated_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_updated();
CREATE TRIGGER token_usage_logs_rollup_delete
  AFTER DELETE ON token_usage_logs REFERENCING OLD TABLE AS removed_rows
  FOR EACH STATEMENT EXECUTE FUNCTION omnimeter_rollup_deleted();

GRANT EXECUTE ON FUNCTION omnimeter_bucket(timestamptz) TO omnimeter_app;
GRANT EXECUTE ON FUNCTION omnimeter_day_bit(timestamptz) TO omnimeter_app;
GRANT EXECUTE ON FUNCTION omnimeter_hour_bucket(timestamptz) TO omnimeter_app;
GRANT EXECUTE ON FUNCTION omnimeter_rollup_forget_users(jsonb) TO omnimeter_app;

-- The product description's daily aggregate per channel, as a view over the buckets: days are local to the
-- subscription's timezone (which a table of UTC days could not serve exactly). Denied turns are counted
-- apart; unique users are answered by the analytics queries, exactly, over any range.
CREATE VIEW channel_usage_analytics WITH (security_invoker = true) AS
SELECT b.subscription_id, b.channel, (b.bucket_start AT TIME ZONE s.timezone)::date AS usage_date,
  coalesce(sum(b.tokens_used) FILTER (WHERE b.denial_reason = ''), 0)::bigint AS tokens_used,
  coalesce(sum(b.raw_tokens) FILTER (WHERE b.denial_reason = ''), 0)::bigint AS raw_tokens,
  coalesce(sum(b.turn_count) FILTER (WHERE b.denial_reason = ''), 0)::bigint AS message_count,
  coalesce(sum(b.turn_count) FILTER (WHERE b.denial_reason <> ''), 0)::bigint AS denied_count
FROM channel_usage_buckets b
JOIN subscriptions s ON s.id = b.subscription_id
GROUP BY 1, 2, 3;

GRANT SELECT ON channel_usage_analytics TO omnimeter_app;
