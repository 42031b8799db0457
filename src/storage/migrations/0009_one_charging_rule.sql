-- One charging rule (issue 12). Every database function is a file in src/storage/functions holding its
-- current definition; a migration applies it with a psql include line (ARCHITECTURE.md, "Database
-- functions"), as 0008 does. The files were first written as migrations 0001-0008 left the functions.
--
-- * omnimeter_write_turns writes decided turns to the ledger, claiming a charged turn's idempotency key
--   first. omnimeter_consume_batch's fast and exact paths and the usage import (insertImportedTurns) all
--   write through it, instead of restating it three times.
-- * omnimeter_consume, the single-turn consume of 0002 that nothing has called since the group commit
--   (0004), is dropped.

DROP FUNCTION omnimeter_consume(uuid, text, text, text, text, text, bigint, bigint, numeric, integer, text,
  timestamptz, timestamptz);

-- A ledger row as omnimeter_write_turns takes it: the columns a decision or an import sets.
CREATE TYPE omnimeter_ledger_row AS (
  id uuid, subscription_id uuid, channel text, chatbot_id text, session_id text, user_identifier text,
  operation_type text, status text, denial_reason text, estimated_tokens bigint, raw_tokens bigint,
  billed_tokens bigint, token_multiplier numeric, message_length integer, idempotency_key text,
  period_start timestamptz, created_at timestamptz, settled_at timestamptz);

\ir ../functions/write_turns.sql
\ir ../functions/consume_batch.sql

GRANT EXECUTE ON FUNCTION omnimeter_write_turns(omnimeter_ledger_row[]) TO omnimeter_app;
