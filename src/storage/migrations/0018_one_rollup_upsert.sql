-- One rollup upsert (issue 12): the three ledger triggers wrote the same two bucket upserts three times,
-- and the user-day upsert twice. omnimeter_rollup_add and omnimeter_rollup_add_user_days now hold them;
-- each trigger only computes its changes.

-- A signed change to one quarter-hour bucket (and so to its hour).
CREATE TYPE omnimeter_rollup_change AS (
  subscription_id uuid, bucket_start timestamptz, channel text, chatbot_id text, denial_reason text,
  turns bigint, billed bigint, raw bigint);
-- A user's allowed turn on a UTC day, as channel_user_days keys it.
CREATE TYPE omnimeter_rollup_user_day AS (
  subscription_id uuid, year smallint, channel text, chatbot_id text, user_identifier text, days bit(366));

\ir ../functions/rollup_add.sql
\ir ../functions/rollup_add_user_days.sql
\ir ../functions/rollup_inserted.sql
\ir ../functions/rollup_updated.sql
\ir ../functions/rollup_deleted.sql
